package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/farewell-project/farewell/plan"
)

// FileName is the name of the configuration file searched for when none is given.
const FileName = "farewell.yaml"

// Source says where Load reads settings from besides the defaults. Precedence, lowest
// first: defaults, file, environment, flags.
type Source struct {
	// File is the file given with --config; it must exist. "" means search SearchDirs.
	File string
	// SearchDirs are the folders searched, in order, for farewell.yaml when File is "".
	// nil means ".", $XDG_CONFIG_HOME/farewell (or ~/.config/farewell) and /etc/farewell.
	SearchDirs []string
	// Env is the environment as KEY=VALUE pairs; nil means os.Environ().
	Env []string
	// Flags binds keys to command-line flags; a flag overrides only when it was set.
	Flags map[string]*pflag.Flag
}

// Load reads the configuration from src and validates it. It returns the configuration
// and the file it read ("" when none). Every problem found is reported, each naming its
// key; the error then matches ErrInvalid.
func Load(src Source) (Config, string, error) {
	v := viper.New()
	for path, val := range flatten(DefaultConfig()) {
		v.SetDefault(path, val)
	}

	file, err := findFile(src)
	if err != nil {
		return Config{}, "", err
	}
	// Problems are gathered, not returned one at a time: a user fixing a file wants
	// to see all of them at once.
	var problems []error
	if file != "" {
		unknown, err := readFile(v, file)
		if err != nil {
			return Config{}, file, err
		}
		problems = append(problems, unknown...)
	}
	if err := v.MergeConfigMap(envSettings(src.Env)); err != nil {
		return Config{}, file, fmt.Errorf("environment: %w", err)
	}
	for path, flag := range src.Flags {
		if _, ok := lookupKey(path); !ok {
			return Config{}, file, fmt.Errorf("flag --%s is bound to unknown key %s", flag.Name, path)
		}
		if err := v.BindPFlag(path, flag); err != nil {
			return Config{}, file, fmt.Errorf("bind flag --%s: %w", flag.Name, err)
		}
	}

	if typeProblems := checkTypes(v); len(typeProblems) > 0 {
		return Config{}, file, errors.Join(append(problems, typeProblems...)...)
	}
	var c Config
	if err := v.Unmarshal(&c); err != nil {
		return Config{}, file, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	problems = append(problems, leaves(c.Validate())...)
	return c, file, errors.Join(dedupe(problems)...)
}

// dedupe drops problems reported twice (an unknown step is both an unknown key in the
// file and an invalid step in the decoded configuration).
func dedupe(errs []error) []error {
	seen := map[string]bool{}
	out := errs[:0]
	for _, e := range errs {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return out
}

func findFile(src Source) (string, error) {
	if src.File != "" {
		if _, err := os.Stat(src.File); err != nil {
			return "", &FieldError{Key: "--config", Msg: fmt.Sprintf("cannot read %s: %v", src.File, errors.Unwrap(err))}
		}
		return src.File, nil
	}
	dirs := src.SearchDirs
	if dirs == nil {
		dirs = DefaultSearchDirs()
	}
	for _, d := range dirs {
		p := filepath.Join(d, FileName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", nil
}

// DefaultSearchDirs are the folders searched for farewell.yaml, in order.
func DefaultSearchDirs() []string {
	dirs := []string{"."}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		dirs = append(dirs, filepath.Join(x, "farewell"))
	} else if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, ".config", "farewell"))
	}
	return append(dirs, "/etc/farewell")
}

// readFile reads file into v. Unknown keys are returned as problems (and ignored);
// an unreadable or unparsable file is an error.
func readFile(v *viper.Viper, file string) ([]error, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: config file %s: %v", ErrInvalid, file, err)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(b, &tree); err != nil {
		return nil, fmt.Errorf("%w: config file %s is not valid YAML: %v", ErrInvalid, file, err)
	}
	var problems []error
	for _, path := range leafPaths(tree, "") {
		_, hostStep := hostStepKey(path)
		if _, ok := lookupKey(path); !ok && !inMapKey(path) && !hostStep {
			problems = append(problems, unknownKey(path))
		}
	}
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("%w: config file %s: %v", ErrInvalid, file, err)
	}
	return problems, nil
}

func unknownKey(path string) error {
	parts := strings.Split(path, ".")
	if len(parts) >= 3 && parts[0] == "shutdown" && parts[1] == "steps" && !plan.IsBuiltin(parts[2]) {
		if err := plan.ValidateStepName(parts[2]); err != nil {
			return &FieldError{Key: strings.Join(parts[:3], "."), Msg: fmt.Sprintf("unknown step: %v (steps are %s, or a host's own)", err, strings.Join(plan.Builtin(), ", "))}
		}
	}
	return &FieldError{Key: path, Msg: fmt.Sprintf("unknown key (did you mean %s?)", nearest(path))}
}

