package config

import (
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/farewell-project/farewell/plan"
)

// key describes one leaf setting, such as shutdown.steps.deregister.max_attempts.
type key struct {
	Path string
	Type reflect.Type
}

var durationType = reflect.TypeOf(time.Duration(0))

// keys lists every leaf key of Config, steps expanded for each known step name.
// It is the single source for defaults, environment names, the unknown-key check and
// duration parsing.
var keys = func() []key {
	var out []key
	walkType(reflect.TypeOf(Config{}), "", &out)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}()

func walkType(t reflect.Type, prefix string, out *[]key) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		path := prefix + f.Tag.Get("mapstructure")
		switch {
		case f.Type.Kind() == reflect.Struct:
			walkType(f.Type, path+".", out)
		case f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() != reflect.Struct:
			*out = append(*out, key{Path: path, Type: f.Type}) // a map of values (tags) is one setting
		case f.Type.Kind() == reflect.Map:
			for _, step := range plan.Builtin() {
				walkType(f.Type.Elem(), path+"."+step+".", out)
			}
		default:
			*out = append(*out, key{Path: path, Type: f.Type})
		}
	}
}

func lookupKey(path string) (key, bool) {
	for _, k := range keys {
		if k.Path == path {
			return k, true
		}
	}
	return key{}, false
}

// hostStepKey describes a setting of a host's own step (shutdown.steps.flush-state.
// max_attempts): steps a host application registers are not known here, so any valid
// step name is taken, with the fields of a built-in step; the agent refuses a name its
// host did not register.
func hostStepKey(path string) (key, bool) {
	parts := strings.Split(path, ".")
	if len(parts) != 4 || parts[0] != "shutdown" || parts[1] != "steps" || plan.ValidateStepName(parts[2]) != nil {
		return key{}, false
	}
	k, ok := lookupKey("shutdown.steps." + plan.Deregister + "." + parts[3])
	k.Path = path
	return k, ok
}

// inMapKey reports whether path is an entry of a map setting (cluster.tags.rack).
func inMapKey(path string) bool {
	for _, k := range keys {
		if k.Type.Kind() == reflect.Map && strings.HasPrefix(path, k.Path+".") {
			return true
		}
	}
	return false
}

// flatten turns a Config into key → value for every leaf key.
func flatten(c Config) map[string]any {
	out := map[string]any{}
	flattenValue(reflect.ValueOf(c), "", out)
	return out
}

func flattenValue(v reflect.Value, prefix string, out map[string]any) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		path := prefix + f.Tag.Get("mapstructure")
		fv := v.Field(i)
		switch {
		case f.Type.Kind() == reflect.Struct:
			flattenValue(fv, path+".", out)
		case f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() != reflect.Struct:
			out[path] = fv.Interface()
		case f.Type.Kind() == reflect.Map:
			iter := fv.MapRange()
			for iter.Next() {
				flattenValue(iter.Value(), path+"."+iter.Key().String()+".", out)
			}
		default:
			out[path] = fv.Interface()
		}
	}
}

// envName is the FAREWELL_* variable for a key: dots and dashes become underscores.
func envName(path string) string {
	return "FAREWELL_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

// standardEnv maps the variables Temporal's own tools read to Farewell's keys. A
// FAREWELL_* variable for the same key wins.
var standardEnv = map[string]string{
	"TEMPORAL_ADDRESS":                 "temporal.address",
	"TEMPORAL_NAMESPACE":               "temporal.namespace",
	"TEMPORAL_API_KEY":                 "temporal.api_key",
	"TEMPORAL_TLS":                     "temporal.tls.enabled",
	"TEMPORAL_TLS_SERVER_CA_CERT_PATH": "temporal.tls.ca",
	"TEMPORAL_TLS_CLIENT_CERT_PATH":    "temporal.tls.cert",
	"TEMPORAL_TLS_CLIENT_KEY_PATH":     "temporal.tls.key",
	"TEMPORAL_TLS_SERVER_NAME":         "temporal.tls.server_name",
}

// nearest returns the known key closest to path by edit distance.
func nearest(path string) string {
	best, bestD := "", -1
	for _, k := range keys {
		d := editDistance(path, k.Path)
		// A matching last segment is the likeliest intent (a key put in the wrong section).
		if lastSegment(k.Path) == lastSegment(path) {
			d /= 2
		}
		if bestD < 0 || d < bestD {
			best, bestD = k.Path, d
		}
	}
	return best
}

func lastSegment(p string) string {
	return p[strings.LastIndexByte(p, '.')+1:]
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// UnknownEnv returns, for each variable in env that looks like a setting's — FAREWELL_
// and a section's name, as FAREWELL_CLUSTER_… — but names none, a sentence naming it
// and the nearest variable that does: a misspelt variable (in a unit's Environment=, a
// manifest's env) is otherwise ignored without a word.
func UnknownEnv(env []string) []string {
	known, sections := map[string]bool{}, map[string]bool{}
	for _, k := range keys {
		known[envName(k.Path)] = true
		section, _, _ := strings.Cut(k.Path, ".")
		sections[envName(section)+"_"] = true
	}
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if known[name] {
			continue
		}
		for prefix := range sections {
			if strings.HasPrefix(name, prefix) {
				path := strings.ToLower(strings.TrimPrefix(name, "FAREWELL_"))
				out = append(out, name+" names no setting (did you mean "+envName(nearestEnv(path))+"?)")
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// nearestEnv is the key whose variable is nearest to path, a variable's name without
// FAREWELL_, in lower case.
func nearestEnv(path string) string {
	best, bestD := "", -1
	for _, k := range keys {
		d := editDistance(path, strings.NewReplacer(".", "_", "-", "_").Replace(k.Path))
		if bestD < 0 || d < bestD {
			best, bestD = k.Path, d
		}
	}
	return best
}
