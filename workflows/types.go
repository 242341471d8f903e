package workflows

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/farewell-project/farewell/plan"
)

// ShutdownRequest asks for the graceful shutdown of one node.
type ShutdownRequest struct {
	// Node is the cluster member to take out.
	Node string `json:"node"`
	// Reason is recorded in the report and the eviction, if any.
	Reason string `json:"reason,omitempty"`
	// RequestedBy says who asked: a user, a tool, "sigterm".
	RequestedBy string `json:"requested_by,omitempty"`
	// Plan replaces the orchestrator's plan as a whole; nil means the plan the
	// orchestrator worker is configured with, recorded once in the history.
	Plan *plan.Plan `json:"plan,omitempty"`
	// Override changes only the values it sets of that plan.
	Override *plan.Override `json:"override,omitempty"`
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
	// Drain names the drain this shutdown is part of, if any.
	Drain string `json:"drain,omitempty"`
	// Leased: the drain that started this run holds its lease of the budget already.
	Leased bool `json:"leased,omitempty"`
	// Unblockable: the node's own SIGTERM asked. The budget never holds it back (the
	// node is going away anyway) but counts it.
	Unblockable bool `json:"unblockable,omitempty"`
	// Trigger is a token unique to the call that made this request: a starter that
	// finds it in the run it got knows it started the run rather than joined it.
	Trigger string `json:"trigger,omitempty"`
}

// Validate checks what people wrote into the request, naming the field: the node's
// name (plan.ValidateNodeName), the reason and the requester (plan.ValidateText).
func (r ShutdownRequest) Validate() error {
	if err := plan.ValidateNodeName(r.Node); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := plan.ValidateText(r.Reason); err != nil {
		return fmt.Errorf("reason: %w", err)
	}
	if err := plan.ValidateText(r.RequestedBy); err != nil {
		return fmt.Errorf("requested_by: %w", err)
	}
	if r.Drain != "" {
		if err := plan.ValidateNodeName(r.Drain); err != nil {
			return fmt.Errorf("drain: %w", err)
		}
	}
	return nil
}

// ShutdownReport is the result of a shutdown, and its progress while it runs.
type ShutdownReport struct {
	// The first fields are what a person reads first in the result's JSON: how it
	// ended and why, whose node, who asked and why, what forced it.
	Outcome plan.Outcome `json:"outcome,omitempty"`
	// Why says in one sentence why the run ended as it did (set when it ends; Explain
	// writes it for runs recorded before it existed).
	Why         string `json:"why,omitempty"`
	Node        string `json:"node"`
	Reason      string `json:"reason,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
	// ForceReason says why the eviction was used.
	ForceReason string `json:"force_reason,omitempty"`
	// EvictedBy names the member that evicted the node, when one did.
	EvictedBy  string `json:"evicted_by,omitempty"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	// NodeStateAtStart is the node's state when the shutdown began (set once it was
	// looked up), not its state now.
	NodeStateAtStart string `json:"node_state_at_start,omitempty"`
	// NodeState is the same, under its earlier name, for clients of earlier versions
	// (their CLI waits for it to know the lookup is done).
	NodeState string `json:"node_state,omitempty"`
	// NodeInstance identifies the node's process the shutdown acted on.
	NodeInstance string            `json:"node_instance,omitempty"`
	Steps        []plan.StepResult `json:"steps"`
	// Evicted is set when the node was force-evicted.
	Evicted bool `json:"evicted"`
	// Terminated is set when the node's forced termination ran.
	Terminated bool `json:"terminated"`
	// RolledBack is set when an abort put the node back in service.
	RolledBack bool `json:"rolled_back"`
	// Gone says why the process the run acts on is gone (another process has its
	// name, or no member knows it): out, and never acted on again.
	Gone string `json:"gone,omitempty"`
	// Converged is set when the members saw the node out; Convergence says what the
	// last check found (converged, pending, unverified) and ConvergenceTook how long
	// it waited.
	Converged       bool             `json:"converged"`
	Convergence     plan.Convergence `json:"convergence,omitempty"`
	ConvergenceTook plan.Duration    `json:"convergence_took"`
	Pending         []string         `json:"pending,omitempty"`
	// Views maps each member that answered to the node's state as it saw it last.
	Views    map[string]string `json:"views,omitempty"`
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished,omitzero"`
	Total    plan.Duration     `json:"total"`
	Slow     bool              `json:"slow"`
	// SlowestStep names the step that took longest.
	SlowestStep string `json:"slowest_step,omitempty"`
	// Waiting says why the shutdown waits for the cluster's budget, while it does.
	Waiting string `json:"waiting,omitempty"`
	// Budget says how the budget let it run, when worth saying: how long it waited,
	// or what a node's own SIGTERM went beyond.
	Budget string `json:"budget,omitempty"`
	// Error says why the outcome is failed, or what went wrong around the steps.
	Error string `json:"error,omitempty"`
	// TraceID is the OpenTelemetry trace of this shutdown, when tracing is on.
	TraceID string `json:"trace_id,omitempty"`
}

// UnmarshalJSON also reads the fields of reports recorded by earlier versions
// (total_ms, convergence_ms, node_state), and explains a run recorded without why.
func (r *ShutdownReport) UnmarshalJSON(b []byte) error {
	type plain ShutdownReport
	var w struct {
		plain
		TotalMS       *int64 `json:"total_ms"`
		ConvergenceMS *int64 `json:"convergence_ms"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = ShutdownReport(w.plain)
	if w.TotalMS != nil && r.Total == 0 {
		r.Total = plan.Duration(time.Duration(*w.TotalMS) * time.Millisecond)
	}
	if w.ConvergenceMS != nil && r.ConvergenceTook == 0 {
		r.ConvergenceTook = plan.Duration(time.Duration(*w.ConvergenceMS) * time.Millisecond)
	}
	if r.NodeStateAtStart == "" {
		r.NodeStateAtStart = r.NodeState
	}
	if r.Why == "" && r.Outcome != "" {
		r.Why = r.Explain()
	}
	return nil
}

// Step returns the result of a step by name.
func (r *ShutdownReport) Step(name string) (plan.StepResult, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return plan.StepResult{}, false
}

// CurrentStep is the running step, or "" when none is.
func (r *ShutdownReport) CurrentStep() string {
	for _, s := range r.Steps {
		if s.Status == plan.StepRunning {
			return s.Name
		}
	}
	return ""
}

// ForceNowRequest is the argument of the force-now update.
type ForceNowRequest struct {
	Reason string `json:"reason,omitempty"`
}

// SkipStepRequest is the argument of the skip-step update.
type SkipStepRequest struct {
	Step   string `json:"step"`
	Reason string `json:"reason,omitempty"`
}

// ExtendTimeoutRequest is the argument of the extend-timeout update.
type ExtendTimeoutRequest struct {
	Step         string        `json:"step"`
	StartToClose plan.Duration `json:"start_to_close"`
}

// ErrTypeBadRequest: the request or its plan cannot be run.
const ErrTypeBadRequest = "BadRequest"
