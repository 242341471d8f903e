package workflows

import (
	"fmt"
	"time"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
)

// DrainRequest asks to take many nodes out, never more at once than the drain's
// max-parallel and the cluster's budget allow.
type DrainRequest struct {
	// Name identifies the drain: its workflow ID is farewell-drain-<name>.
	Name     string              `json:"name"`
	Selector activities.Selector `json:"selector"`
	// Limits are the drain's own: MaxParallel shutdowns of this drain in flight at
	// once (0 means 1), MinAlive tightens the cluster's floor for this drain.
	Limits plan.Limits `json:"limits"`
	// FailureThreshold stops starting shutdowns after that many did not end graceful
	// or degraded; 0 never stops.
	FailureThreshold int `json:"failure_threshold"`
	// PauseBetween is the least time between two starts.
	PauseBetween plan.Duration `json:"pause_between,omitempty"`
	// GateTimeout is how long the health gate may wait before the drain pauses; 0
	// means DefaultGateTimeout.
	GateTimeout plan.Duration `json:"gate_timeout,omitempty"`
	Reason      string        `json:"reason,omitempty"`
	RequestedBy string        `json:"requested_by,omitempty"`
	// NodesPerRun is how many shutdowns one run of the drain starts before it
	// continues as new, keeping its history bounded; 0 means DefaultNodesPerRun.
	NodesPerRun int `json:"nodes_per_run,omitempty"`
	// Carry is the drain so far, carried into its next run.
	Carry *DrainReport `json:"carry,omitempty"`
}

// Drain defaults and bounds.
const (
	DefaultGateTimeout = 5 * time.Minute
	DefaultNodesPerRun = 500
	maxDrainPause      = time.Hour
	maxNodesPerRun     = 10_000
)

// Validate checks what people wrote into the request, naming the field.
func (r DrainRequest) Validate() error {
	if err := plan.ValidateNodeName(r.Name); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	if err := r.Selector.Validate(); err != nil {
		return err
	}
	if err := r.Limits.Validate(); err != nil {
		return err
	}
	switch {
	case r.FailureThreshold < 0 || r.FailureThreshold > plan.MaxLimit:
		return fmt.Errorf("failure_threshold: %d: want 0 (never stop) to %d", r.FailureThreshold, plan.MaxLimit)
	case r.PauseBetween < 0 || r.PauseBetween.Std() > maxDrainPause:
		return fmt.Errorf("pause_between: %s: want 0 to %s", r.PauseBetween, maxDrainPause)
	case r.GateTimeout < 0 || r.GateTimeout.Std() > maxDrainPause:
		return fmt.Errorf("gate_timeout: %s: want 0 (the default, %s) to %s", r.GateTimeout, DefaultGateTimeout, maxDrainPause)
	case r.NodesPerRun < 0 || r.NodesPerRun > maxNodesPerRun:
		return fmt.Errorf("nodes_per_run: %d: want 0 (the default, %d) to %d", r.NodesPerRun, DefaultNodesPerRun, maxNodesPerRun)
	}
	if err := plan.ValidateText(r.Reason); err != nil {
		return fmt.Errorf("reason: %w", err)
	}
	if err := plan.ValidateText(r.RequestedBy); err != nil {
		return fmt.Errorf("requested_by: %w", err)
	}
	return nil
}

// maxParallel is the drain's own cap on its shutdowns in flight.
func (r DrainRequest) maxParallel() int { return max(r.Limits.MaxParallel, 1) }

// DrainNodeState is where one node of a drain stands.
type DrainNodeState string

const (
	// DrainPending: not started yet.
	DrainPending DrainNodeState = "pending"
	// DrainRunning: its shutdown, started by the drain, runs.
	DrainRunning DrainNodeState = "running"
	// DrainJoined: a shutdown started by someone else (or by an earlier run of the
	// drain) runs; the drain follows it.
	DrainJoined DrainNodeState = "joined"
	// DrainDone: its shutdown ended (Outcome says how).
	DrainDone DrainNodeState = "done"
	// DrainSkipped: nothing was done (out already, or skipped by the operator).
	DrainSkipped DrainNodeState = "skipped"
	// DrainBlocked: the min-alive floor held it back.
	DrainBlocked DrainNodeState = "blocked"
)