// leafPaths flattens a YAML tree into lower-case dotted paths of its leaves.
func leafPaths(tree map[string]any, prefix string) []string {
	var out []string
	for k, val := range tree {
		path := prefix + strings.ToLower(k)
		if sub, ok := val.(map[string]any); ok && len(sub) > 0 {
			out = append(out, leafPaths(sub, path+".")...)
			continue
		}
		out = append(out, path)
	}
	sort.Strings(out)
	return out
}

func envSettings(env []string) map[string]any {
	if env == nil {
		env = os.Environ()
	}
	vars := map[string]string{}
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok {
			vars[k] = val
		}
	}
	settings := map[string]any{}
	set := func(path, val string) {
		m := settings
		parts := strings.Split(path, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = val
	}
	for name, path := range standardEnv {
		if val, ok := vars[name]; ok && val != "" {
			set(path, val)
		}
	}
	for _, k := range keys {
		val, ok := vars[envName(k.Path)]
		switch {
		case !ok:
		case k.Type.Kind() == reflect.Map:
			setMap(settings, k.Path, val)
		default:
			set(k.Path, val)
		}
	}
	return settings
}

// setMap sets a map setting from its environment form, k=v,k=v. A pair without '='
// is kept whole as a key, for the type check to name.
func setMap(settings map[string]any, path, val string) {
	m := map[string]any{}
	for pair := range strings.SplitSeq(val, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := settings[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			settings[p] = sub
		}
		settings = sub
	}
	settings[parts[len(parts)-1]] = m
}

// checkTypes reports every value that does not parse as its key's type, naming the key,
// before decoding would report them less clearly.
func checkTypes(v *viper.Viper) []error {
	var problems []error
	all := slices.Clone(keys)
	for _, path := range v.AllKeys() {
		if k, ok := hostStepKey(path); ok {
			all = append(all, k)
		}
	}
	for _, k := range all {
		raw := v.Get(k.Path)
		if raw == nil {
			continue
		}
		if msg := typeProblem(k.Type, raw); msg != "" {
			problems = append(problems, &FieldError{Key: k.Path, Msg: msg})
		}
	}
	return problems
}

func typeProblem(t reflect.Type, raw any) string {
	s, isString := raw.(string)
	switch {
	case t == durationType:
		switch val := raw.(type) {
		case time.Duration:
			return ""
		case string:
			if _, err := time.ParseDuration(strings.TrimSpace(val)); err != nil {
				return fmt.Sprintf("%q is not a duration (write it like 500ms, 5s or 1m30s)", val)
			}
			return ""
		case int, int64, float64:
			return fmt.Sprintf("%v has no unit (write it like 500ms, 5s or 1m30s)", val)
		default:
			return fmt.Sprintf("%v is not a duration (write it like 500ms, 5s or 1m30s)", val)
		}
	case t.Kind() == reflect.Int:
		switch raw.(type) {
		case int, int64:
			return ""
		}
		if isString {
			if _, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
				return ""
			}
		}
		return fmt.Sprintf("%q is not a whole number", fmt.Sprint(raw))
	case t.Kind() == reflect.Bool:
		if _, ok := raw.(bool); ok {
			return ""
		}
		if isString {
			if _, err := strconv.ParseBool(strings.TrimSpace(s)); err == nil {
				return ""
			}
		}
		return fmt.Sprintf("%q is not true or false", fmt.Sprint(raw))
	case t.Kind() == reflect.String:
		switch reflect.ValueOf(raw).Kind() {
		case reflect.String, reflect.Int, reflect.Int64, reflect.Float64, reflect.Bool:
			return ""
		}
		return fmt.Sprintf("%v is not a single value", raw)
	case t.Kind() == reflect.Map:
		if _, ok := raw.(map[string]string); ok {
			return ""
		}
		m, ok := raw.(map[string]any)
		if !ok {
			return fmt.Sprintf("%v is not a map (write it as key: value lines, or k=v,k=v in the environment)", raw)
		}
		for k, v := range m {
			switch v.(type) {
			case string, int, int64, float64, bool:
			default:
				return fmt.Sprintf("%s: %v is not a single value", k, v)
			}
		}
		return ""
	case t.Kind() == reflect.Slice:
		switch raw.(type) {
		case string, []string, []any:
			return ""
		}
		return fmt.Sprintf("%v is not a list", raw)
	}
	return ""
}
