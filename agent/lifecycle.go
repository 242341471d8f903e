package agent

import (
	"context"
	"errors"
	"time"

	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/workflows"
)

// Exit says why a node has nothing left to serve.
type Exit struct {
	// Outcome is how its shutdown ended: graceful or degraded (it left), forced (a peer
	// evicted it, or it was terminated), failed.
	Outcome plan.Outcome
	// EvictedBy names the member that evicted it, when one did.
	EvictedBy string
	// Why says it in words, for logs and the exit message.
	Why string
	// Report is the shutdown's report, when there is one.
	Report *workflows.ShutdownReport
}

// Clean reports whether the node left on its own: graceful or degraded. A process
// exits 0 then, and non-zero when it was forced out.
func (e Exit) Clean() bool { return e.Outcome == plan.Graceful || e.Outcome == plan.Degraded }

// Done is closed when the node has nothing left to serve: its shutdown ran (whoever
// started it: its own SIGTERM, the CLI, a drain) or a peer evicted it. Exit says why.
// An aborted shutdown leaves the node serving: Done stays open.
func (a *Agent) Done() <-chan struct{} { return a.done }

// Exit says why the node is done; it is the zero value until Done is closed.
func (a *Agent) Exit() Exit {
	select {
	case <-a.done:
		return a.exit
	default:
		return Exit{}
	}
}

func (a *Agent) finish(e Exit) {
	a.doneOnce.Do(func() {
		a.exit = e
		a.log.Info("the node has nothing left to serve", "outcome", e.Outcome, "why", e.Why)
		close(a.done)
	})
}

// onEvicted runs when a peer evicted this member, after it fenced itself.
func (a *Agent) onEvicted(by, reason string) {
	a.finish(Exit{Outcome: plan.Forced, EvictedBy: by, Why: "evicted by " + by + ": " + reason})
}

// watch ends the agent when its memberlist shut down (a shutdown's deregister or
// terminate step) and its services stopped. A node that left but whose services nobody
// stops within the stop-services budget (the orchestrator is gone) stops them itself:
// left but serving is a zombie too.
func (a *Agent) watch() {
	select {
	case <-a.stop:
		return
	case <-a.member.Departed():
	}
	if _, _, evicted := a.member.Evicted(); evicted {
		return // onEvicted ends it once the node fenced itself
	}
	bound := 30 * time.Second
	if s, ok := a.plan.Step(plan.StopServices); ok {
		bound = s.Budget()
	}
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for len(a.member.Services().Running()) > 0 {
		select {
		case <-a.stop:
			return
		case <-a.done:
			return
		case <-tick.C:
			continue
		case <-deadline.C:
		}
		a.log.Error("the node left the cluster but nobody stopped its services; stopping them here", "waited", bound)
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		for _, r := range a.member.Services().StopAll(ctx, nil) {
			if r.Status != cluster.ServiceStopped {
				a.log.Warn("service did not stop", "service", r.Name, "status", r.Status, "error", r.Error)
			}
		}
		cancel()
		break
	}
	a.mu.Lock()
	own := a.shuttingOwn
	a.mu.Unlock()
	if own {
		return // the node's own shutdown reports how it ended
	}
	a.finish(a.exitAfterDeparture())
}

// exitAfterDeparture tells how the shutdown that took this node out ended: from its
// workflow when Temporal answers (waiting, bounded, for what follows the steps), else
// from what the node saw itself.
func (a *Agent) exitAfterDeparture() Exit {
	if c := a.temporal(); c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), a.plan.AfterSteps())
		defer cancel()
		go func() {
			select {
			case <-a.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		st := starter.New(c, starter.Options{Namespace: a.opts.Config.Temporal.Namespace, Logger: a.log})
		if status, err := st.Status(ctx, a.member.Name()); err == nil && status.Report != nil &&
			status.Report.NodeInstance == a.member.Instance() {
			report := status.Report
			if report.Outcome == "" {
				if r, err := st.Wait(ctx, status.Run, nil); err == nil {
					report = r
				}
			}
			if report.Outcome != "" {
				return Exit{Outcome: report.Outcome, Report: report, Why: "its shutdown (" + report.RunID + ") ended " + string(report.Outcome)}
			}
		}
	}
	_, leaveErr := a.member.Left()
	switch {
	case leaveErr == nil:
		return Exit{Outcome: plan.Graceful, Why: "it left the cluster"}
	case errors.Is(leaveErr, cluster.ErrShutdownWithoutLeave):
		return Exit{Outcome: plan.Forced, Why: "it was terminated"}
	}
	return Exit{Outcome: plan.Degraded, Why: "it left the cluster without a confirmed leave: " + leaveErr.Error()}
}
