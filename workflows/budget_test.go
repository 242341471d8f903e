package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/internal/testkit"
	"github.com/farewell-project/farewell/plan"
)

// grantResult records one acquire update: its grant, and when (workflow time) it came.
type grantResult struct {
	mu    sync.Mutex
	grant activities.LeaseGrant
	err   error
	at    time.Time
	done  bool
}

func (g *grantResult) callbacks(env *testsuite.TestWorkflowEnvironment) *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{
		OnAccept: func() {},
		OnReject: func(err error) { g.mu.Lock(); g.err, g.done = err, true; g.mu.Unlock() },
		OnComplete: func(v any, err error) {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.err, g.done, g.at = err, true, env.Now()
			if b, jerr := json.Marshal(v); jerr == nil {
				_ = json.Unmarshal(b, &g.grant)
			}
		},
	}
}

func (g *grantResult) get() (activities.LeaseGrant, time.Time, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.grant, g.at, g.done, g.err
}

func newBudgetEnv(t *testing.T, limits plan.Limits) *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(sdklog.NewStructuredLogger(testkit.Logger(t)))
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions((&Shutdowns{Plan: plan.Default(), Limits: limits}).Budget, workflow.RegisterOptions{Name: BudgetWorkflowName})
	env.RegisterActivity(&activities.ClusterActivities{})
	return env
}

func lease(node string, serving ...string) activities.LeaseRequest {
	return activities.LeaseRequest{Holder: WorkflowID(node), Run: "run-" + node, Node: node, Serving: serving}
}

var five = []string{"node-1", "node-2", "node-3", "node-4", "node-5"}

// The budget grants while the limits allow, makes a request wait for a release,
// answers no at once at the floor, lets a node's own SIGTERM through, and binds a
// drain's reserved lease to the run that comes for it.
func TestBudgetGrantsWaitsAndHoldsTheFloor(t *testing.T) {
	env := newBudgetEnv(t, plan.Limits{MaxParallel: 2, MinAlive: 2})
	var a, b, c, d, e, f, g, g2 grantResult
	var view BudgetView
	start := env.Now()
	at := func(d time.Duration, fn func()) { env.RegisterDelayedCallback(fn, d) }
	at(time.Second, func() { env.UpdateWorkflow(UpdateAcquire, "a", a.callbacks(env), lease("node-1", five...)) })
	at(2*time.Second, func() { env.UpdateWorkflow(UpdateAcquire, "b", b.callbacks(env), lease("node-2", five...)) })
	at(3*time.Second, func() {
		req := lease("node-3", five...)
		req.Wait = plan.Duration(10 * time.Second)
		env.UpdateWorkflow(UpdateAcquire, "c", c.callbacks(env), req)
	})
	at(5*time.Second, func() {
		env.UpdateWorkflow(UpdateRelease, "ra", &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(error) {}, OnComplete: func(any, error) {}},
			activities.LeaseRef{Holder: WorkflowID("node-1"), Run: "run-node-1"})
	})
	at(20*time.Second, func() { env.UpdateWorkflow(UpdateAcquire, "d", d.callbacks(env), lease("node-4", five...)) })
	at(21*time.Second, func() {
		// node-2 and node-3 hold leases: node-4 going would leave node-5 alone.
		req := lease("node-4", "node-4", "node-5")
		req.Wait = plan.Duration(10 * time.Second)
		req.Holder, req.Node = WorkflowID("node-4"), "node-4"
		env.UpdateWorkflow(UpdateAcquire, "e", e.callbacks(env), req)
	})
	at(22*time.Second, func() {
		req := lease("node-5", "node-5")
		req.Unblockable = true
		env.UpdateWorkflow(UpdateAcquire, "f", f.callbacks(env), req)
	})
	at(23*time.Second, func() {
		for _, n := range []string{"node-2", "node-3"} {
			env.UpdateWorkflow(UpdateRelease, "r"+n, &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(error) {}, OnComplete: func(any, error) {}},
				activities.LeaseRef{Holder: WorkflowID(n), Run: "run-" + n})
		}
		reserved := activities.LeaseRequest{Holder: WorkflowID("node-7"), Node: "node-7", Drain: "d1"}
		env.UpdateWorkflow(UpdateAcquire, "g", g.callbacks(env), reserved)
	})
	at(24*time.Second, func() {
		env.UpdateWorkflow(UpdateAcquire, "g2", g2.callbacks(env), lease("node-7", five...))
	})
	at(25*time.Second, func() {
		v, err := env.QueryWorkflow(QueryBudget)
		if err != nil {
			t.Error(err)
			return
		}
		if err := v.Get(&view); err != nil {
			t.Error(err)
		}
	})
	at(30*time.Second, env.CancelWorkflow)
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})

	check := func(name string, r *grantResult, granted bool, why string) time.Time {
		t.Helper()
		g, when, done, err := r.get()
		switch {
		case !done || err != nil:
			t.Errorf("%s: done %v, error %v", name, done, err)
		case g.Granted != granted || !strings.Contains(g.Why, why):
			t.Errorf("%s: got %+v, want granted %v and %q", name, g, granted, why)
		}
		return when
	}
	check("first", &a, true, "")
	check("second", &b, true, "")
	if when := check("third, after a release", &c, true, ""); when.Sub(start) < 5*time.Second || when.Sub(start) > 6*time.Second {
		t.Errorf("the waiting request was granted %s after the start, want at the release (5s)", when.Sub(start))
	}
	check("full", &d, false, "2 shutdowns in flight, max_parallel is 2")
	if g, when, _, _ := e.get(); !g.Floor || when.Sub(start) > 22*time.Second {
		t.Errorf("at the floor: %+v at %s; want a floor refusal at once", g, when.Sub(start))
	}
	check("its own SIGTERM", &f, true, "never held back")
	check("reserved by a drain", &g, true, "")
	if gr, _, _, _ := g2.get(); !gr.Granted || gr.InFlight != 2 {
		t.Errorf("the run of a reserved lease: %+v; want it granted without a second lease (2 in flight)", gr)
	}
	var nodes []string
	for _, l := range view.Leases {
		nodes = append(nodes, l.Node+"/"+l.Run)
	}
	if strings.Join(nodes, " ") != "node-5/run-node-5 node-7/run-node-7" || view.Limits.MaxParallel != 2 {
		t.Errorf("leases %v, limits %+v", nodes, view.Limits)
	}
}

