package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/farewell-project/farewell/plan"
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
	// ErrTypeProcessGone: the node's process the run acts on is gone; another process
	// of that name answered (and was not touched).
	ErrTypeProcessGone = "ProcessGone"
	// ErrTypeNoTemporal: the worker was built without a Temporal client for this.
	ErrTypeNoTemporal = "NoTemporal"
	// ErrTypeNoSuchStep: the node has no step of that name (its host did not register it).
	ErrTypeNoSuchStep = "NoSuchStep"
)

// The workflow whose steps node activities run: no other workflow may run them.
const (
	// ShutdownWorkflowType is GracefulShutdown's registered name.
	ShutdownWorkflowType = "GracefulShutdown"
	// ShutdownWorkflowIDPrefix + a node's name is the ID of the node's shutdown.
	ShutdownWorkflowIDPrefix = "farewell-shutdown-"
)

// NonRetryable lists the error types the workflow never retries.
var NonRetryable = []string{ErrTypeWrongNode, ErrTypeUnknownNode, ErrTypeNotANode, ErrTypeEvicted, ErrTypeLeaveFailed,
	ErrTypeCannotRollBack, ErrTypeProcessGone, ErrTypeNoSuchStep}

// StepInput is the input of every node activity.
type StepInput struct {
	// Node the step is for; a worker of another node refuses it.
	Node string `json:"node"`
	// Instance is the process of Node the shutdown is for (from the lookup); another
	// process under the same name refuses the step (the process is gone). Required.
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
	Services []ServiceResult `json:"services,omitempty"`
}

// ServiceResult reports the stop of one of the node's services.
type ServiceResult struct {
	Name string `json:"name"`
	// Status is ok, failed or timed_out.
	Status   string        `json:"status"`
	Duration plan.Duration `json:"duration"`
	Error    string        `json:"error,omitempty"`
	// AlreadyStopped is set when an earlier call stopped it; nothing was run again.
	AlreadyStopped bool `json:"already_stopped,omitempty"`
}

// Service stop statuses.
const (
	ServiceStopped  = "ok"
	ServiceFailed   = "failed"
	ServiceTimedOut = "timed_out"
)

// FailedServices joins the stops that did not succeed into one error (nil for none).
func FailedServices(results []ServiceResult) error {
	var errs []error
	for _, r := range results {
		if r.Status != ServiceStopped {
			errs = append(errs, fmt.Errorf("%s %s: %s", r.Name, r.Status, r.Error))
		}
	}
	return errors.Join(errs...)
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
	Instance string `json:"instance"`
	Addr     string `json:"addr"`
	// State is alive, leaving, left, dead or evicted.
	State   string `json:"state"`
	Blocked bool   `json:"blocked"`
	// Members is the size of the observer's view.
	Members int `json:"members"`
	// Steps counts the steps of its own the node's host runs (NodeActivities.HostSteps
	// lists them).
	Steps int `json:"steps,omitempty"`
}

// EvictInput asks for a forced eviction of one process of a node.
type EvictInput struct {
	Node string `json:"node"`
	// Instance is the process to evict; "" (runs recorded before instances were
	// required) means whichever has the name.
	Instance   string `json:"instance,omitempty"`
	Reason     string `json:"reason"`
	WorkflowID string `json:"workflow_id"`
}

// EvictOutput reports a forced eviction.
type EvictOutput struct {
	// By is the member that evicted the node.
	By string `json:"by"`
	// AlreadyEvicted is set when the node had been evicted before.
	AlreadyEvicted bool `json:"already_evicted,omitempty"`
	// Confirmed: another member holds the eviction. An eviction nobody confirmed does
	// not count.
	Confirmed bool `json:"confirmed,omitempty"`
	// Gone says why no eviction was needed: the process left, or another has the name.
	Gone string `json:"gone,omitempty"`
}

// ConvergenceInput asks to wait until the members see a process of Node out.
type ConvergenceInput struct {
	Node    string        `json:"node"`
	Timeout plan.Duration `json:"timeout"`
	// Instance is the process; "" means whichever has the name.
	Instance string `json:"instance,omitempty"`
	// StrictLeft counts only left and evicted as out, not dead (force is off).
	StrictLeft bool `json:"strict_left,omitempty"`
}

// ConvergenceOutput is what the members said. Not converging is a result, not an
// error: it is what the force fallback is for.
type ConvergenceOutput struct {
	Converged bool `json:"converged"`
	// Status is converged, pending or unverified ("" in runs recorded before it).
	Status string `json:"status,omitempty"`
	// Answered and Needed: the other members that answered, and the majority needed.
	Answered int `json:"answered,omitempty"`
	Needed   int `json:"needed,omitempty"`
	// Views maps each member that answered to the node's state as it sees it ("" when
	// it never heard of the node).
	Views   map[string]string `json:"views,omitempty"`
	Pending []string          `json:"pending,omitempty"`
	TookMS  int64             `json:"took_ms"`
}

// Member states, as they travel in activity results: the words the cluster uses.
const (
	StateAlive   = "alive"
	StateLeaving = "leaving"
	StateLeft    = "left"
	StateDead    = "dead"
	StateEvicted = "evicted"
)

// Member roles.
const (
	RoleNode     = "node"
	RoleObserver = "observer"
)

// Errors a Member or an Observer wraps, so that the activities can tell permanent
// conditions from passing ones.
var (
	// ErrEvicted: this member was evicted; it cannot change its state any more.
	ErrEvicted = errors.New("member was evicted")
	// ErrDeparted: this member left or shut down its memberlist.
	ErrDeparted = errors.New("member is shut down")
	// ErrUnknownMember: no member of that name in the view.
	ErrUnknownMember = errors.New("unknown member")
)

