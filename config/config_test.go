package config

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/farewell-project/farewell/plan"
)

func writeFile(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, FileName)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config is invalid: %v", err)
	}
	for _, step := range plan.Builtin() {
		if _, ok := DefaultConfig().Shutdown.Steps[step]; !ok {
			t.Errorf("default config lacks step %s", step)
		}
	}
}

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, `
temporal:
  address: file:1
  namespace: from-file
shutdown:
  steps:
    deregister:
      start_to_close: 7s
dev:
  port: 1111
`)
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	port := fs.Int("port", 0, "")
	_ = port
	if err := fs.Parse([]string{"--port", "3333"}); err != nil {
		t.Fatal(err)
	}
	unsetFlags := pflag.NewFlagSet("test", pflag.ContinueOnError)
	unsetFlags.Int("port", 4444, "")

	tests := []struct {
		name  string
		src   Source
		check func(t *testing.T, c Config)
	}{
		{
			name: "defaults only",
			src:  Source{SearchDirs: []string{t.TempDir()}, Env: []string{}},
			check: func(t *testing.T, c Config) {
				if c.Temporal.Address != "127.0.0.1:7233" || c.Dev.Port != 7233 {
					t.Errorf("got address %q port %d, want defaults", c.Temporal.Address, c.Dev.Port)
				}
			},
		},
		{
			name: "file found in search dir overrides defaults and keeps other step fields",
			src:  Source{SearchDirs: []string{t.TempDir(), dir}, Env: []string{}},
			check: func(t *testing.T, c Config) {
				if c.Temporal.Namespace != "from-file" || c.Dev.Port != 1111 {
					t.Errorf("got namespace %q port %d, want from file", c.Temporal.Namespace, c.Dev.Port)
				}
				dereg := c.Shutdown.Steps[plan.Deregister]
				if dereg.StartToClose != 7*time.Second {
					t.Errorf("deregister start_to_close = %s, want 7s", dereg.StartToClose)
				}
				if dereg.MaxAttempts != DefaultConfig().Shutdown.Steps[plan.Deregister].MaxAttempts {
					t.Errorf("deregister max_attempts = %d, want the default", dereg.MaxAttempts)
				}
			},
		},
		{
			name: "explicit file",
			src:  Source{File: file, Env: []string{}},
			check: func(t *testing.T, c Config) {
				if c.Temporal.Namespace != "from-file" {
					t.Errorf("namespace %q, want from-file", c.Temporal.Namespace)
				}
			},
		},
		{
			name: "FAREWELL env overrides file, nested keys and dashes",
			src: Source{File: file, Env: []string{
				"FAREWELL_TEMPORAL_NAMESPACE=from-env",
				"FAREWELL_SHUTDOWN_STEPS_DEREGISTER_START_TO_CLOSE=9s",
				"FAREWELL_SHUTDOWN_STEPS_STOP_SERVICES_MAX_ATTEMPTS=5",
				"FAREWELL_CLUSTER_JOIN=127.0.0.1:1,127.0.0.1:2",
				"FAREWELL_SHUTDOWN_FORCE=false",
			}},
			check: func(t *testing.T, c Config) {
				if c.Temporal.Namespace != "from-env" {
					t.Errorf("namespace %q, want from-env", c.Temporal.Namespace)
				}
				if got := c.Shutdown.Steps[plan.Deregister].StartToClose; got != 9*time.Second {
					t.Errorf("deregister start_to_close %s, want 9s", got)
				}
				if got := c.Shutdown.Steps[plan.StopServices].MaxAttempts; got != 5 {
					t.Errorf("stop-services max_attempts %d, want 5", got)
				}
				if len(c.Cluster.Join) != 2 || c.Cluster.Join[1] != "127.0.0.1:2" {
					t.Errorf("join %q, want two addresses", c.Cluster.Join)
				}
				if c.Shutdown.Force {
					t.Error("force still true")
				}
			},
		},
		{
			name: "standard TEMPORAL env, FAREWELL wins",
			src: Source{File: file, Env: []string{
				"TEMPORAL_ADDRESS=std:7233",
				"TEMPORAL_NAMESPACE=std-ns",
				"TEMPORAL_API_KEY=k",
				"FAREWELL_TEMPORAL_NAMESPACE=fw-ns",
			}},
			check: func(t *testing.T, c Config) {
				if c.Temporal.Address != "std:7233" || c.Temporal.Namespace != "fw-ns" || c.Temporal.APIKey != "k" {
					t.Errorf("got %+v", c.Temporal)
				}
			},
		},
		{
			name: "flag overrides env and file",
			src:  Source{File: file, Env: []string{"FAREWELL_DEV_PORT=2222"}, Flags: map[string]*pflag.Flag{"dev.port": fs.Lookup("port")}},
			check: func(t *testing.T, c Config) {
				if c.Dev.Port != 3333 {
					t.Errorf("port %d, want 3333 from the flag", c.Dev.Port)
				}
			},
		},
		{
			name: "unset flag does not override",
			src:  Source{File: file, Env: []string{"FAREWELL_DEV_PORT=2222"}, Flags: map[string]*pflag.Flag{"dev.port": unsetFlags.Lookup("port")}},
			check: func(t *testing.T, c Config) {
				if c.Dev.Port != 2222 {
					t.Errorf("port %d, want 2222 from env", c.Dev.Port)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Load(tt.src)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		want []string // every fragment must appear in the error
	}{
		{"unparsable duration", "shutdown:\n  steps:\n    deregister:\n      start_to_close: soon\n", nil,
			[]string{"shutdown.steps.deregister.start_to_close", `"soon" is not a duration`}},
		{"duration without unit", "cluster:\n  heartbeat_interval: 5\n", nil,
			[]string{"cluster.heartbeat_interval", "no unit"}},
		{"zero duration", "shutdown:\n  convergence_timeout: 0s\n", nil,
			[]string{"shutdown.convergence_timeout", "not a positive duration"}},
		{"negative duration from env", "", []string{"FAREWELL_SHUTDOWN_SLOW_THRESHOLD=-1s"},
			[]string{"shutdown.slow_threshold", "-1s"}},
		{"unknown step", "shutdown:\n  steps:\n    say_goodbye:\n      max_attempts: 2\n", nil,
			[]string{"shutdown.steps.say_goodbye", `unknown step: "say_goodbye"`}},
		{"host step bad duration", "shutdown:\n  steps:\n    flush-state:\n      start_to_close: soon\n", nil,
			[]string{"shutdown.steps.flush-state.start_to_close", `"soon" is not a duration`}},
		{"host step unknown field", "shutdown:\n  steps:\n    flush-state:\n      timeout: 5s\n", nil,
			[]string{"shutdown.steps.flush-state.timeout", "unknown key"}},
		{"unknown on_failure", "shutdown:\n  steps:\n    stop-heartbeat:\n      on_failure: panic\n", nil,
			[]string{"shutdown.steps.stop-heartbeat.on_failure", `"panic" is not one of continue, abort, force`}},
		{"max attempts zero", "shutdown:\n  steps:\n    stop-services:\n      max_attempts: 0\n", nil,
			[]string{"shutdown.steps.stop-services.max_attempts", "not between 1 and 10"}},
		{"secret key not base64", "cluster:\n  secret_key: '***'\n", nil,
			[]string{"cluster.secret_key", "not base64"}},
		{"secret key wrong length", "cluster:\n  secret_key: " + "aGVsbG8=" + "\n", nil,
			[]string{"cluster.secret_key", "5 bytes"}},
		{"bad bind", "cluster:\n  bind: localhost\n", nil,
			[]string{"cluster.bind", `"localhost" is not host:port`}},
		{"bad port in address", "temporal:\n  address: 127.0.0.1:99999\n", nil,
			[]string{"temporal.address", `bad port "99999"`}},
		{"bad join entry", "cluster:\n  join: ['127.0.0.1:x']\n", nil,
			[]string{"cluster.join[0]", "bad port"}},
		{"unknown key with suggestion", "shutdown:\n  convergence_timout: 5s\n", nil,
			[]string{"shutdown.convergence_timout", "did you mean shutdown.convergence_timeout?"}},
		{"key in wrong section", "dev:\n  namespace: x\n", nil,
			[]string{"dev.namespace", "did you mean temporal.namespace?"}},
		{"not a number", "dev:\n  nodes: many\n", nil,
			[]string{"dev.nodes", `"many" is not a whole number`}},
		{"bad profile", "cluster:\n  profile: moon\n", nil,
			[]string{"cluster.profile", `"moon" is not one of local, lan, wan`}},
		{"expiration not above interval", "cluster:\n  heartbeat_interval: 2s\n  heartbeat_expiration: 1s\n", nil,
			[]string{"cluster.heartbeat_expiration", "longer than cluster.heartbeat_interval"}},
		{"cert without key", "temporal:\n  tls:\n    cert: /etc/hostname\n", nil,
			[]string{"temporal.tls.cert", "both"}},
		{"bad log format", "log:\n  format: xml\n", nil,
			[]string{"log.format", `"xml"`}},
		{"not yaml", "temporal: [unclosed\n", nil,
			[]string{"not valid YAML"}},
		{"a section misspelt by one letter", "shutdwn:\n  convergence_timeout: 5s\n", nil,
			[]string{"shutdwn.convergence_timeout", "did you mean shutdown.convergence_timeout?"}},
		{"an unknown step with no settings", "shutdown:\n  steps:\n    say_goodbye: {}\n", nil,
			[]string{"shutdown.steps.say_goodbye", "unknown step"}},
		{"an unknown section left empty", "bogus: {}\n", nil,
			[]string{"bogus", "unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := writeFile(t, dir, tt.file)
			env := tt.env
			if env == nil {
				env = []string{}
			}
			_, _, err := Load(Source{File: file, Env: env})
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadMissingExplicitFile(t *testing.T) {
	_, _, err := Load(Source{File: filepath.Join(t.TempDir(), "nope.yaml"), Env: []string{}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("got %v, want an invalid-config error naming the file", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := DefaultConfig()
	c.Dev.Port = 0
	c.Log.Level = "loud"
	err := c.Validate()
	for _, key := range []string{"dev.port", "log.level"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}

func TestSecretKeyBytes(t *testing.T) {
	for _, n := range []int{16, 24, 32} {
		b, err := SecretKeyBytes(base64.StdEncoding.EncodeToString(make([]byte, n)))
		if err != nil || len(b) != n {
			t.Errorf("%d-byte key: got %d bytes, err %v", n, len(b), err)
		}
	}
}

func TestRedacted(t *testing.T) {
	c := DefaultConfig()
	c.Temporal.APIKey = "secret-api-key"
	c.Cluster.SecretKey = "c2VjcmV0c2VjcmV0c2VjcmV0"
	c.Cluster.SecretKeys = []string{"b2xka2V5b2xka2V5b2xka2V5"}
	c.Cluster.EvictSigningKey = "c2lnbmluZ2tleXNpZ25pbmdrZXk="
	out, err := c.Redacted().YAML()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Contains(s, "secret-api-key") || strings.Contains(s, "c2VjcmV0") || strings.Contains(s, "b2xka2V5") || strings.Contains(s, "c2lnbmluZ2tleX") {
		t.Fatalf("secrets printed:\n%s", s)
	}
	if !strings.Contains(s, "start_to_close: 3s") {
		t.Errorf("durations not printed as durations:\n%s", s)
	}
}

func TestEnvNames(t *testing.T) {
	if got := envName("shutdown.steps.stop-services.start_to_close"); got != "FAREWELL_SHUTDOWN_STEPS_STOP_SERVICES_START_TO_CLOSE" {
		t.Errorf("envName = %s", got)
	}
}

func TestProblemsInAStableOrderNamingTheirKeys(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, `
shutdown:
  steps:
    deregister:
      max_attempts: 0
      on_failure: explode
    stop-services:
      start_to_close: 2h
    say_goodbye:
      start_to_close: 1s
  convergence_timeout: 0s
cluster:
  profile: moon
`)
	var first string
	for i := range 20 {
		_, _, err := Load(Source{SearchDirs: []string{dir}, Env: []string{}})
		if err == nil {
			t.Fatal("bad configuration accepted")
		}
		if i == 0 {
			first = err.Error()
			for _, key := range []string{"shutdown.steps.deregister.max_attempts", "shutdown.steps.deregister.on_failure",
				"shutdown.steps.stop-services.start_to_close", "shutdown.steps.say_goodbye", "shutdown.convergence_timeout", "cluster.profile"} {
				if !strings.Contains(first, key+":") {
					t.Errorf("no problem named %s in:\n%s", key, first)
				}
			}
			continue
		}
		if err.Error() != first {
			t.Fatalf("problems in another order:\n%s\n--- first ---\n%s", err, first)
		}
	}
}

// Tags come from the file as a map, or from the environment as k=v,k=v; the budget
// is checked like any other setting.
func TestHostStepSettings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "farewell.yaml")
	if err := os.WriteFile(file, []byte("shutdown:\n  steps:\n    flush-state:\n      max_attempts: 4\n      start_to_close: 20s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := Load(Source{File: file, Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	st, ok := c.Shutdown.HostSteps()["flush-state"]
	if !ok || len(c.Shutdown.HostSteps()) != 1 {
		t.Fatalf("host steps %+v", c.Shutdown.HostSteps())
	}
	spec := st.Over(plan.StepSpec{Name: "flush-state", StartToClose: time.Second, ScheduleToStart: time.Second, MaxAttempts: 1, Backoff: time.Millisecond, OnFailure: plan.Force})
	if spec.MaxAttempts != 4 || spec.StartToClose != 20*time.Second || spec.OnFailure != plan.Force || spec.Backoff != time.Millisecond {
		t.Errorf("override gave %+v", spec)
	}
	if p := c.Shutdown.MustPlan(); p.Index("flush-state") >= 0 {
		t.Errorf("the orchestrator's plan took the host's step: %v", p.Names())
	}
}

func TestTagsAndBudget(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, `
cluster:
  tags:
    rack: r1
    zone: eu-1
budget:
  max_parallel: 3
  min_alive: 2
`)
	c, _, err := Load(Source{File: file, Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster.Tags["rack"] != "r1" || c.Cluster.Tags["zone"] != "eu-1" || len(c.Cluster.Tags) != 2 {
		t.Errorf("tags from the file: %v", c.Cluster.Tags)
	}
	if c.Budget.Limits() != (plan.Limits{MaxParallel: 3, MinAlive: 2}) {
		t.Errorf("budget: %+v", c.Budget)
	}
	c, _, err = Load(Source{File: file, Env: []string{"FAREWELL_CLUSTER_TAGS=rack=r2, zone=eu-2"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster.Tags["rack"] != "r2" || c.Cluster.Tags["zone"] != "eu-2" {
		t.Errorf("tags from the environment: %v", c.Cluster.Tags)
	}
	for env, want := range map[string]string{
		"FAREWELL_CLUSTER_TAGS=rack=r 1":    "cluster.tags",
		"FAREWELL_CLUSTER_TAGS=rack":        "cluster.tags",
		"FAREWELL_BUDGET_MAX_PARALLEL=-1":   "budget.max_parallel",
		"FAREWELL_BUDGET_MIN_ALIVE=lots":    "budget.min_alive",
		"FAREWELL_BUDGET_MIN_ALIVE=1000000": "budget.min_alive",
	} {
		_, _, err := Load(Source{File: file, Env: []string{env}})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want an error naming %s, got %v", env, want, err)
		}
	}
}

func TestUnknownEnvNamesTheMisspeltVariables(t *testing.T) {
	got := UnknownEnv([]string{
		"FAREWELL_CLUSTER_ADVERTIZE=10.0.0.1:7946",                   // misspelt
		"FAREWELL_CLUSTER_ADVERTISE=10.0.0.1:7946",                   // a setting
		"FAREWELL_SHUTDOWN_STEPS_STOP_SERVICES_MAX_ATTEMPTS=2",       // a step's setting
		"FAREWELL_SHUTDOWN_STEPS_STOP_SERVICE_MAX_ATTEMPTS=2",        // a step misspelt
		"FAREWELL_NETBED=require", "PATH=/bin", "TEMPORAL_ADDRESS=x", // not settings' names
		"FAREWELL_CLUSTER_name=node-1", // in the wrong case: no setting, yet at no distance from one
	})
	want := []string{
		"FAREWELL_CLUSTER_ADVERTIZE names no setting (did you mean FAREWELL_CLUSTER_ADVERTISE?)",
		"FAREWELL_CLUSTER_name names no setting (did you mean FAREWELL_CLUSTER_NAME?)",
		"FAREWELL_SHUTDOWN_STEPS_STOP_SERVICE_MAX_ATTEMPTS names no setting (did you mean FAREWELL_SHUTDOWN_STEPS_STOP_SERVICES_MAX_ATTEMPTS?)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("UnknownEnv =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Each rule of Validate at its edge: the last value it takes and the first it refuses,
// each refusal naming its key — and only the problem that is there.
func TestValidateAtEachEdge(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "x")
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, tt := range []struct {
		name string
		set  func(c *Config)
		key  string // "" when valid
		not  string // a problem that must not be reported
	}{
		{"one secret key", func(c *Config) { c.Cluster.SecretKey = key }, "", ""},
		{"a list of secret keys", func(c *Config) { c.Cluster.SecretKeys = []string{key} }, "", ""},
		{"both", func(c *Config) { c.Cluster.SecretKey, c.Cluster.SecretKeys = key, []string{key} }, "cluster.secret_keys", ""},
		{"no name", func(c *Config) { c.Cluster.Name = " " }, "cluster.name", "has ' '"}, // said once: must not be empty
		{"a name with a newline", func(c *Config) { c.Cluster.Name = "a\nb" }, "cluster.name", ""},
		{"expiration just past the interval", func(c *Config) {
			c.Cluster.HeartbeatInterval, c.Cluster.HeartbeatExpiration = time.Second, time.Second+time.Nanosecond
		}, "", ""},
		{"expiration equal to the interval", func(c *Config) {
			c.Cluster.HeartbeatInterval, c.Cluster.HeartbeatExpiration = time.Second, time.Second
		}, "cluster.heartbeat_expiration", ""},
		{"no expiration", func(c *Config) { c.Cluster.HeartbeatExpiration = 0 }, "cluster.heartbeat_expiration", "must be longer"},
		{"grace period 5s", func(c *Config) { c.Shutdown.GracePeriod = 5 * time.Second }, "", ""},
		{"grace period just under 5s", func(c *Config) { c.Shutdown.GracePeriod = 5*time.Second - time.Millisecond }, "shutdown.grace_period", ""},
		{"a sweep every second", func(c *Config) { c.Watchdog.Interval = time.Second }, "", ""},
		{"a sweep every 999ms", func(c *Config) { c.Watchdog.Interval = 999 * time.Millisecond }, "watchdog.interval", ""},
		{"no sweep interval", func(c *Config) { c.Watchdog.Interval = 0 }, "watchdog.interval", "less than a second"},
		{"blocked_after 0", func(c *Config) { c.Watchdog.BlockedAfter = 0 }, "watchdog.blocked_after", ""},
		{"blocked_after 1ns", func(c *Config) { c.Watchdog.BlockedAfter = 1 }, "", ""},
		{"client certificates with TLS", func(c *Config) {
			c.Dev.TLS.Cert, c.Dev.TLS.Key, c.Dev.TLS.ClientCA = file, file, file
			c.Temporal.TLS.Cert, c.Temporal.TLS.Key = file, file
		}, "", ""},
		{"client certificates without TLS", func(c *Config) { c.Dev.TLS.ClientCA = file }, "dev.tls.client_ca", ""},
		{"client certificates, no client cert for the workers", func(c *Config) {
			c.Dev.TLS.Cert, c.Dev.TLS.Key, c.Dev.TLS.ClientCA = file, file, file
		}, "temporal.tls.cert", ""},
		{"a file that is not there", func(c *Config) { c.Dev.TLS.Cert, c.Dev.TLS.Key = file+".gone", file }, "dev.tls.cert", ""},
		{"no dev nodes", func(c *Config) { c.Dev.Nodes = 0 }, "", ""},
		{"-1 dev nodes", func(c *Config) { c.Dev.Nodes = -1 }, "dev.nodes", ""},
		{"port 1 and 65535", func(c *Config) { c.Dev.Port, c.Dev.UIPort = 1, 65535 }, "", ""},
		{"port 0", func(c *Config) { c.Dev.Port = 0 }, "dev.port", ""},
		{"port 65536", func(c *Config) { c.Dev.UIPort = 65536 }, "dev.ui_port", ""},
		{"a join address without its port", func(c *Config) { c.Cluster.Join = []string{"seed"} }, "", ""},
		{"join ports 0 and 65535", func(c *Config) { c.Cluster.Join = []string{"seed:0", "seed:65535"} }, "", ""},
		{"join port 65536", func(c *Config) { c.Cluster.Join = []string{"seed:65536"} }, "cluster.join[0]", ""},
		{"join port -1", func(c *Config) { c.Cluster.Join = []string{"seed:-1"} }, "cluster.join[0]", ""},
		{"an empty join address", func(c *Config) { c.Cluster.Join = []string{""} }, "cluster.join[0]", ""},
	} {
		c := DefaultConfig()
		tt.set(&c)
		err := c.Validate()
		switch {
		case tt.key == "" && err != nil:
			t.Errorf("%s: refused: %v", tt.name, err)
		case tt.key != "" && (err == nil || !strings.Contains(err.Error(), tt.key+":")):
			t.Errorf("%s: %v, want a problem with %s", tt.name, err, tt.key)
		case tt.not != "" && strings.Contains(err.Error(), tt.not):
			t.Errorf("%s: %v, which should not say %q", tt.name, err, tt.not)
		}
	}
}

// A heartbeat expiration of zero is one problem (not positive), not two.
func TestZeroExpirationIsOneProblem(t *testing.T) {
	c := DefaultConfig()
	c.Cluster.HeartbeatExpiration = 0
	err := c.Validate()
	if err == nil || strings.Count(err.Error(), "cluster.heartbeat_expiration") != 1 {
		t.Errorf("got %v, want one problem with cluster.heartbeat_expiration", err)
	}
}

// With no steps configured at all, each missing step is named, and nothing else.
func TestNoStepsNamesEachMissingStep(t *testing.T) {
	s := DefaultConfig().Shutdown
	s.Steps = nil
	_, err := s.Plan()
	var names []string
	for _, e := range leaves(err) {
		names = append(names, e.Error())
	}
	if len(names) != len(plan.Builtin()) {
		t.Fatalf("problems %q, want one per built-in step", names)
	}
	for i, name := range plan.Builtin() {
		if names[i] != "shutdown.steps."+name+": missing" {
			t.Errorf("problem %d: %q", i, names[i])
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "abc", 3}, {"abc", "", 3}, {"abc", "abc", 0},
		{"kitten", "sitting", 3}, {"a", "b", 1}, {"ab", "ba", 2}, {"timeout", "timout", 1},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// A node is named after its host unless the configuration names it.
func TestANodeIsNamedAfterItsHost(t *testing.T) {
	h, err := os.Hostname()
	if err != nil || h == "" {
		t.Skipf("this host has no name (%v)", err)
	}
	if got := DefaultConfig().Cluster.Name; got != h {
		t.Errorf("default cluster.name %q, want the host's name %q", got, h)
	}
}
