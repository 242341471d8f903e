package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/farewell-project/farewell/config"
)

// ShutdownRequest asks for the graceful shutdown of one node.
type ShutdownRequest struct {
	// Node is the cluster member to take out.
	Node string `json:"node"`
	// Reason is recorded in the report and the eviction, if any.
	Reason string `json:"reason,omitempty"`
	// RequestedBy says who asked: a user, a tool, "sigterm".
	RequestedBy string `json:"requested_by,omitempty"`
	// Plan overrides the default plan; nil means the plan of the worker's defaults,
	// recorded once in the history.
	Plan *Plan `json:"plan,omitempty"`
	// Force skips the graceful steps and force-evicts at once (for a node known to be
	// wedged).
	Force bool `json:"force,omitempty"`
	// SkipSucceeded lists steps that already succeeded in an earlier run (a retry); they
	// are not run again.
	SkipSucceeded []string `json:"skip_succeeded,omitempty"`
	// RetryOf is the run this one retries. A retry runs its steps even when the node is
	// already out, so that each can find its work done and say so.
	RetryOf string `json:"retry_of,omitempty"`
	// RetryInstance is the node's process in the run retried; if the node restarted
	// since, SkipSucceeded is ignored (what succeeded was done to another process).
	RetryInstance string `json:"retry_instance,omitempty"`
}

// StepSpec is the budget and policy of one graceful step.
type StepSpec struct {
	Name            string        `json:"name"`
	StartToClose    time.Duration `json:"start_to_close"`
	ScheduleToStart time.Duration `json:"schedule_to_start"`
	MaxAttempts     int           `json:"max_attempts"`
	Backoff         time.Duration `json:"backoff"`
	// OnFailure is continue, abort or force (config.OnFailure*).
	OnFailure string `json:"on_failure"`
}

// Budget is the longest the step can take with every attempt timing out: the bound
// its retries never outlive (the activity's ScheduleToClose).
func (s StepSpec) Budget() time.Duration {
	total := s.ScheduleToStart + time.Duration(s.MaxAttempts)*s.StartToClose
	backoff := s.Backoff
	for i := 1; i < s.MaxAttempts; i++ {
		total += backoff
		backoff *= 2
	}
	return total
}

// Plan is the shutdown plan: the graceful steps and what happens around them.
type Plan struct {
	Steps []StepSpec `json:"steps"`
	// Force lets a healthy peer evict the node when the graceful steps did not get it out.
	Force bool `json:"force"`
	// ConvergenceTimeout bounds each wait for every surviving member to see the node out.
	ConvergenceTimeout time.Duration `json:"convergence_timeout"`
	// SlowThreshold marks a shutdown that takes longer slow.
	SlowThreshold time.Duration `json:"slow_threshold"`
}

// PlanFromConfig builds the plan from the shutdown.* settings.
func PlanFromConfig(c config.Shutdown) Plan {
	p := Plan{Force: c.Force, ConvergenceTimeout: c.ConvergenceTimeout, SlowThreshold: c.SlowThreshold}
	for _, name := range config.StepNames {
		s := c.Steps[name]
		p.Steps = append(p.Steps, StepSpec{Name: name, StartToClose: s.StartToClose, ScheduleToStart: s.ScheduleToStart,
			MaxAttempts: s.MaxAttempts, Backoff: s.Backoff, OnFailure: s.OnFailure})
	}
	return p
}

// DefaultPlan is the plan of the default configuration.
func DefaultPlan() Plan { return PlanFromConfig(config.DefaultConfig().Shutdown) }

// Step returns the spec of a step in the plan.
func (p Plan) Step(name string) (StepSpec, bool) {
	for _, s := range p.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return StepSpec{}, false
}

// Budget bounds the whole shutdown: every step using its whole budget, the
// convergence wait, a forced eviction (three attempts), the node's termination, and the
// second convergence wait.
func (p Plan) Budget() time.Duration {
	var total time.Duration
	for _, s := range p.Steps {
		total += s.Budget()
	}
	terminate := terminateTimeout
	if s, ok := p.Step(config.StepStopServices); ok {
		terminate = max(s.StartToClose, terminateTimeout) + max(s.ScheduleToStart, time.Second)
	}
	const evictRetries = 3 * time.Second // the retry policy's 1 s and 2 s backoffs
	return total + 2*(p.ConvergenceTimeout+convergenceSlack) + 3*evictTimeout + evictRetries + terminate
}

