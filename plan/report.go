package plan

import (
	"encoding/json"
	"time"
)

// StepStatus is how a step ended, or where it is while the shutdown runs.
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
	// picked the step up, or when an earlier run did the work).
	Attempts int       `json:"attempts"`
	Started  time.Time `json:"started,omitzero"`
	Duration Duration  `json:"duration"`
	Error    string    `json:"error,omitempty"`
	Note     string    `json:"note,omitempty"`
}

// UnmarshalJSON also reads the duration_ms of reports recorded by earlier versions.
func (r *StepResult) UnmarshalJSON(b []byte) error {
	type plain StepResult
	var w struct {
		plain
		DurationMS *int64 `json:"duration_ms"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = StepResult(w.plain)
	if w.DurationMS != nil && r.Duration == 0 {
		r.Duration = Duration(time.Duration(*w.DurationMS) * time.Millisecond)
	}
	return nil
}

// Outcome is how a shutdown ended.
type Outcome string

const (
	// Graceful: every step succeeded and the members see the node left.
	Graceful Outcome = "graceful"
	// Degraded: a step failed, but the node is out without an eviction.
	Degraded Outcome = "degraded"
	// Forced: the node was evicted by a peer or terminated, and is out.
	Forced Outcome = "forced"
	// Aborted: the shutdown was rolled back; the node is alive and serving.
	Aborted Outcome = "aborted"
	// Failed: the node is neither known out nor back in service. A bug to chase.
	Failed Outcome = "failed"
)

// Out reports whether the node is out of the cluster after this outcome.
func (o Outcome) Out() bool { return o == Graceful || o == Degraded || o == Forced }

// Convergence is what a convergence check found.
type Convergence string

const (
	// Converged: enough members answered and every one sees the node out.
	Converged Convergence = "converged"
	// Pending: some member still sees the node in.
	Pending Convergence = "pending"
	// Unverified: too few members answered to say; never taken for converged.
	Unverified Convergence = "unverified"
)
