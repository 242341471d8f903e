package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/plan"
)

// convergencePoll is how often VerifyConvergence asks the members again.
const convergencePoll = 100 * time.Millisecond

// ClusterActivities run on the orchestrator's worker, which is an observer member of
// the cluster: it sees the membership, can evict, and is never a shutdown target.
type ClusterActivities struct {
	Observer Observer
	// Shutdowns, for the watchdog, looks up and starts shutdowns; nil means the
	// watchdog can only report.
	Shutdowns Shutdowns
	// Budget reaches the cluster's disruption budget; nil means shutdowns take no
	// lease (and cannot run: the workflow asks for one).
	Budget Budget
	// Fleet looks at shutdowns and workers for drains; nil means no drains.
	Fleet Fleet
	// Logger is used outside Temporal; nil means slog.Default().
	Logger *slog.Logger
}

// Lookup finds the node in the observer's view. An unknown name, or an observer, is a
// permanent error that names the node.
func (a *ClusterActivities) Lookup(ctx context.Context, in LookupInput) (LookupOutput, error) {
	all := a.Observer.Members()
	info, ok := a.Observer.Member(in.Node)
	if !ok && len(all) <= 1 {
		// The observer knows nobody yet (its process just started): not the node's fault.
		return LookupOutput{}, fmt.Errorf("lookup %s: the observer %s has not joined the cluster yet", in.Node, a.Observer.Name())
	}
	if !ok {
		var nodes []string
		for _, m := range all {
			if m.Role == RoleNode {
				nodes = append(nodes, m.Name)
			}
		}
		known := "none"
		if len(nodes) > 0 {
			known = strings.Join(nodes, ", ")
		}
		return LookupOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("unknown node %q: no member of that name in the cluster (nodes: %s)", in.Node, known), ErrTypeUnknownNode, nil)
	}
	if info.Role != RoleNode {
		return LookupOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%q is an %s, not a node: it cannot be shut down", in.Node, info.Role), ErrTypeNotANode, nil)
	}
	return LookupOutput{Node: info.Name, Instance: info.Instance, Addr: info.Addr, State: info.State, Blocked: info.Blocked, Members: len(all),
		Steps: info.Steps}, nil
}

// ForceEvict evicts the process the run acts on from the observer: every member marks
// it evicted and ignores it from then on; the process, if it still hears the cluster,
// fences itself. It counts only when another member confirmed it. A process that left,
// or that a newer process of the same name replaced, is gone: nothing is evicted.
func (a *ClusterActivities) ForceEvict(ctx context.Context, in EvictInput) (EvictOutput, error) {
	out := EvictOutput{By: a.Observer.Name()}
	a.logger(ctx).Warn("force-evicting node", "node", in.Node, "instance", in.Instance, "reason", in.Reason)
	// Leave time to report before the activity's own deadline.
	ectx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ectx, cancel = context.WithDeadline(ctx, dl.Add(-stepMargin(time.Until(dl))))
		defer cancel()
	}
	res, err := a.Observer.Evict(ectx, in.Node, in.Instance, in.Reason)
	if err != nil {
		if errors.Is(err, ErrUnknownMember) {
			return out, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeUnknownNode, err)
		}
		return out, err
	}
	out.Confirmed, out.AlreadyEvicted, out.Gone = res.Confirmed, res.AlreadyEvicted, res.Gone
	if !out.Confirmed && out.Gone == "" {
		a.logger(ctx).Warn("eviction not confirmed by any other member", "node", in.Node)
	}
	return out, nil
}