// Validate reports what is wrong with a plan, naming the step and field.
func (p Plan) Validate() error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if len(p.Steps) == 0 {
		bad("plan has no steps")
	}
	last := -1
	for _, s := range p.Steps {
		i := slices.Index(config.StepNames, s.Name)
		switch {
		case i < 0:
			bad("step %q: unknown (steps are %s)", s.Name, strings.Join(config.StepNames, ", "))
			continue
		case i <= last:
			bad("step %q: out of order or repeated (order is %s)", s.Name, strings.Join(config.StepNames, ", "))
		}
		last = i
		if s.StartToClose <= 0 {
			bad("step %s: start_to_close %s is not positive", s.Name, s.StartToClose)
		}
		if s.ScheduleToStart <= 0 {
			bad("step %s: schedule_to_start %s is not positive", s.Name, s.ScheduleToStart)
		}
		if s.MaxAttempts < 1 {
			bad("step %s: max_attempts %d is less than 1", s.Name, s.MaxAttempts)
		}
		if s.Backoff < 0 {
			bad("step %s: backoff %s is negative", s.Name, s.Backoff)
		}
		if !slices.Contains([]string{config.OnFailureContinue, config.OnFailureAbort, config.OnFailureForce}, s.OnFailure) {
			bad("step %s: on_failure %q is not one of continue, abort, force", s.Name, s.OnFailure)
		}
	}
	if p.ConvergenceTimeout <= 0 {
		bad("convergence_timeout %s is not positive", p.ConvergenceTimeout)
	}
	if p.SlowThreshold <= 0 {
		bad("slow_threshold %s is not positive", p.SlowThreshold)
	}
	return errors.Join(problems...)
}

// StepStatus is how a step ended (or where it is, while the shutdown runs).
type StepStatus string

const (
	StepPending   StepStatus = "pending"
	StepRunning   StepStatus = "running"
	StepSucceeded StepStatus = "succeeded"
	StepFailed    StepStatus = "failed"
	StepTimedOut  StepStatus = "timed_out"
	StepSkipped   StepStatus = "skipped"
)

// StepResult is the journal entry of one step.
type StepResult struct {
	Name   string     `json:"name"`
	Status StepStatus `json:"status"`
	// Attempts is the number of attempts that started (0 when the node's worker never
	// picked the step up).
	Attempts   int       `json:"attempts"`
	Started    time.Time `json:"started,omitzero"`
	DurationMS int64     `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
	Note       string    `json:"note,omitempty"`
}

// Outcome is how a shutdown ended.
type Outcome string

const (
	// OutcomeGraceful: every step succeeded and every member sees the node left.
	OutcomeGraceful Outcome = "graceful"
	// OutcomeDegraded: a step failed, but the node is out without an eviction.
	OutcomeDegraded Outcome = "degraded"
	// OutcomeForced: the node was evicted by a peer and is out.
	OutcomeForced Outcome = "forced"
	// OutcomeAborted: the shutdown was rolled back; the node is alive and serving.
	OutcomeAborted Outcome = "aborted"
	// OutcomeFailed: the node is neither out nor back in service. A bug to chase.
	OutcomeFailed Outcome = "failed"
)

// Out reports whether the node is out of the cluster after this outcome.
func (o Outcome) Out() bool {
	return o == OutcomeGraceful || o == OutcomeDegraded || o == OutcomeForced
}

// ShutdownReport is the result of a shutdown, and its progress while it runs.
type ShutdownReport struct {
	WorkflowID  string  `json:"workflow_id"`
	RunID       string  `json:"run_id"`
	Node        string  `json:"node"`
	Reason      string  `json:"reason,omitempty"`
	RequestedBy string  `json:"requested_by,omitempty"`
	Outcome     Outcome `json:"outcome,omitempty"`
	// NodeState is the node's state when the shutdown began (set once it was looked up).
	NodeState string `json:"node_state,omitempty"`
	// NodeInstance identifies the node's process the shutdown acted on.
	NodeInstance string       `json:"node_instance,omitempty"`
	Steps        []StepResult `json:"steps"`
	// Evicted is set when the node was force-evicted.
	Evicted bool `json:"evicted"`
	// ForceReason says why the eviction was used.
	ForceReason string `json:"force_reason,omitempty"`
	// Terminated is set when the node's forced termination ran.
	Terminated bool `json:"terminated"`
	// RolledBack is set when an abort put the node back in service.
	RolledBack bool `json:"rolled_back"`
	// Converged is set when every surviving member saw the node out.
	Converged     bool     `json:"converged"`
	ConvergenceMS int64    `json:"convergence_ms"`
	Pending       []string `json:"pending,omitempty"`
	// Views maps each surviving member to the node's state as it saw it last.
	Views    map[string]string `json:"views,omitempty"`
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished,omitzero"`
	TotalMS  int64             `json:"total_ms"`
	Slow     bool              `json:"slow"`
	// SlowestStep names the step that took longest.
	SlowestStep string `json:"slowest_step,omitempty"`
	// Error says why the outcome is failed, or what went wrong around the steps.
	Error string `json:"error,omitempty"`
	// TraceID is the OpenTelemetry trace of this shutdown, when tracing is on.
	TraceID string `json:"trace_id,omitempty"`
}

// Step returns the result of a step by name.
func (r *ShutdownReport) Step(name string) (StepResult, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return StepResult{}, false
}

// CurrentStep is the running step, or "" when none is.
func (r *ShutdownReport) CurrentStep() string {
	for _, s := range r.Steps {
		if s.Status == StepRunning {
			return s.Name
		}
	}
	return ""
}
