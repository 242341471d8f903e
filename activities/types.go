package activities

import (
	"time"

	"github.com/farewell-project/farewell/cluster"
)

// Error types of permanent failures: retrying cannot make them succeed, so they are
// non-retryable and the workflow treats them by type.
const (
	// ErrTypeWrongNode: the step reached a node other than the one it is for.
	ErrTypeWrongNode = "WrongNode"
	// ErrTypeUnknownNode: no member of that name is in the cluster.
	ErrTypeUnknownNode = "UnknownNode"
	// ErrTypeNotANode: the member is an observer, never a shutdown target.
	ErrTypeNotANode = "NotANode"
	// ErrTypeEvicted: the node was evicted; its graceful steps are moot.
	ErrTypeEvicted = "NodeEvicted"
	// ErrTypeLeaveFailed: memberlist was already shut down after a leave nobody heard.
	ErrTypeLeaveFailed = "LeaveFailed"
	// ErrTypeCannotRollBack: the node already left; it cannot be put back.
	ErrTypeCannotRollBack = "CannotRollBack"
	// ErrTypeInjected marks a failure injected by a demo or test fault.
	ErrTypeInjected = "InjectedFault"
)

// NonRetryable lists the error types the workflow never retries.
var NonRetryable = []string{ErrTypeWrongNode, ErrTypeUnknownNode, ErrTypeNotANode, ErrTypeEvicted, ErrTypeLeaveFailed, ErrTypeCannotRollBack}

// StepInput is the input of every node activity.
type StepInput struct {
	// Node the step is for; a worker of another node refuses it.
	Node string `json:"node"`
	// Instance is the process of Node the shutdown is for (from the lookup); a newer
	// process under the same name refuses the step. "" skips the check.
	Instance string `json:"instance,omitempty"`
	// Step is the step's name, for logs and faults.
	Step string `json:"step"`
	// WorkflowID of the shutdown, for logs.
	WorkflowID string `json:"workflow_id"`
}

// StepOutput is the result of every node activity.
type StepOutput struct {
	// Attempt is the attempt that succeeded (1 for the first).
	Attempt int32 `json:"attempt"`
	// AlreadyDone is set when the step found its work done already (a retry, or a
	// second run); nothing was done again.
	AlreadyDone bool   `json:"already_done,omitempty"`
	Note        string `json:"note,omitempty"`
	// Services reports each service's stop (stop-services and terminate).
	Services []cluster.ServiceResult `json:"services,omitempty"`
}

// Progress is the heartbeat detail of node activities: the attempt, and for
// stop-services the services already stopped, so that a retry resumes.
type Progress struct {
	Attempt int32    `json:"attempt"`
	Stopped []string `json:"stopped,omitempty"`
}

// LookupInput asks for a node in the membership view.
type LookupInput struct {
	Node string `json:"node"`
}

// LookupOutput is the node as the observer sees it.
type LookupOutput struct {
	Node string `json:"node"`
	// Instance identifies the node's process.
	Instance string        `json:"instance"`
	Addr     string        `json:"addr"`
	State    cluster.State `json:"state"`
	Blocked  bool          `json:"blocked"`
	// Members is the size of the observer's view.
	Members int `json:"members"`
}

// EvictInput asks for a forced eviction.
type EvictInput struct {
	Node       string `json:"node"`
	Reason     string `json:"reason"`
	WorkflowID string `json:"workflow_id"`
}

// EvictOutput reports a forced eviction.
type EvictOutput struct {
	// By is the member that evicted the node.
	By string `json:"by"`
	// AlreadyEvicted is set when the node had been evicted before.
	AlreadyEvicted bool `json:"already_evicted,omitempty"`
}

// ConvergenceInput asks to wait until every surviving member sees Node out.
type ConvergenceInput struct {
	Node    string        `json:"node"`
	Timeout time.Duration `json:"timeout"`
}

// ConvergenceOutput is what the members said. Not converging is a result, not an
// error: it is what the force fallback is for.
type ConvergenceOutput struct {
	Converged bool                     `json:"converged"`
	Views     map[string]cluster.State `json:"views,omitempty"`
	Pending   []string                 `json:"pending,omitempty"`
	TookMS    int64                    `json:"took_ms"`
}
