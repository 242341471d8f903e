package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
)

// withHostSteps makes the harness's node a host with steps of its own: the lookup says
// so, the node lists them, and RunHostStep runs them through h.steps by name.
func withHostSteps(h *harness, host ...plan.HostStep) {
	h.lookup = func(in activities.LookupInput) (activities.LookupOutput, error) {
		return activities.LookupOutput{Node: in.Node, State: activities.StateAlive, Members: 5, Steps: len(host)}, nil
	}
	h.env.OnActivity(nodeActs.HostSteps, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.StepInput) ([]plan.HostStep, error) {
			h.count("host-steps")
			return host, nil
		})
	for _, s := range host {
		h.set(s.Spec.Name, func(context.Context, activities.StepInput) (activities.StepOutput, error) {
			return activities.StepOutput{Attempt: 1}, nil
		})
	}
	h.env.OnActivity(nodeActs.RunHostStep, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.StepInput) (activities.StepOutput, error) {
			h.mu.Lock()
			h.calls[in.Step]++
			f := h.steps[in.Step]
			h.mu.Unlock()
			return f(ctx, in)
		})
}

func hostStep(name, before, after string, onFailure plan.Policy) plan.HostStep {
	return plan.HostStep{Spec: plan.StepSpec{Name: name, StartToClose: 2 * time.Second, ScheduleToStart: time.Second,
		MaxAttempts: 2, Backoff: 10 * time.Millisecond, OnFailure: onFailure}, Before: before, After: after}
}

func TestHostStepsRunInTheirPlaces(t *testing.T) {
	h := newHarness(t)
	withHostSteps(h, hostStep("drain-connections", plan.SetGracefullyLeft, "", plan.Continue),
		hostStep("flush-state", plan.StopServices, "", plan.Continue))
	var order []string
	for _, name := range []string{"drain-connections", plan.SetGracefullyLeft, plan.Deregister, "flush-state", plan.StopServices} {
		h.set(name, func(context.Context, activities.StepInput) (activities.StepOutput, error) {
			order = append(order, name)
			return activities.StepOutput{Attempt: 1}, nil
		})
	}
	r := h.run(ShutdownRequest{})
	if r.Outcome != plan.Graceful {
		t.Fatalf("outcome %s: %+v", r.Outcome, r.Steps)
	}
	want := "drain-connections set-gracefully-left deregister flush-state stop-services"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("ran %s\nwant %s", got, want)
	}
	var names []string
	for _, s := range r.Steps {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, " "); got != "drain-connections set-gracefully-left stop-heartbeat deregister flush-state stop-services" {
		t.Errorf("report steps %s", got)
	}
}

func TestAFailingHostStepFollowsItsPolicy(t *testing.T) {
	t.Run("continue: the next step runs", func(t *testing.T) {
		h := newHarness(t)
		withHostSteps(h, hostStep("drain-connections", plan.SetGracefullyLeft, "", plan.Continue))
		h.set("drain-connections", fails(errors.New("listener would not close")))
		r := h.run(ShutdownRequest{})
		st := statuses(r)
		if st["drain-connections"] != plan.StepFailed || st[plan.SetGracefullyLeft] != plan.StepSucceeded || r.Outcome != plan.Degraded {
			t.Fatalf("outcome %s, steps %v", r.Outcome, st)
		}
		if h.called("drain-connections") != 2 {
			t.Errorf("%d attempts, want 2", h.called("drain-connections"))
		}
	})
	t.Run("force before deregister: a peer evicts the node", func(t *testing.T) {
		h := newHarness(t)
		withHostSteps(h, hostStep("hand-over", "", plan.SetGracefullyLeft, plan.Force))
		h.set("hand-over", fails(errors.New("no successor")))
		r := h.run(ShutdownRequest{})
		st := statuses(r)
		if r.Outcome != plan.Forced || st[plan.Deregister] != plan.StepSkipped || h.called("evict") == 0 || h.called(plan.Terminate) == 0 {
			t.Fatalf("outcome %s, steps %v, evictions %d, terminations %d", r.Outcome, st, h.called("evict"), h.called(plan.Terminate))
		}
	})
	t.Run("force after deregister: the node, gone from the cluster, is terminated", func(t *testing.T) {
		h := newHarness(t)
		withHostSteps(h, hostStep("flush-state", "", plan.Deregister, plan.Force))
		h.set("flush-state", fails(errors.New("disk full")))
		// The node left: its eviction finds it gone, as a real observer does.
		h.evict = func(in activities.EvictInput) (activities.EvictOutput, error) {
			return activities.EvictOutput{Gone: in.Node + " left the cluster"}, nil
		}
		r := h.run(ShutdownRequest{})
		st := statuses(r)
		if r.Outcome != plan.Forced || st[plan.StopServices] != plan.StepSkipped || h.called(plan.Terminate) != 1 || !r.Terminated {
			t.Fatalf("outcome %s (%s), steps %v, terminations %d", r.Outcome, r.Error, st, h.called(plan.Terminate))
		}
	})
	t.Run("abort: rolled back before anything is irreversible", func(t *testing.T) {
		h := newHarness(t)
		withHostSteps(h, hostStep("hand-over", plan.SetGracefullyLeft, "", plan.Abort))
		h.set("hand-over", fails(errors.New("no successor")))
		r := h.run(ShutdownRequest{})
		if r.Outcome != plan.Aborted || h.called(plan.SetGracefullyLeft) != 0 {
			t.Fatalf("outcome %s, set-gracefully-left ran %d times", r.Outcome, h.called(plan.SetGracefullyLeft))
		}
	})
}

func TestANodeWithoutHostStepsIsNotAsked(t *testing.T) {
	h := newHarness(t)
	h.env.OnActivity(nodeActs.HostSteps, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.StepInput) ([]plan.HostStep, error) {
			h.count("host-steps")
			return nil, nil
		})
	if r := h.run(ShutdownRequest{}); r.Outcome != plan.Graceful || len(r.Steps) != 4 {
		t.Fatalf("outcome %s, %d steps", r.Outcome, len(r.Steps))
	}
	if n := h.called("host-steps"); n != 0 {
		t.Errorf("asked a node without host steps for them %d times", n)
	}
}

// Steps no agent would send (here a reserved name) do not stop the shutdown: the
// built-in steps run.
func TestBadHostStepsFromANodeStillShutItDown(t *testing.T) {
	h := newHarness(t)
	withHostSteps(h, hostStep(plan.Rollback, plan.StopServices, "", plan.Continue))
	r := h.run(ShutdownRequest{})
	if r.Outcome != plan.Graceful || len(r.Steps) != 4 || h.called(plan.Rollback) != 0 {
		t.Fatalf("outcome %s, %d steps, rollback ran %d times", r.Outcome, len(r.Steps), h.called(plan.Rollback))
	}
}