// VerifyConvergence asks the members, again and again, how they see the process,
// until a majority of those the observer sees alive answer and all see it out, or the
// timeout passes, heartbeating the members still pending. Not converging, or too few
// answers (unverified), is a result, not an error.
func (a *ClusterActivities) VerifyConvergence(ctx context.Context, in ConvergenceInput) (ConvergenceOutput, error) {
	start := time.Now()
	deadline := start.Add(in.Timeout.Std())
	if dl, ok := ctx.Deadline(); ok && dl.Add(-stepMargin(time.Until(dl))).Before(deadline) {
		deadline = dl.Add(-stepMargin(time.Until(dl)))
	}
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	q := ConvergenceQuery{Node: in.Node, Instance: in.Instance, StrictLeft: in.StrictLeft}
	conv, err := a.Observer.WaitConverged(wctx, q, convergencePoll, func(c Convergence) {
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, c.Pending)
		}
	})
	out := ConvergenceOutput{Converged: conv.Converged, Status: conv.Status, Views: conv.Views, Pending: conv.Pending,
		Answered: conv.Answered, Needed: conv.Needed, TookMS: time.Since(start).Milliseconds()}
	if err != nil && ctx.Err() != nil {
		return out, ctx.Err() // the activity itself was cancelled or timed out
	}
	if err != nil && !conv.Converged && wctx.Err() == nil {
		return out, err
	}
	slices.Sort(out.Pending)
	return out, nil
}

// FindZombies looks through the observer's view for nodes that are neither serving nor
// out: alive but blocked (flagged by the cluster) too long, leaving too long, evicted yet
// still heartbeating.
func (a *ClusterActivities) FindZombies(ctx context.Context, q ZombieQuery) (ZombiesOutput, error) {
	var out ZombiesOutput
	for _, m := range a.Observer.Members() {
		if m.Role != RoleNode || m.Name == a.Observer.Name() {
			continue
		}
		out.Nodes++
		z := Zombie{Node: m.Name, Instance: m.Instance}
		switch {
		case m.State == StateAlive && m.Blocked && m.HeartbeatAge > q.BlockedAfter.Std():
			// Blocked: the node's own signed record says its heartbeat stands still.
			// How long ago this observer last heard from it alone says nothing: it
			// learns a node's liveness when it probes it, once every few probe
			// intervals in a big cluster.
			z.Kind, z.For = ZombieBlocked, plan.Millis(m.HeartbeatAge)
			z.Why = fmt.Sprintf("blocked: alive, but no heartbeat for %s", z.For)
		case m.State == StateLeaving && m.StateAge > q.LeavingAfter.Std():
			z.Kind, z.For = ZombieLeaving, plan.Millis(m.StateAge)
			z.Why = fmt.Sprintf("leaving for %s", z.For)
		case m.State == StateEvicted && m.EvictedHeartbeatAge > 0 && m.StateAge > q.EvictedAfter.Std() &&
			m.EvictedHeartbeatAge < m.StateAge-q.EvictedAfter.Std():
			z.Kind, z.For = ZombieEvictedAlive, plan.Millis(m.StateAge)
			z.Why = fmt.Sprintf("evicted %s ago, still heartbeating %s ago", plan.Millis(m.StateAge), plan.Millis(m.EvictedHeartbeatAge))
		default:
			continue
		}
		out.Zombies = append(out.Zombies, z)
	}
	return out, nil
}

// ShutdownRunning reports whether node has a shutdown running.
func (a *ClusterActivities) ShutdownRunning(ctx context.Context, node string) (bool, error) {
	if a.Shutdowns == nil {
		return false, temporal.NewNonRetryableApplicationError("this worker cannot look up shutdowns", ErrTypeNoTemporal, nil)
	}
	return a.Shutdowns.Running(ctx, node)
}

// StartShutdown starts (or joins) a node's shutdown for the watchdog.
func (a *ClusterActivities) StartShutdown(ctx context.Context, in StartShutdownInput) (StartShutdownOutput, error) {
	if a.Shutdowns == nil {
		return StartShutdownOutput{}, temporal.NewNonRetryableApplicationError("this worker cannot start shutdowns", ErrTypeNoTemporal, nil)
	}
	a.logger(ctx).Warn("the watchdog starts a shutdown", "node", in.Node, "reason", in.Reason)
	return a.Shutdowns.Start(ctx, in)
}

func (a *ClusterActivities) logger(ctx context.Context) *slog.Logger {
	l := a.Logger
	if l == nil {
		l = slog.Default()
	}
	if activity.IsActivity(ctx) {
		info := activity.GetInfo(ctx)
		return l.With("workflow_id", info.WorkflowExecution.ID, "run_id", info.WorkflowExecution.RunID, "activity", info.ActivityType.Name)
	}
	return l
}