// DrainNode is one node of a drain.
type DrainNode struct {
	Node     string         `json:"node"`
	State    DrainNodeState `json:"state"`
	Outcome  plan.Outcome   `json:"outcome,omitempty"`
	RunID    string         `json:"run_id,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Started  time.Time      `json:"started,omitzero"`
	Took     plan.Duration  `json:"took,omitempty"`
	Note     string         `json:"note,omitempty"`
	// Join: a shutdown of it ran already when the drain looked; it is joined.
	Join bool `json:"join,omitempty"`
	// Gated: the health gate has nothing more to check of it.
	Gated bool `json:"gated,omitempty"`
}

// DrainOutcome is how a drain ended.
type DrainOutcome string

const (
	// DrainCompleted: every chosen node was dealt with (each node's outcome says how).
	DrainCompleted DrainOutcome = "completed"
	// DrainStopped: it stopped starting shutdowns: the failure threshold, or the
	// min-alive floor.
	DrainStopped DrainOutcome = "stopped"
	// DrainAborted: the operator aborted it; the shutdowns running then finished.
	DrainAborted DrainOutcome = "aborted"
)

// DrainReport is a drain's progress, and its result.
type DrainReport struct {
	Name        string              `json:"name"`
	WorkflowID  string              `json:"workflow_id"`
	RunID       string              `json:"run_id"`
	Selector    activities.Selector `json:"selector"`
	Reason      string              `json:"reason,omitempty"`
	RequestedBy string              `json:"requested_by,omitempty"`
	// MaxParallel is the drain's cap now (set-max-parallel changes it); MinAlive its
	// own floor; Cluster the cluster's budget when it started.
	MaxParallel      int           `json:"max_parallel"`
	MinAlive         int           `json:"min_alive"`
	Cluster          plan.Limits   `json:"cluster"`
	FailureThreshold int           `json:"failure_threshold"`
	PauseBetween     plan.Duration `json:"pause_between,omitempty"`
	// Waves and WorstCase are the pre-flight's plan.
	Waves     int           `json:"waves"`
	WorstCase plan.Duration `json:"worst_case"`
	Nodes     []DrainNode   `json:"nodes"`
	// Phase is preflight, running or done.
	Phase string `json:"phase"`
	// Paused, Aborted and Stopped say why the drain starts nothing now (each "" when
	// it does not apply); Waiting what it waits for right now.
	Paused   string `json:"paused,omitempty"`
	Aborted  string `json:"aborted,omitempty"`
	Stopped  string `json:"stopped,omitempty"`
	Floor    string `json:"floor,omitempty"`
	Waiting  string `json:"waiting,omitempty"`
	Failures int    `json:"failures"`
	// LastStart is when the drain last started a shutdown.
	LastStart time.Time     `json:"last_start,omitzero"`
	Started   time.Time     `json:"started"`
	Finished  time.Time     `json:"finished,omitzero"`
	Total     plan.Duration `json:"total"`
	Outcome   DrainOutcome  `json:"outcome,omitempty"`
	Why       string        `json:"why,omitempty"`
	// Runs counts the drain's runs before this one (continue-as-new).
	Runs int `json:"runs,omitempty"`
}

// Count returns how many nodes are in each state.
func (r *DrainReport) Count() map[DrainNodeState]int {
	c := map[DrainNodeState]int{}
	for _, n := range r.Nodes {
		c[n.State]++
	}
	return c
}

// InFlight lists the nodes whose shutdown runs.
func (r *DrainReport) InFlight() []string {
	var out []string
	for _, n := range r.Nodes {
		if n.State == DrainRunning || n.State == DrainJoined {
			out = append(out, n.Node)
		}
	}
	return out
}

// DrainControl is the argument of the pause, resume and abort updates.
type DrainControl struct {
	Reason string `json:"reason,omitempty"`
}

// SetMaxParallelRequest is the argument of set-max-parallel.
type SetMaxParallelRequest struct {
	MaxParallel int `json:"max_parallel"`
}

// SkipNodeRequest is the argument of skip-node.
type SkipNodeRequest struct {
	Node   string `json:"node"`
	Reason string `json:"reason,omitempty"`
}