// Member is this node's membership in the cluster, as the node steps use it. Its
// methods are safe for concurrent use.
type Member interface {
	Name() string
	// Instance tells this process apart from others that used the same name.
	Instance() string
	// State is this member's own state (alive, leaving, evicted, …).
	State() string
	// SetState publishes alive or leaving and returns once another member confirmed
	// it, or fails within ctx's deadline (wrapping ErrEvicted or ErrDeparted when the
	// member can no longer change its state).
	SetState(ctx context.Context, state string) error
	HeartbeatRunning() bool
	StartHeartbeat()
	StopHeartbeat()
	// Leave deregisters (bounded by timeout) and shuts memberlist down whatever happens.
	Leave(timeout time.Duration) error
	// Left reports whether Leave or a shutdown ran, and the error Leave returned.
	Left() (bool, error)
	// Evicted reports whether a peer evicted this member, by whom and why.
	Evicted() (by, reason string, ok bool)
	// Services lists the registered services and RunningServices those not stopped.
	Services() []string
	RunningServices() []string
	// StopServices stops every service in reverse order, each under its timeout,
	// resuming after those an earlier call stopped; progress sees each result.
	StopServices(ctx context.Context, progress func(ServiceResult)) []ServiceResult
	// Terminate stops the services and the heartbeat and shuts memberlist down
	// without a leave.
	Terminate(ctx context.Context) []ServiceResult
}

// MemberInfo is one member as the observer sees it.
type MemberInfo struct {
	Name     string
	Addr     string
	Role     string
	State    string
	Instance string
	Blocked  bool
	// Tags are the member's metadata tags (cluster.tags).
	Tags map[string]string
	// Steps counts the steps of its own the node's host runs when it shuts down.
	Steps int
	// HeartbeatAge is how long ago its last heartbeat arrived; StateAge how long it has
	// been in its state; EvictedHeartbeatAge, for an evicted process heard heartbeating
	// since, how long ago that was (0: never).
	HeartbeatAge, StateAge, EvictedHeartbeatAge time.Duration
}

// Convergence is what the members said of a process at one check.
type Convergence struct {
	// Status is converged, pending or unverified.
	Status           string
	Converged        bool
	Views            map[string]string
	Pending          []string
	Answered, Needed int
}

// ConvergenceQuery asks how the cluster sees one process.
type ConvergenceQuery struct {
	Node, Instance string
	// StrictLeft counts only left and evicted as out, not dead.
	StrictLeft bool
}

// EvictResult says what an eviction did.
type EvictResult struct {
	Confirmed, AlreadyEvicted bool
	// Gone says why no eviction was needed.
	Gone string
}

// Observer is the orchestrator's member of the cluster, as the cluster activities use
// it. Its methods are safe for concurrent use.
type Observer interface {
	Name() string
	Member(name string) (MemberInfo, bool)
	Members() []MemberInfo
	// Evict forces one process of node out of the cluster ("" for whichever has the
	// name, wrapping ErrUnknownMember when it knows none) and waits, until ctx ends,
	// for another member to confirm it. A process that left or was replaced is gone:
	// nothing is evicted.
	Evict(ctx context.Context, node, instance, reason string) (EvictResult, error)
	// WaitConverged asks the members how they see the process every interval until
	// enough see it out or ctx ends; progress sees every check.
	WaitConverged(ctx context.Context, q ConvergenceQuery, interval time.Duration, progress func(Convergence)) (Convergence, error)
}

// Kinds of zombie the watchdog finds.
const (
	// ZombieBlocked: alive, but its heartbeat has stood still too long.
	ZombieBlocked = "blocked"
	// ZombieLeaving: it announced it is leaving, long ago, and no shutdown runs.
	ZombieLeaving = "leaving"
	// ZombieEvictedAlive: evicted, yet still heartbeating: it did not fence itself.
	ZombieEvictedAlive = "evicted-alive"
)

// ZombieQuery says how long each condition must last to make a zombie.
type ZombieQuery struct {
	BlockedAfter plan.Duration `json:"blocked_after"`
	LeavingAfter plan.Duration `json:"leaving_after"`
	EvictedAfter plan.Duration `json:"evicted_after"`
}

// Zombie is one process that is neither serving nor out.
type Zombie struct {
	Node     string        `json:"node"`
	Instance string        `json:"instance"`
	Kind     string        `json:"kind"`
	For      plan.Duration `json:"for"`
	Why      string        `json:"why"`
}

// ZombiesOutput is what a sweep of the observer's view found.
type ZombiesOutput struct {
	Zombies []Zombie `json:"zombies,omitempty"`
	// Nodes counts the nodes looked at.
	Nodes int `json:"nodes"`
}

// StartShutdownInput asks to start (or join) a node's shutdown from the watchdog.
type StartShutdownInput struct {
	Node        string `json:"node"`
	Reason      string `json:"reason"`
	RequestedBy string `json:"requested_by"`
	Force       bool   `json:"force,omitempty"`
}

// StartShutdownOutput is the run started or joined.
type StartShutdownOutput struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Joined     bool   `json:"joined"`
}

// Shutdowns starts and looks up nodes' shutdowns in Temporal, for the watchdog. Its
// methods are safe for concurrent use.
type Shutdowns interface {
	// Running reports whether node has a shutdown running.
	Running(ctx context.Context, node string) (bool, error)
	// Start starts node's shutdown, or joins the one running.
	Start(ctx context.Context, in StartShutdownInput) (StartShutdownOutput, error)
}
