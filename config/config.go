package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/farewell-project/farewell/plan"
)

// Memberlist timing profiles.
const (
	ProfileLocal = "local"
	ProfileLAN   = "lan"
	ProfileWAN   = "wan"
)

// Config is everything Farewell reads from defaults, a file, the environment and flags.
// Keys are the lower-case snake_case names in the mapstructure tags, dotted by nesting
// (for example shutdown.steps.deregister.start_to_close).
type Config struct {
	Temporal Temporal `mapstructure:"temporal" yaml:"temporal"`
	Cluster  Cluster  `mapstructure:"cluster" yaml:"cluster"`
	Shutdown Shutdown `mapstructure:"shutdown" yaml:"shutdown"`
	Watchdog Watchdog `mapstructure:"watchdog" yaml:"watchdog"`
	Budget   Budget   `mapstructure:"budget" yaml:"budget"`
	Dev      Dev      `mapstructure:"dev" yaml:"dev"`
	Log      Log      `mapstructure:"log" yaml:"log"`
}

// Temporal says how to reach the Temporal service.
type Temporal struct {
	// Address is the frontend's host:port.
	Address string `mapstructure:"address" yaml:"address"`
	// Namespace holds Farewell's workflows.
	Namespace string `mapstructure:"namespace" yaml:"namespace"`
	// APIKey authenticates to Temporal Cloud or a server that takes API keys; setting it
	// turns TLS on.
	APIKey string `mapstructure:"api_key" yaml:"api_key"`
	TLS    TLS    `mapstructure:"tls" yaml:"tls"`
}

