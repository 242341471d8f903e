package workflows

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
)

// Every shutdown takes a lease before its first step and gives it back at its end.
func TestShutdownTakesAndGivesBackALease(t *testing.T) {
	h := newHarness(t)
	var got activities.LeaseRequest
	h.acquire = func(in activities.LeaseRequest) (activities.LeaseGrant, error) {
		got = in
		return activities.LeaseGrant{Granted: true}, nil
	}
	r := h.run(ShutdownRequest{Reason: "test"})
	if r.Outcome != plan.Graceful || h.called("acquire") != 1 || h.called("release") != 1 {
		t.Fatalf("outcome %s, acquire %d, release %d", r.Outcome, h.called("acquire"), h.called("release"))
	}
	if got.Holder != r.WorkflowID || got.Run != r.RunID || got.Node != "node-3" || got.Unblockable {
		t.Errorf("lease request %+v", got)
	}
}

// While the budget holds it back the shutdown waits before any step, saying why; then
// runs, and says it waited.
func TestShutdownWaitsForTheBudgetSayingWhy(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	denials := 3
	h.acquire = func(in activities.LeaseRequest) (activities.LeaseGrant, error) {
		mu.Lock()
		defer mu.Unlock()
		if denials > 0 {
			denials--
			return activities.LeaseGrant{Why: "it would leave 2 nodes in service, fewer than min_alive 3", Floor: true}, nil
		}
		return activities.LeaseGrant{Granted: true}, nil
	}
	var waiting string
	var stepsThen int
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(QueryProgress)
		if err == nil {
			var p ShutdownReport
			_ = v.Get(&p)
			waiting = p.Waiting
		}
		stepsThen = h.called(plan.SetGracefullyLeft)
	}, time.Second)
	r := h.run(ShutdownRequest{})
	if !strings.Contains(waiting, "min_alive 3") || stepsThen != 0 {
		t.Errorf("while waiting: progress says %q, %d steps ran", waiting, stepsThen)
	}
	if r.Outcome != plan.Graceful || r.Waiting != "" || h.called("acquire") != 4 || !strings.Contains(r.Budget, "waited 15s") {
		t.Errorf("outcome %s, waiting %q, %d requests, budget %q", r.Outcome, r.Waiting, h.called("acquire"), r.Budget)
	}
}

// A shutdown cancelled while it waits ends aborted before any step, holding nothing.
func TestShutdownCancelledWhileWaitingForTheBudget(t *testing.T) {
	h := newHarness(t)
	h.acquire = func(activities.LeaseRequest) (activities.LeaseGrant, error) {
		return activities.LeaseGrant{Why: "it would leave 2 nodes in service, fewer than min_alive 3", Floor: true}, nil
	}
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Minute)
	r := h.run(ShutdownRequest{})
	if r.Outcome != plan.Aborted || !strings.Contains(r.Error, "while it waited for the budget") {
		t.Fatalf("outcome %s: %s", r.Outcome, r.Error)
	}
	for _, s := range r.Steps {
		if s.Status != plan.StepSkipped || h.called(s.Name) != 0 {
			t.Errorf("step %s %s, ran %d times", s.Name, s.Status, h.called(s.Name))
		}
	}
	if h.called("release") != 0 || h.called("rollback") != 0 {
		t.Errorf("release %d, rollback %d: nothing was held or changed", h.called("release"), h.called(plan.Rollback))
	}
}

// A node's own SIGTERM goes on when the budget does not answer; a run its drain leased
// asks for nothing but gives the lease back; a node already out takes none.
func TestShutdownLeaseSpecialCases(t *testing.T) {
	t.Run("sigterm without a budget", func(t *testing.T) {
		h := newHarness(t)
		h.acquire = func(activities.LeaseRequest) (activities.LeaseGrant, error) {
			return activities.LeaseGrant{}, errors.New("budget unreachable")
		}
		r := h.run(ShutdownRequest{Unblockable: true})
		if r.Outcome != plan.Graceful || !strings.Contains(r.Budget, "without a lease") || h.called("release") != 0 {
			t.Errorf("outcome %s, budget %q, release %d", r.Outcome, r.Budget, h.called("release"))
		}
	})
	t.Run("leased by its drain", func(t *testing.T) {
		// The drain took the lease and gives it back (handing it to its next shutdown).
		h := newHarness(t)
		r := h.run(ShutdownRequest{Drain: "d1", Leased: true})
		if r.Outcome != plan.Graceful || h.called("acquire") != 0 || h.called("release") != 0 {
			t.Errorf("outcome %s, acquire %d, release %d", r.Outcome, h.called("acquire"), h.called("release"))
		}
	})
	t.Run("already out", func(t *testing.T) {
		h := newHarness(t)
		h.lookup = func(in activities.LookupInput) (activities.LookupOutput, error) {
			return activities.LookupOutput{Node: in.Node, State: activities.StateLeft, Members: 5}, nil
		}
		r := h.run(ShutdownRequest{})
		if h.called("acquire") != 0 || h.called("release") != 0 {
			t.Errorf("outcome %s, acquire %d, release %d", r.Outcome, h.called("acquire"), h.called("release"))
		}
	})
}
