package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Bounds every plan keeps. They are generous for real clusters and small enough that
// a plan's budget can never overflow.
const (
	// MaxStartToClose bounds one attempt of a step.
	MaxStartToClose = time.Hour
	// MaxScheduleToStart bounds the wait for the node's worker to pick a step up.
	MaxScheduleToStart = 10 * time.Minute
	// MaxAttempts bounds the attempts of a step, the first included.
	MaxAttempts = 10
	// MaxBackoff bounds the wait before a step's second attempt (it doubles after).
	MaxBackoff = time.Minute
	// MaxConvergenceTimeout bounds each wait for the members to see the node out.
	MaxConvergenceTimeout = 10 * time.Minute
	// MaxSlowThreshold bounds the slow mark.
	MaxSlowThreshold = 24 * time.Hour
	// MaxSteps bounds the number of steps of a plan.
	MaxSteps = 16
)

// Timeouts of the work around the graceful steps. They are part of the contract
// because a plan's budget counts them.
const (
	// LookupTimeout bounds the lookup of the node (three attempts).
	LookupTimeout = 10 * time.Second
	// EvictTimeout bounds one attempt of the forced eviction (three attempts).
	EvictTimeout = 10 * time.Second
	// RollbackTimeout bounds one attempt of the rollback of an aborted shutdown.
	RollbackTimeout = 5 * time.Second
	// TerminateTimeout is the least time the node's forced termination gets.
	TerminateTimeout = 10 * time.Second
	// ConvergenceSlack is added to the convergence timeout for the check's own
	// timeout, so that it reports "not converged" rather than timing out.
	ConvergenceSlack = 5 * time.Second
	// evictRetries are the eviction retry policy's backoffs (1 s, then 2 s).
	evictRetries = 3 * time.Second
)

// StepSpec is the budget and policy of one graceful step.
type StepSpec struct {
	Name string
	// StartToClose bounds one attempt once the node's worker picked it up.
	StartToClose time.Duration
	// ScheduleToStart bounds the wait for the node's worker to pick the step up; when it
	// passes, the worker is taken to be gone.
	ScheduleToStart time.Duration
	// MaxAttempts counts the first attempt; 1 means no retry.
	MaxAttempts int
	// Backoff is the wait before the second attempt; it doubles after each further one.
	Backoff time.Duration
	// OnFailure is what the shutdown does when the step ends without succeeding.
	OnFailure Policy
}

// stepJSON is the wire shape of a StepSpec: durations as strings.
type stepJSON struct {
	Name            string   `json:"name"`
	StartToClose    Duration `json:"start_to_close"`
	ScheduleToStart Duration `json:"schedule_to_start"`
	MaxAttempts     int      `json:"max_attempts"`
	Backoff         Duration `json:"backoff"`
	OnFailure       Policy   `json:"on_failure"`
}

// MarshalJSON writes the spec with its durations as strings.
func (s StepSpec) MarshalJSON() ([]byte, error) {
	return json.Marshal(stepJSON{s.Name, Duration(s.StartToClose), Duration(s.ScheduleToStart), s.MaxAttempts, Duration(s.Backoff), s.OnFailure})
}

// UnmarshalJSON reads durations as strings or as numbers of nanoseconds.
func (s *StepSpec) UnmarshalJSON(b []byte) error {
	var w stepJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = StepSpec{w.Name, w.StartToClose.Std(), w.ScheduleToStart.Std(), w.MaxAttempts, w.Backoff.Std(), w.OnFailure}
	return nil
}

// Budget is the longest the step can take with every attempt timing out: the bound its
// retries never outlive (the activity's ScheduleToClose). It saturates rather than
// overflows for values out of bounds.
func (s StepSpec) Budget() time.Duration {
	total := s.ScheduleToStart
	backoff := s.Backoff
	for i := 0; i < max(s.MaxAttempts, 1); i++ {
		if i > 0 {
			total = addSat(total, backoff)
			backoff = addSat(backoff, backoff)
		}
		total = addSat(total, s.StartToClose)
	}
	return total
}

