package workflows

import (
	"strconv"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/activities"
)

// Names shared by workflows, workers, starters and the Temporal UI.
const (
	// TaskQueue is the orchestrator's queue: the workflows and the cluster activities
	// (lookup, force-evict, verify-convergence) run there.
	TaskQueue = "farewell"
	// nodeTaskQueuePrefix + node name is a node's own queue; only that node's worker
	// polls it, so a step can only run on the node it is for.
	nodeTaskQueuePrefix = "farewell-node-"
	// workflowIDPrefix + node name is the ID of a node's shutdown: one at a time per node.
	workflowIDPrefix = activities.ShutdownWorkflowIDPrefix

	// WorkflowName is the registered name of GracefulShutdown.
	WorkflowName = activities.ShutdownWorkflowType
	// SweepWorkflowName is the registered name of Sweep, the watchdog's sweep.
	SweepWorkflowName = "WatchdogSweep"
	// WatchdogScheduleID is the Temporal Schedule that runs the sweep.
	WatchdogScheduleID = "farewell-watchdog"
	// sweepIDPrefix + a time names a sweep started by hand (farewell watchdog run-once).
	sweepIDPrefix = "farewell-sweep-"

	// DrainWorkflowName is the registered name of Drain; DrainPreflightName of
	// DrainPreflight, its dry run.
	DrainWorkflowName  = "Drain"
	DrainPreflightName = "DrainPreflight"
	// drainIDPrefix + a drain's name is its workflow ID; drainPreflightIDPrefix + a
	// name and a time names a dry run.
	drainIDPrefix          = "farewell-drain-"
	drainPreflightIDPrefix = "farewell-preflight-"

	// Updates of a drain.
	UpdateDrainPause          = "pause"
	UpdateDrainResume         = "resume"
	UpdateDrainSetMaxParallel = "set-max-parallel"
	UpdateDrainSkipNode       = "skip-node"
	UpdateDrainAbort          = "abort"

	// QueryProgress returns the ShutdownReport so far (of a drain, its DrainReport).
	QueryProgress = "progress"
	// UpdateForceNow skips the remaining graceful steps and force-evicts the node.
	UpdateForceNow = "force-now"
	// UpdateSkipStep skips a graceful step that has not started yet.
	UpdateSkipStep = "skip-step"
	// UpdateExtendTimeout raises the StartToClose of a step that has not started yet.
	UpdateExtendTimeout = "extend-timeout"
)

// MemoSteps is the memo key under which a finished run keeps its step table, one line
// a step, readable in the Temporal UI after the run closed.
const MemoSteps = "farewell_steps"

// MemoDrain is the memo key under which a finished drain keeps what it did, one line a
// node after its request and outcome.
const MemoDrain = "farewell_drain"

// Metrics the workflow records through the Temporal SDK's metrics handler, which skips
// them while replaying. Durations are histograms in seconds.
const (
	MetricShutdownDuration    = "farewell_shutdown_duration"    // by outcome
	MetricStepDuration        = "farewell_step_duration"        // by step and status
	MetricShutdowns           = "farewell_shutdowns"            // counter, by outcome
	MetricSlowShutdowns       = "farewell_slow_shutdowns"       // counter
	MetricConvergenceDuration = "farewell_convergence_duration" // by converged
	MetricZombies             = "farewell_zombies"              // counter, by kind and action
	MetricBudgetLeases        = "farewell_budget_leases"        // gauge: leases in flight
	MetricBudgetWaiting       = "farewell_budget_waiting"       // gauge: requests in the budget's queue
	MetricBudgetQueued        = "farewell_budget_queued"        // counter: requests that had to wait
	MetricDrainsStarted       = "farewell_drains_started"       // counter
	MetricDrains              = "farewell_drains"               // counter, by outcome (when a drain ends)
)

// Search attributes Farewell sets on its workflows, so that shutdowns can be listed and
// filtered in the Temporal UI and with visibility queries.
const (
	SearchAttrNode    = "FarewellNode"
	SearchAttrOutcome = "FarewellOutcome"
	SearchAttrStep    = "FarewellStep"
	SearchAttrSlow    = "FarewellSlow"
	// SearchAttrZombies counts the zombies a watchdog sweep found.
	SearchAttrZombies = "FarewellZombies"
	// SearchAttrDrain names the drain a shutdown (and the drain's own run) is part of.
	SearchAttrDrain = "FarewellDrain"
)

// Typed keys of the search attributes.
var (
	NodeKey    = temporal.NewSearchAttributeKeyKeyword(SearchAttrNode)
	OutcomeKey = temporal.NewSearchAttributeKeyKeyword(SearchAttrOutcome)
	StepKey    = temporal.NewSearchAttributeKeyKeyword(SearchAttrStep)
	SlowKey    = temporal.NewSearchAttributeKeyBool(SearchAttrSlow)
	ZombiesKey = temporal.NewSearchAttributeKeyInt64(SearchAttrZombies)
	DrainKey   = temporal.NewSearchAttributeKeyKeyword(SearchAttrDrain)
)

// SearchAttributes are the custom search attributes a namespace must have for Farewell.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		SearchAttrNode:    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchAttrOutcome: enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchAttrStep:    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchAttrSlow:    enumspb.INDEXED_VALUE_TYPE_BOOL,
		SearchAttrZombies: enumspb.INDEXED_VALUE_TYPE_INT,
		SearchAttrDrain:   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
}

// NodeTaskQueue is the task queue served only by node's own worker.
func NodeTaskQueue(node string) string { return nodeTaskQueuePrefix + node }

// WorkflowID is the ID of node's shutdown workflow.
func WorkflowID(node string) string { return workflowIDPrefix + node }

// NodeFromWorkflowID returns the node a shutdown workflow ID is for.
func NodeFromWorkflowID(id string) (string, bool) {
	if len(id) > len(workflowIDPrefix) && id[:len(workflowIDPrefix)] == workflowIDPrefix {
		return id[len(workflowIDPrefix):], true
	}
	return "", false
}

// IDFor accepts a shutdown's workflow ID or a node name and returns the workflow ID.
func IDFor(idOrNode string) string {
	if _, ok := NodeFromWorkflowID(idOrNode); ok {
		return idOrNode
	}
	return WorkflowID(idOrNode)
}

// SweepID names a sweep started by hand at unix-millisecond ms.
func SweepID(ms int64) string { return sweepIDPrefix + strconv.FormatInt(ms, 10) }

// DrainID is the workflow ID of the drain called name.
func DrainID(name string) string { return drainIDPrefix + name }

// DrainPreflightID names a dry run of the drain called name at unix-millisecond ms.
func DrainPreflightID(name string, ms int64) string {
	return drainPreflightIDPrefix + name + "-" + strconv.FormatInt(ms, 10)
}
