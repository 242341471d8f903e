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
)

// convergencePoll is how often VerifyConvergence asks the members again.
const convergencePoll = 100 * time.Millisecond

// ClusterActivities run on the orchestrator's worker, which is an observer member of
// the cluster: it sees the membership, can evict, and is never a shutdown target.
type ClusterActivities struct {
	Observer Observer
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
	return LookupOutput{Node: info.Name, Instance: info.Instance, Addr: info.Addr, State: info.State, Blocked: info.Blocked, Members: len(all)}, nil
}

// ForceEvict evicts the node from the observer: every member marks it evicted and
// ignores it from then on; the node, if it still hears the cluster, fences itself.
func (a *ClusterActivities) ForceEvict(ctx context.Context, in EvictInput) (EvictOutput, error) {
	out := EvictOutput{By: a.Observer.Name()}
	if info, ok := a.Observer.Member(in.Node); ok && info.State == StateEvicted {
		out.AlreadyEvicted = true
		return out, nil
	}
	a.logger(ctx).Warn("force-evicting node", "node", in.Node, "reason", in.Reason)
	if err := a.Observer.Evict(ctx, in.Node, in.Reason); err != nil {
		if errors.Is(err, ErrUnknownMember) {
			return out, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeUnknownNode, err)
		}
		return out, err
	}
	return out, nil
}

// VerifyConvergence asks every surviving member, again and again, how it sees the
// node, until all see it out (left, dead or evicted) or the timeout passes,
// heartbeating the members still pending.
func (a *ClusterActivities) VerifyConvergence(ctx context.Context, in ConvergenceInput) (ConvergenceOutput, error) {
	start := time.Now()
	deadline := start.Add(in.Timeout.Std())
	if dl, ok := ctx.Deadline(); ok && dl.Add(-stepMargin(time.Until(dl))).Before(deadline) {
		deadline = dl.Add(-stepMargin(time.Until(dl)))
	}
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conv, err := a.Observer.WaitConverged(wctx, in.Node, convergencePoll, func(c Convergence) {
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, c.Pending)
		}
	})
	out := ConvergenceOutput{Converged: conv.Converged, Views: conv.Views, Pending: conv.Pending, TookMS: time.Since(start).Milliseconds()}
	if err != nil && ctx.Err() != nil {
		return out, ctx.Err() // the activity itself was cancelled or timed out
	}
	if err != nil && !conv.Converged && wctx.Err() == nil {
		return out, err // not a timeout: the node is unknown to the observer, say
	}
	slices.Sort(out.Pending)
	return out, nil
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