// TLS for the connection to Temporal. TLS is used when Enabled, when any file is set,
// or when an API key is set.
type TLS struct {
	// Enabled turns TLS on with the system's root CAs when no CA file is given.
	Enabled bool `mapstructure:"enabled" yaml:"enabled"`
	// CA is a PEM file of the CAs that sign the server's certificate.
	CA string `mapstructure:"ca" yaml:"ca"`
	// Cert and Key are the PEM client certificate and key for mTLS; both or neither.
	Cert string `mapstructure:"cert" yaml:"cert"`
	Key  string `mapstructure:"key" yaml:"key"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName string `mapstructure:"server_name" yaml:"server_name"`
}

// Cluster configures this process's membership in the memberlist cluster.
type Cluster struct {
	// Name of this member; unique in the cluster.
	Name string `mapstructure:"name" yaml:"name"`
	// Bind is the host:port memberlist listens on (UDP and TCP).
	Bind string `mapstructure:"bind" yaml:"bind"`
	// Advertise is the host:port peers use to reach this member; "" means Bind.
	Advertise string `mapstructure:"advertise" yaml:"advertise"`
	// Join lists host:port addresses of members to join through.
	Join []string `mapstructure:"join" yaml:"join"`
	// SecretKey is the base64 of a 16, 24 or 32 byte key; it turns gossip encryption on.
	SecretKey string `mapstructure:"secret_key" yaml:"secret_key"`
	// SecretKeys are gossip keys for a rotation: the first encrypts, all decrypt. Set
	// this or SecretKey.
	SecretKeys []string `mapstructure:"secret_keys" yaml:"secret_keys"`
	// Insecure lets a member bound off loopback run without gossip encryption or
	// eviction keys. It warns.
	Insecure bool `mapstructure:"insecure" yaml:"insecure"`
	// EvictSigningKey is the base64 ed25519 private key orchestrators sign evictions
	// with (worker, dev).
	EvictSigningKey string `mapstructure:"evict_signing_key" yaml:"evict_signing_key"`
	// EvictVerifyKey is the base64 ed25519 public key members check evictions against.
	EvictVerifyKey string `mapstructure:"evict_verify_key" yaml:"evict_verify_key"`
	// Profile picks memberlist's timing defaults: local, lan or wan.
	Profile string `mapstructure:"profile" yaml:"profile"`
	// HeartbeatInterval is how often a node publishes its application heartbeat.
	HeartbeatInterval time.Duration `mapstructure:"heartbeat_interval" yaml:"heartbeat_interval"`
	// HeartbeatExpiration is how long an alive node's heartbeat may stand still before
	// peers report it blocked.
	HeartbeatExpiration time.Duration `mapstructure:"heartbeat_expiration" yaml:"heartbeat_expiration"`
	// Tags are this node's metadata, gossiped (and signed) with it, that drains select
	// nodes by (farewell drain --tag rack=r1).
	Tags map[string]string `mapstructure:"tags" yaml:"tags"`
}

// Shutdown holds the shutdown plan's settings: the plan the orchestrator worker gives
// every shutdown that does not bring its own, and the plan a node runs alone when it
// cannot reach Temporal.
type Shutdown struct {
	// Steps holds the timeouts and policy of each graceful step, by step name.
	Steps map[string]Step `mapstructure:"steps" yaml:"steps"`
	// Force lets a healthy peer evict the node when the graceful steps did not get it out.
	Force bool `mapstructure:"force" yaml:"force"`
	// ConvergenceTimeout bounds the wait for every surviving member to see the node out.
	ConvergenceTimeout time.Duration `mapstructure:"convergence_timeout" yaml:"convergence_timeout"`
	// SlowThreshold marks a shutdown slow when it takes longer.
	SlowThreshold time.Duration `mapstructure:"slow_threshold" yaml:"slow_threshold"`
	// HeartbeatTimeout is how long a node step may go without a heartbeat from the
	// node's process before the attempt is taken to have died with it; 0 turns it off.
	HeartbeatTimeout time.Duration `mapstructure:"heartbeat_timeout" yaml:"heartbeat_timeout"`
	// GracePeriod is what a node's process manager allows between SIGTERM and SIGKILL:
	// a node that loses Temporal during its SIGTERM shutdown finishes it alone within it.
	GracePeriod time.Duration `mapstructure:"grace_period" yaml:"grace_period"`
}

// Watchdog configures the sweep that looks for zombies nobody asked to stop.
type Watchdog struct {
	// Enabled makes the orchestrator keep the farewell-watchdog schedule.
	Enabled bool `mapstructure:"enabled" yaml:"enabled"`
	// Interval is how often the sweep runs.
	Interval time.Duration `mapstructure:"interval" yaml:"interval"`
	// BlockedAfter is how long an alive node's heartbeat may stand still.
	BlockedAfter time.Duration `mapstructure:"blocked_after" yaml:"blocked_after"`
	// LeavingAfter is how long a node may stay leaving with no shutdown running.
	LeavingAfter time.Duration `mapstructure:"leaving_after" yaml:"leaving_after"`
	// EvictedAfter is how long after its eviction a process may still be heard
	// heartbeating before it counts as a zombie (gossip takes a moment to reach it).
	EvictedAfter time.Duration `mapstructure:"evicted_after" yaml:"evicted_after"`
	// Action is report (log, metric, a searchable sweep run) or shutdown (also start
	// a shutdown of each zombie, reason "watchdog: <why>").
	Action string `mapstructure:"action" yaml:"action"`
}

// Budget is the cluster's disruption budget, read by the orchestrator: every shutdown,
// however it starts (CLI, drain, a node's SIGTERM, the watchdog), takes a lease from it.
type Budget struct {
	// MaxParallel caps the shutdowns in flight at once; 0 means no cap.
	MaxParallel int `mapstructure:"max_parallel" yaml:"max_parallel"`
	// MinAlive is the fewest nodes in service a new shutdown may leave, counting
	// those in flight as gone; 0 means no floor.
	MinAlive int `mapstructure:"min_alive" yaml:"min_alive"`
}

// Limits are the budget as the workflows take it.
func (b Budget) Limits() plan.Limits {
	return plan.Limits{MaxParallel: b.MaxParallel, MinAlive: b.MinAlive}
}

// Step is the budget and policy of one graceful step.
type Step struct {
	// StartToClose bounds one attempt once the node's worker has picked it up.
	StartToClose time.Duration `mapstructure:"start_to_close" yaml:"start_to_close"`
	// ScheduleToStart bounds the wait for the node's worker to pick the step up; when it
	// passes, the node's worker is taken to be gone.
	ScheduleToStart time.Duration `mapstructure:"schedule_to_start" yaml:"schedule_to_start"`
	// MaxAttempts is the number of attempts, the first included; 1 means no retry.
	MaxAttempts int `mapstructure:"max_attempts" yaml:"max_attempts"`
	// Backoff is the wait before the second attempt; it doubles after each further one.
	Backoff time.Duration `mapstructure:"backoff" yaml:"backoff"`
	// OnFailure is continue, abort or force.
	OnFailure plan.Policy `mapstructure:"on_failure" yaml:"on_failure"`
}

// Dev configures the embedded stack of `farewell dev` and `farewell demo`.
type Dev struct {
	// Port of the embedded Temporal gRPC frontend.
	Port int `mapstructure:"port" yaml:"port"`
	// UIPort of the Temporal UI.
	UIPort int `mapstructure:"ui_port" yaml:"ui_port"`
	// DB is the SQLite file; "" keeps everything in memory.
	DB string `mapstructure:"db" yaml:"db"`
	// Nodes is the number of demo nodes to run.
	Nodes int `mapstructure:"nodes" yaml:"nodes"`
	// TLS makes the embedded server serve TLS; its own clients (workers, UI) connect
	// with temporal.tls.* (ca, cert, key, server_name).
	TLS DevTLS `mapstructure:"tls" yaml:"tls"`
}

// DevTLS is the embedded server's TLS. Files are PEM.
type DevTLS struct {
	// Cert and Key are the server's certificate and key; setting them turns TLS on.
	Cert string `mapstructure:"cert" yaml:"cert"`
	Key  string `mapstructure:"key" yaml:"key"`
	// ClientCA makes the server require client certificates signed by it (mTLS).
	ClientCA string `mapstructure:"client_ca" yaml:"client_ca"`
}

// Log configures the process's slog output.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `mapstructure:"level" yaml:"level"`
	// Format is text or json.
	Format string `mapstructure:"format" yaml:"format"`
}

// DefaultConfig returns the configuration used when nothing else is set. It is tuned
// for a single machine: everything listens on loopback.
func DefaultConfig() Config {
	return Config{
		Temporal: Temporal{
			Address:   "127.0.0.1:7233", // where `farewell dev` serves
			Namespace: "default",        // the namespace every Temporal server starts with
		},
		Cluster: Cluster{
			Name:                hostname(),       // names are unique per machine by default
			Bind:                "127.0.0.1:7946", // memberlist's port, loopback until told otherwise
			Profile:             ProfileLocal,     // timings for loopback; use lan or wan on real networks
			HeartbeatInterval:   time.Second,      // a heartbeat a second costs little
			HeartbeatExpiration: 5 * time.Second,  // five missed heartbeats before "blocked"
		},
		Shutdown: ShutdownOf(plan.Default()), // see plan.Default for why each value
		Watchdog: Watchdog{
			Enabled:      true,             // zombies nobody asked to stop are what Farewell is against
			Interval:     time.Minute,      // a sweep is a handful of in-memory lookups
			BlockedAfter: time.Minute,      // twelve heartbeat expirations: not a hiccup
			LeavingAfter: 5 * time.Minute,  // well past any shutdown's budget
			EvictedAfter: 30 * time.Second, // gossip reaches an evicted node well within this
			Action:       WatchdogReport,   // tell; stopping nodes on its own is opted into
		},
		Budget: Budget{
			MaxParallel: 0, // no cap until the operator knows the cluster's; drains bring their own
			MinAlive:    0, // no floor, for the same reason
		},
		Dev: Dev{
			Port:   7233,                    // Temporal's usual gRPC port
			UIPort: 8233,                    // the Temporal dev server's usual UI port
			DB:     ".farewell/temporal.db", // survives restarts; "" for memory
			Nodes:  5,                       // enough to watch gossip converge
		},
		Log: Log{
			Level:  "info", // shutdown progress is worth seeing
			Format: "text", // for people; json for log pipelines
		},
	}
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "farewell-node"
	}
	return h
}

// What the watchdog does with a zombie it finds.
const (
	WatchdogReport   = "report"
	WatchdogShutdown = "shutdown"
)

// DefaultGracePeriod is Kubernetes' and systemd's usual time between SIGTERM and SIGKILL.
const DefaultGracePeriod = 30 * time.Second

// ShutdownOf is the shutdown.* settings of a plan.
func ShutdownOf(p plan.Plan) Shutdown {
	s := Shutdown{Steps: map[string]Step{}, Force: p.Force, ConvergenceTimeout: p.ConvergenceTimeout, SlowThreshold: p.SlowThreshold,
		HeartbeatTimeout: p.HeartbeatTimeout, GracePeriod: DefaultGracePeriod}
	for _, st := range p.Steps {
		s.Steps[st.Name] = Step{StartToClose: st.StartToClose, ScheduleToStart: st.ScheduleToStart, MaxAttempts: st.MaxAttempts,
			Backoff: st.Backoff, OnFailure: st.OnFailure}
	}
	return s
}

// Plan is the plan the shutdown.* settings describe, validated: a problem is a
// *FieldError naming the configuration key. Steps run in the built-in order.
func (s Shutdown) Plan() (plan.Plan, error) {
	p := plan.Plan{Force: s.Force, ConvergenceTimeout: s.ConvergenceTimeout, SlowThreshold: s.SlowThreshold, HeartbeatTimeout: s.HeartbeatTimeout}
	var problems []error
	for _, name := range plan.Builtin() {
		st, ok := s.Steps[name]
		if !ok {
			problems = append(problems, &FieldError{Key: "shutdown.steps." + name, Msg: "missing"})
			continue
		}
		p.Steps = append(p.Steps, plan.StepSpec{Name: name, StartToClose: st.StartToClose, ScheduleToStart: st.ScheduleToStart,
			MaxAttempts: st.MaxAttempts, Backoff: st.Backoff, OnFailure: st.OnFailure})
	}
	for _, name := range sortedKeys(s.Steps) {
		if !plan.IsBuiltin(name) && plan.ValidateStepName(name) != nil {
			problems = append(problems, &FieldError{Key: "shutdown.steps." + name,
				Msg: fmt.Sprintf("unknown step %q (steps are %s)", name, strings.Join(plan.Builtin(), ", "))})
		}
	}
	for _, e := range leaves(p.Validate()) {
		var fe *plan.FieldError
		if errors.As(e, &fe) {
			e = &FieldError{Key: "shutdown." + fe.Field, Msg: fe.Msg}
		}
		if len(p.Steps) > 0 || !strings.HasPrefix(e.Error(), "shutdown.steps:") {
			problems = append(problems, e)
		}
	}
	return p, errors.Join(problems...)
}

// HostSteps are the settings of steps that are not built in: a host application's own
// (agent.Step), which they override field by field (a field left out keeps the host's).
func (s Shutdown) HostSteps() map[string]Step {
	out := map[string]Step{}
	for name, st := range s.Steps {
		if !plan.IsBuiltin(name) {
			out[name] = st
		}
	}
	return out
}

// Settings are the fields st sets (a zero one is unset).
func (st Step) Settings() plan.StepSettings {
	var s plan.StepSettings
	dur := func(d time.Duration) *plan.Duration {
		if d == 0 {
			return nil
		}
		v := plan.Duration(d)
		return &v
	}
	s.StartToClose, s.ScheduleToStart, s.Backoff = dur(st.StartToClose), dur(st.ScheduleToStart), dur(st.Backoff)
	if st.MaxAttempts != 0 {
		s.MaxAttempts = &st.MaxAttempts
	}
	if st.OnFailure != "" {
		s.OnFailure = &st.OnFailure
	}
	return s
}

// Over returns spec with the fields st sets.
func (st Step) Over(spec plan.StepSpec) plan.StepSpec { return st.Settings().Over(spec) }

// MustPlan is Plan for settings known to be valid (they passed Validate).
func (s Shutdown) MustPlan() plan.Plan {
	p, err := s.Plan()
	if err != nil {
		panic("config: shutdown settings were not validated: " + err.Error())
	}
	return p
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// leaves flattens joined errors into the single problems they hold.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}