// A drain hands the lease of a shutdown that ended to its next one in one request: at
// max_parallel 1 the next is granted at once, and the ended one's lease is gone.
func TestBudgetTakesLeasesBackWithARequest(t *testing.T) {
	env := newBudgetEnv(t, plan.Limits{MaxParallel: 1})
	var first, next grantResult
	var view BudgetView
	at := func(d time.Duration, fn func()) { env.RegisterDelayedCallback(fn, d) }
	at(time.Second, func() { env.UpdateWorkflow(UpdateAcquire, "a", first.callbacks(env), lease("node-1", five...)) })
	at(2*time.Second, func() {
		req := lease("node-2", five...)
		req.Returning = []activities.LeaseRef{{Holder: WorkflowID("node-1"), Run: "run-node-1"}}
		env.UpdateWorkflow(UpdateAcquire, "b", next.callbacks(env), req)
	})
	at(3*time.Second, func() {
		v, err := env.QueryWorkflow(QueryBudget)
		if err == nil {
			err = v.Get(&view)
		}
		if err != nil {
			t.Error(err)
		}
	})
	at(4*time.Second, env.CancelWorkflow)
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})
	if g, _, done, err := next.get(); !done || err != nil || !g.Granted || g.InFlight != 1 {
		t.Fatalf("the next shutdown: %+v %v (done %v); want granted, 1 in flight", g, err, done)
	}
	if len(view.Leases) != 1 || view.Leases[0].Node != "node-2" {
		t.Errorf("leases %+v; want node-2's only", view.Leases)
	}
}

// A lease whose shutdown closed without giving it back (terminated by hand) is reaped.
func TestBudgetReapsLeasesOfClosedRuns(t *testing.T) {
	env := newBudgetEnv(t, plan.Limits{MaxParallel: 1})
	var mu sync.Mutex
	var asked [][]activities.LeaseRef
	env.OnActivity(clusterActs.ClosedLeases, mock.Anything, mock.Anything).Return(
		func(_ context.Context, refs []activities.LeaseRef) ([]activities.LeaseRef, error) {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, refs)
			return refs, nil // every holder closed
		})
	var a, b grantResult
	env.RegisterDelayedCallback(func() { env.UpdateWorkflow(UpdateAcquire, "a", a.callbacks(env), lease("node-1")) }, time.Second)
	env.RegisterDelayedCallback(func() {
		req := lease("node-2")
		req.Wait = plan.Duration(50 * time.Second)
		env.UpdateWorkflow(UpdateAcquire, "b", b.callbacks(env), req)
	}, 30*time.Second)
	env.RegisterDelayedCallback(env.CancelWorkflow, 3*time.Minute)
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})
	if g, when, _, err := b.get(); err != nil || !g.Granted || when.Sub(env.Now()) > 0 {
		t.Fatalf("after the reap: %+v %v", g, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) == 0 || asked[0][0].Holder != WorkflowID("node-1") {
		t.Errorf("asked about %v", asked)
	}
}

// Past its share of updates the budget continues as new, carrying its leases.
func TestBudgetContinuesAsNewWithItsLeases(t *testing.T) {
	defer func(n int) { budgetUpdatesPerRun = n }(budgetUpdatesPerRun)
	budgetUpdatesPerRun = 30
	env := newBudgetEnv(t, plan.Limits{})
	results := make([]grantResult, budgetUpdatesPerRun)
	env.RegisterDelayedCallback(func() {
		for i := range budgetUpdatesPerRun {
			node := "node-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
			env.UpdateWorkflow(UpdateAcquire, node, results[i].callbacks(env), lease(node))
		}
	}, time.Second)
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("want a continue-as-new, got %v", err)
	}
	var carried BudgetState
	if err := decodePayloads(can.Input, &carried); err != nil {
		t.Fatal(err)
	}
	if len(carried.Leases) != budgetUpdatesPerRun {
		t.Errorf("carried %d leases, want %d", len(carried.Leases), budgetUpdatesPerRun)
	}
}

func decodePayloads(p *commonpb.Payloads, v any) error {
	return converter.GetDefaultDataConverter().FromPayloads(p, v)
}