// RetryBackoffCap is the largest wait between two attempts of the step: the backoff
// doubled for every retry. Retry policies use it as their maximum interval, so that
// the budget above holds exactly.
func (s StepSpec) RetryBackoffCap() time.Duration {
	d := max(s.Backoff, time.Millisecond)
	for i := 2; i < s.MaxAttempts; i++ {
		d = addSat(d, d)
	}
	return d
}

func addSat(a, b time.Duration) time.Duration {
	if a > 0 && b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}

// Plan is a shutdown's plan: its steps, in order, and what happens around them.
type Plan struct {
	Steps []StepSpec
	// Force lets a healthy peer evict the node when the graceful steps did not get it out.
	Force bool
	// ConvergenceTimeout bounds each wait for the members to see the node out.
	ConvergenceTimeout time.Duration
	// SlowThreshold marks a shutdown that takes longer slow.
	SlowThreshold time.Duration
	// HeartbeatTimeout is how long a node step may go without a heartbeat from the
	// node's process before the attempt is taken to have died with it; 0 turns the
	// check off (then a dead process is noticed at the step's StartToClose).
	HeartbeatTimeout time.Duration
}

type planJSON struct {
	Steps              []StepSpec `json:"steps"`
	Force              bool       `json:"force"`
	ConvergenceTimeout Duration   `json:"convergence_timeout"`
	SlowThreshold      Duration   `json:"slow_threshold"`
	HeartbeatTimeout   Duration   `json:"heartbeat_timeout,omitempty"`
}

// MarshalJSON writes the plan with its durations as strings.
func (p Plan) MarshalJSON() ([]byte, error) {
	return json.Marshal(planJSON{p.Steps, p.Force, Duration(p.ConvergenceTimeout), Duration(p.SlowThreshold), Duration(p.HeartbeatTimeout)})
}

// UnmarshalJSON reads durations as strings or as numbers of nanoseconds.
func (p *Plan) UnmarshalJSON(b []byte) error {
	var w planJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = Plan{w.Steps, w.Force, w.ConvergenceTimeout.Std(), w.SlowThreshold.Std(), w.HeartbeatTimeout.Std()}
	return nil
}

// Default is the plan Farewell ships with: each built-in step with a timeout that fits
// what it does, two attempts, and force on.
func Default() Plan {
	step := func(name string, startToClose time.Duration) StepSpec {
		return StepSpec{Name: name, StartToClose: startToClose, ScheduleToStart: 5 * time.Second,
			MaxAttempts: 2, Backoff: 100 * time.Millisecond, OnFailure: Continue}
	}
	return Plan{
		Steps: []StepSpec{
			// Gossiping the new state takes milliseconds on a healthy cluster; one retry
			// covers a lost broadcast.
			step(SetGracefullyLeft, 2*time.Second),
			// Stopping a local ticker cannot take long.
			step(StopHeartbeat, time.Second),
			// Leave waits for the leave broadcast; a retry after Shutdown is a no-op.
			step(Deregister, 3*time.Second),
			// Each service has its own timeout inside this budget; a retry resumes.
			step(StopServices, 10*time.Second),
		},
		Force:              true,             // never leave a half-stopped member behind
		ConvergenceTimeout: 10 * time.Second, // gossip reaches 100 local members well within this
		SlowThreshold:      30 * time.Second, // a healthy shutdown takes about a second
		HeartbeatTimeout:   2 * time.Second,  // a killed node is noticed in seconds
	}
}

// Clone returns a copy of p that shares nothing with it.
func (p Plan) Clone() Plan {
	p.Steps = slices.Clone(p.Steps)
	return p
}

// Step returns the spec of a step.
func (p Plan) Step(name string) (StepSpec, bool) {
	i := p.Index(name)
	if i < 0 {
		return StepSpec{}, false
	}
	return p.Steps[i], true
}

// Index is the position of a step in the plan, or -1.
func (p Plan) Index(name string) int {
	return slices.IndexFunc(p.Steps, func(s StepSpec) bool { return s.Name == name })
}

// Names lists the plan's steps in order.
func (p Plan) Names() []string {
	out := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		out[i] = s.Name
	}
	return out
}

