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
	if h.called("give-back") != 1 {
		t.Errorf("the lease went back %d times from a local activity; want once", h.called("give-back"))
	}

	// A run from before versionGiveBackByActivity gives it back by a signal from the
	// workflow, as it did.
	h = newHarness(t)
	h.atVersion(versionStepColumn)
	if r := h.run(ShutdownRequest{}); r.Outcome != plan.Graceful || h.called("release") != 1 || h.called("give-back") != 0 {
		t.Errorf("a run of version %d: outcome %s, released %d times, %d of them from a local activity; want once, by signal", versionStepColumn, r.Outcome, h.called("release"), h.called("give-back"))
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
	if h.called("release") != 1 || h.called("rollback") != 0 {
		t.Errorf("release %d, rollback %d: nothing was changed, and its place in the queue is given up", h.called("release"), h.called(plan.Rollback))
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

// With no budget set (budget.max_parallel and min_alive 0) a shutdown asks nothing of it.
func TestNoBudgetNoLease(t *testing.T) {
	h := newHarnessWith(t, plan.Limits{})
	r := h.run(ShutdownRequest{})
	if r.Outcome != plan.Graceful || h.called("acquire") != 0 || h.called("release") != 0 {
		t.Errorf("outcome %s, acquire %d, release %d; want no lease asked for", r.Outcome, h.called("acquire"), h.called("release"))
	}
}

// A shutdown the budget queues waits, saying where it stands, until the budget tells it
// its lease is granted — not asking again meanwhile — then runs.
func TestShutdownWaitsInTheBudgetsQueueUntilTold(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var asked []time.Time
	var notify, holder string
	h.acquire = func(in activities.LeaseRequest) (activities.LeaseGrant, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, h.env.Now())
		notify, holder = in.Notify, in.Holder
		return activities.LeaseGrant{Asked: true}, nil
	}
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalBudget, activities.LeaseGrant{Holder: holder, Queued: true, Position: 3, Why: "2 shutdowns in flight, max_parallel is 2"})
	}, time.Second)
	var waiting string
	h.env.RegisterDelayedCallback(func() {
		if v, err := h.env.QueryWorkflow(QueryProgress); err == nil {
			var p ShutdownReport
			_ = v.Get(&p)
			waiting = p.Waiting
		}
		// Another shutdown's answer is not this one's; nor is one for another run of
		// this shutdown's ID (late, or told again).
		h.env.SignalWorkflow(SignalBudget, activities.LeaseGrant{Holder: WorkflowID("node-9"), Granted: true})
		h.env.SignalWorkflow(SignalBudget, activities.LeaseGrant{Holder: holder, Run: "an-earlier-run", Granted: true})
	}, 10*time.Second)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalBudget, activities.LeaseGrant{Holder: holder, Granted: true})
	}, 12*time.Second)
	start := h.env.Now()
	r := h.run(ShutdownRequest{})
	if r.Outcome != plan.Graceful || !strings.Contains(r.Budget, "waited 12s") {
		t.Errorf("outcome %s, budget %q", r.Outcome, r.Budget)
	}
	if !strings.Contains(waiting, "max_parallel is 2; 2 ahead in the queue") {
		t.Errorf("while queued its progress said %q", waiting)
	}
	if len(asked) != 1 || asked[0] != start || notify != r.WorkflowID {
		t.Errorf("asked at %v (notify %q); want once, at the start, to be told at %s", asked, notify, r.WorkflowID)
	}
}

// An answer that never comes is asked for again (the request keeps its place); a
// node's own SIGTERM does not wait for one: it goes on without a lease.
func TestShutdownAsksTheBudgetAgainWhenNoAnswerComes(t *testing.T) {
	t.Run("asks again", func(t *testing.T) {
		h := newHarness(t)
		var mu sync.Mutex
		n := 0
		h.acquire = func(in activities.LeaseRequest) (activities.LeaseGrant, error) {
			mu.Lock()
			defer mu.Unlock()
			if n++; n == 2 {
				return activities.LeaseGrant{Granted: true}, nil
			}
			return activities.LeaseGrant{Asked: true}, nil // and no answer ever comes
		}
		r := h.run(ShutdownRequest{})
		if r.Outcome != plan.Graceful || n != 2 || !strings.Contains(r.Budget, "waited 30s") {
			t.Errorf("outcome %s after %d requests, budget %q; want the second, 30s on, granted", r.Outcome, n, r.Budget)
		}
	})
	t.Run("its own SIGTERM goes on", func(t *testing.T) {
		h := newHarness(t)
		h.acquire = func(activities.LeaseRequest) (activities.LeaseGrant, error) {
			return activities.LeaseGrant{Asked: true}, nil
		}
		r := h.run(ShutdownRequest{Unblockable: true})
		if r.Outcome != plan.Graceful || !strings.Contains(r.Budget, "without a lease") || h.called("acquire") != 1 {
			t.Errorf("outcome %s, budget %q, %d requests", r.Outcome, r.Budget, h.called("acquire"))
		}
	})
}