// Budget bounds a whole shutdown: every step using its whole budget, the convergence
// wait, a forced eviction (three attempts), the node's termination, and the second
// convergence wait.
func (p Plan) Budget() time.Duration {
	var total time.Duration
	for _, s := range p.Steps {
		total = addSat(total, s.Budget())
	}
	return addSat(total, p.AfterSteps())
}

// GracePeriodSlack is what a grace period keeps beyond the plan's budget: the process's
// own exit after its shutdown ended.
const GracePeriodSlack = 5 * time.Second

// GracePeriod is the time a process manager should allow between SIGTERM and SIGKILL
// for a node that runs this plan: its whole budget, and the slack, in whole seconds.
func (p Plan) GracePeriod() time.Duration {
	return addSat(p.Budget(), GracePeriodSlack).Round(time.Second) + time.Second
}

// AfterSteps is the budget of what follows the graceful steps when they fail: two
// convergence waits, the eviction and the termination.
func (p Plan) AfterSteps() time.Duration {
	terminate := TerminateTimeout
	if s, ok := p.Step(StopServices); ok {
		terminate = max(s.StartToClose, TerminateTimeout) + max(s.ScheduleToStart, time.Second)
	}
	return 2*(p.ConvergenceTimeout+ConvergenceSlack) + 3*EvictTimeout + evictRetries + terminate
}

// FieldError names the field of a plan that holds a bad value, as a dotted path
// (steps.deregister.start_to_close) that matches the configuration key under shutdown.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate reports every bad value of the plan, each a *FieldError naming its field.
func (p Plan) Validate() error {
	var problems []error
	bad := func(field, format string, args ...any) {
		problems = append(problems, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case len(p.Steps) == 0:
		bad("steps", "the plan has no steps")
	case len(p.Steps) > MaxSteps:
		bad("steps", "%d steps; at most %d", len(p.Steps), MaxSteps)
	}
	seen := map[string]bool{}
	last := -1
	for _, s := range p.Steps {
		field := "steps." + s.Name
		i := BuiltinIndex(s.Name)
		if i < 0 {
			// A host's own step (WithHostSteps placed it).
			if err := ValidateStepName(s.Name); err != nil {
				bad(field, "unknown step: %v (the built-in steps are %s)", err, strings.Join(Builtin(), ", "))
				continue
			}
			i = last
		}
		switch {
		case seen[s.Name]:
			bad(field, "repeated")
		case i < last:
			bad(field, "out of order (built-in steps run in the order %s)", strings.Join(Builtin(), ", "))
		}
		seen[s.Name] = true
		last = max(last, i)
		s.validate(field, bad)
	}
	between("convergence_timeout", p.ConvergenceTimeout, MaxConvergenceTimeout, bad)
	between("slow_threshold", p.SlowThreshold, MaxSlowThreshold, bad)
	if p.HeartbeatTimeout < 0 || p.HeartbeatTimeout > MaxStartToClose {
		bad("heartbeat_timeout", "%s is not between 0s (off) and %s", p.HeartbeatTimeout, MaxStartToClose)
	}
	return errors.Join(problems...)
}

func (s StepSpec) validate(field string, bad func(field, format string, args ...any)) {
	between(field+".start_to_close", s.StartToClose, MaxStartToClose, bad)
	between(field+".schedule_to_start", s.ScheduleToStart, MaxScheduleToStart, bad)
	if s.MaxAttempts < 1 || s.MaxAttempts > MaxAttempts {
		bad(field+".max_attempts", "%d is not between 1 and %d (1 means no retry)", s.MaxAttempts, MaxAttempts)
	}
	if s.Backoff < 0 || s.Backoff > MaxBackoff {
		bad(field+".backoff", "%s is not between 0s and %s", s.Backoff, MaxBackoff)
	}
	if !s.OnFailure.Valid() {
		bad(field+".on_failure", "%q is not one of continue, abort, force", s.OnFailure)
	}
}

func between(field string, d, most time.Duration, bad func(field, format string, args ...any)) {
	if d <= 0 || d > most {
		bad(field, "%s is not a positive duration of at most %s", d, most)
	}
}
