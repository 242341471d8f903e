package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
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

// signals records the budget's signals to the requests it granted from its queue.
type signals struct {
	mu  sync.Mutex
	to  []string
	at  []time.Time
	env *testsuite.TestWorkflowEnvironment
	// bySignal counts the answers signalled from the workflow, flushes the local
	// activities that told the others.
	bySignal, flushes int
}

func recordSignals(env *testsuite.TestWorkflowEnvironment) *signals {
	s := &signals{env: env}
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalBudget, mock.Anything).Return(
		func(_, workflowID, _, _ string, _ any) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.to, s.at = append(s.to, workflowID), append(s.at, env.Now())
			s.bySignal++
			return nil
		})
	// Budgets of budget-tell-by-activity on send their answers from a local activity.
	env.OnActivity(clusterActs.TellLeases, mock.Anything, mock.Anything).Return(
		func(_ context.Context, told []activities.Told) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, t := range told {
				s.to, s.at = append(s.to, t.Notify), append(s.at, env.Now())
			}
			s.flushes++
			return nil
		})
	return s
}

func (s *signals) sent() ([]string, []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.to), slices.Clone(s.at)
}

// queued is a lease request that waits in the queue and is told when granted.
func queued(node string, serving ...string) activities.LeaseRequest {
	r := lease(node, serving...)
	r.Notify = r.Holder
	return r
}

// The budget grants while the limits allow, queues a request the limits hold back and
// answers at once, grants it at the next release and tells it, answers no at once at
// the floor, lets a node's own SIGTERM through, and binds a drain's reserved lease to
// the run that comes for it.
func TestBudgetGrantsQueuesAndHoldsTheFloor(t *testing.T) {
	env := newBudgetEnv(t, plan.Limits{MaxParallel: 2, MinAlive: 2})
	sig := recordSignals(env)
	var a, b, c, c2, d, e, f, g, g2 grantResult
	var view BudgetView
	start := env.Now()
	at := func(d time.Duration, fn func()) { env.RegisterDelayedCallback(fn, d) }
	noop := &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(error) {}, OnComplete: func(any, error) {}}
	at(time.Second, func() { env.UpdateWorkflow(UpdateAcquire, "a", a.callbacks(env), queued("node-1", five...)) })
	at(2*time.Second, func() { env.UpdateWorkflow(UpdateAcquire, "b", b.callbacks(env), queued("node-2", five...)) })
	at(3*time.Second, func() { env.UpdateWorkflow(UpdateAcquire, "c", c.callbacks(env), queued("node-3", five...)) })
	at(5*time.Second, func() {
		env.UpdateWorkflow(UpdateRelease, "ra", noop, activities.LeaseRef{Holder: WorkflowID("node-1"), Run: "run-node-1"})
	})
	// Told, node-3 asks again and finds its lease.
	at(6*time.Second, func() { env.UpdateWorkflow(UpdateAcquire, "c2", c2.callbacks(env), queued("node-3", five...)) })
	at(20*time.Second, func() { env.UpdateWorkflow(UpdateAcquire, "d", d.callbacks(env), lease("node-4", five...)) })
	at(21*time.Second, func() {
		env.UpdateWorkflow(UpdateRelease, "rd", noop, activities.LeaseRef{Holder: WorkflowID("node-4"), Run: "run-node-4"})
		// node-2 and node-3 hold leases: node-4 going would leave node-5 alone.
		env.UpdateWorkflow(UpdateAcquire, "e", e.callbacks(env), queued("node-4", "node-4", "node-5"))
	})
	at(22*time.Second, func() {
		req := lease("node-5", "node-5")
		req.Unblockable = true
		env.UpdateWorkflow(UpdateAcquire, "f", f.callbacks(env), req)
	})
	at(23*time.Second, func() {
		for _, n := range []string{"node-2", "node-3"} {
			env.UpdateWorkflow(UpdateRelease, "r"+n, noop, activities.LeaseRef{Holder: WorkflowID(n), Run: "run-" + n})
		}
		reserved := activities.LeaseRequest{Holder: WorkflowID("node-7"), Node: "node-7", Drain: "d1", Notify: "farewell-drain-d1"}
		env.UpdateWorkflow(UpdateAcquire, "g", g.callbacks(env), reserved)
	})
	at(24*time.Second, func() { env.UpdateWorkflow(UpdateAcquire, "g2", g2.callbacks(env), lease("node-7", five...)) })
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

	check := func(name string, r *grantResult, granted bool, why string) (activities.LeaseGrant, time.Time) {
		t.Helper()
		g, when, done, err := r.get()
		switch {
		case !done || err != nil:
			t.Errorf("%s: done %v, error %v", name, done, err)
		case g.Granted != granted || !strings.Contains(g.Why, why):
			t.Errorf("%s: got %+v, want granted %v and %q", name, g, granted, why)
		}
		return g, when
	}
	check("first", &a, true, "")
	check("second", &b, true, "")
	if g, when := check("third, while full", &c, false, "2 shutdowns in flight, max_parallel is 2"); !g.Queued || g.Position != 1 || when.Sub(start) > 3*time.Second {
		t.Errorf("the third request: %+v at %s; want queued first, answered at once", g, when.Sub(start))
	}
	to, when := sig.sent()
	if len(to) == 0 || to[0] != WorkflowID("node-3") || when[0].Sub(start) != 5*time.Second {
		t.Errorf("signals %v at %v; want node-3's shutdown told at the release (5s)", to, when)
	}
	check("third, told, asking again", &c2, true, "")
	check("full", &d, false, "2 shutdowns in flight, max_parallel is 2")
	if g, when, _, _ := e.get(); !g.Floor || when.Sub(start) > 21*time.Second {
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
	if strings.Join(nodes, " ") != "node-5/run-node-5 node-7/run-node-7" || view.Limits.MaxParallel != 2 || len(view.Queue) != 0 {
		t.Errorf("leases %v, queue %v, limits %+v", nodes, view.Queue, view.Limits)
	}
}

// Hundreds of requests at once under max_parallel 2: every one is answered at once
// (none holds an update while it waits), releases always get in, and the queue is
// granted in the order it was asked, never more than two in flight.
func TestBudgetQueueHoldsNoUpdate(t *testing.T) {
	const n = 300
	env := newBudgetEnv(t, plan.Limits{MaxParallel: 2})
	sig := recordSignals(env)
	results := make([]grantResult, n)
	node := func(i int) string { return fmt.Sprintf("node-%03d", i) }
	noop := &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(error) {}, OnComplete: func(any, error) {}}
	env.RegisterDelayedCallback(func() {
		for i := range n {
			env.UpdateWorkflow(UpdateAcquire, node(i), results[i].callbacks(env), queued(node(i)))
		}
	}, time.Second)
	var most int
	var wrong []string
	// Each second the two in flight (the queue's next two, granted at the last
	// releases) end.
	for k := range n / 2 {
		env.RegisterDelayedCallback(func() {
			v, err := env.QueryWorkflow(QueryBudget)
			var view BudgetView
			if err != nil || v.Get(&view) != nil {
				t.Error("the budget did not answer its query")
				return
			}
			most = max(most, len(view.Leases))
			var held []string
			for _, l := range view.Leases {
				held = append(held, l.Node)
			}
			if want := []string{node(2 * k), node(2*k + 1)}; !slices.Equal(held, want) {
				wrong = append(wrong, fmt.Sprintf("after %d releases %v hold leases, want %v", 2*k, held, want))
			}
			for _, i := range []int{2 * k, 2*k + 1} {
				env.UpdateWorkflow(UpdateRelease, "r"+node(i), noop, activities.LeaseRef{Holder: WorkflowID(node(i)), Run: "run-" + node(i)})
			}
		}, time.Duration(k+2)*time.Second)
	}
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Duration(n/2+5)*time.Second)
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})

	for i := range n {
		g, when, done, err := results[i].get()
		switch {
		case !done || err != nil:
			t.Fatalf("%s: done %v, error %v", node(i), done, err)
		case when.Sub(env.Now().Add(-time.Duration(n/2+5)*time.Second)) > time.Second:
			t.Fatalf("%s answered %s after it asked; want at once", node(i), when)
		case i < 2 && !g.Granted, i >= 2 && (!g.Queued || g.Position != i-1):
			t.Fatalf("%s: %+v; want granted (the first two) or queued in place %d", node(i), g, i-1)
		}
	}
	if len(wrong) > 0 {
		t.Fatalf("the queue was not granted in order: %s", strings.Join(wrong[:min(3, len(wrong))], "; "))
	}
	to, _ := sig.sent()
	slices.Sort(to)
	if distinct := slices.Compact(slices.Clone(to)); len(to) != n-2 || len(distinct) != n-2 || to[0] != WorkflowID(node(2)) {
		t.Fatalf("%d requests told of their lease (%d different); want each of the %d queued once", len(to), len(distinct), n-2)
	}
	if most > 2 {
		t.Errorf("%d leases at once; max_parallel is 2", most)
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
			// node-1's run closed without giving its lease back; node-2 waits.
			return slices.DeleteFunc(slices.Clone(refs), func(r activities.LeaseRef) bool { return r.Holder != WorkflowID("node-1") }), nil
		})
	sig := recordSignals(env)
	var a, b grantResult
	env.RegisterDelayedCallback(func() { env.UpdateWorkflow(UpdateAcquire, "a", a.callbacks(env), lease("node-1")) }, time.Second)
	env.RegisterDelayedCallback(func() { env.UpdateWorkflow(UpdateAcquire, "b", b.callbacks(env), queued("node-2")) }, 30*time.Second)
	env.RegisterDelayedCallback(env.CancelWorkflow, 3*time.Minute)
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})
	if g, _, _, err := b.get(); err != nil || !g.Queued {
		t.Fatalf("node-2 while node-1 holds the only lease: %+v %v; want queued", g, err)
	}
	if to, _ := sig.sent(); len(to) != 1 || to[0] != WorkflowID("node-2") {
		t.Fatalf("told %v; want node-2's shutdown, once node-1's lease was reaped", to)
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

// The queue moves to the next run with the leases, in its order.
func TestBudgetContinuesAsNewWithItsQueue(t *testing.T) {
	defer func(n int) { budgetUpdatesPerRun = n }(budgetUpdatesPerRun)
	budgetUpdatesPerRun = 10
	env := newBudgetEnv(t, plan.Limits{MaxParallel: 3})
	results := make([]grantResult, budgetUpdatesPerRun)
	env.RegisterDelayedCallback(func() {
		for i := range budgetUpdatesPerRun {
			node := fmt.Sprintf("node-%02d", i)
			env.UpdateWorkflow(UpdateAcquire, node, results[i].callbacks(env), queued(node))
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
	if len(carried.Leases) != 3 || len(carried.Waiters) != budgetUpdatesPerRun-3 || carried.Waiters[0].Node != "node-03" {
		t.Errorf("carried %d leases and %d waiters (first %+v); want 3 and %d, node-03 first", len(carried.Leases), len(carried.Waiters), carried.Waiters, budgetUpdatesPerRun-3)
	}
}

func decodePayloads(p *commonpb.Payloads, v any) error {
	return converter.GetDefaultDataConverter().FromPayloads(p, v)
}

// A budget run of the version before the queue cannot answer a request by signal (a
// newer orchestrator's shutdown sends them): it moves to a new run and hands the
// request over, so that nobody waits on a run that never answers.
func TestBudgetOfAnEarlierVersionHandsRequestsByItsSignalOver(t *testing.T) {
	env := newBudgetEnv(t, plan.Limits{MaxParallel: 2})
	env.OnGetVersion("budget-queue", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	var a grantResult
	env.RegisterDelayedCallback(func() { env.UpdateWorkflow(UpdateAcquire, "a", a.callbacks(env), lease("node-1", five...)) }, time.Second)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalAcquire, queued("node-2", five...)) }, 2*time.Second)
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("want a continue-as-new, got %v", err)
	}
	var carried BudgetState
	if err := decodePayloads(can.Input, &carried); err != nil {
		t.Fatal(err)
	}
	if len(carried.Leases) != 1 || len(carried.Asks) != 1 || carried.Asks[0].Node != "node-2" {
		t.Errorf("carried %+v; want node-1's lease and node-2's request", carried)
	}
}

// currentDetails reads what the Temporal UI shows of a run: its current details.
func currentDetails(t *testing.T, env *testsuite.TestWorkflowEnvironment) string {
	t.Helper()
	var md sdkpb.WorkflowMetadata
	v, err := env.QueryWorkflow("__temporal_workflow_metadata")
	if err == nil {
		err = v.Get(&md)
	}
	if err != nil {
		t.Error(err)
	}
	return md.GetCurrentDetails()
}

// The budget's details list the leases held, and no table while it holds none.
func TestBudgetDetailsListItsLeases(t *testing.T) {
	env := newBudgetEnv(t, plan.Limits{MaxParallel: 1})
	var idle, held string
	env.RegisterDelayedCallback(func() { idle = currentDetails(t, env) }, time.Second)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalAcquire, queued("node-1")) }, 2*time.Second)
	env.RegisterDelayedCallback(func() { held = currentDetails(t, env); env.CancelWorkflow() }, 3*time.Second)
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})
	if !strings.Contains(idle, "0 in flight") || strings.Contains(idle, "| node |") {
		t.Errorf("no lease held: details\n%s\nwant no table", idle)
	}
	if !strings.Contains(held, "1 in flight") || !strings.Contains(held, "| node | drain | since | note |") || !strings.Contains(held, "| node-1 | - |") {
		t.Errorf("node-1 holding: details\n%s\nwant its row", held)
	}
}

// budgetView queries the budget.
func budgetView(t *testing.T, env *testsuite.TestWorkflowEnvironment) BudgetView {
	t.Helper()
	var view BudgetView
	v, err := env.QueryWorkflow(QueryBudget)
	if err == nil {
		err = v.Get(&view)
	}
	if err != nil {
		t.Error(err)
	}
	return view
}

func leaseNodes(v BudgetView) []string {
	var out []string
	for _, l := range v.Leases {
		out = append(out, l.Node)
	}
	return out
}

func queueNodes(v BudgetView) []string {
	var out []string
	for _, w := range v.Queue {
		out = append(out, w.Node)
	}
	return out
}

// A release gives back the lease of its run only (or, with no run named, the holder's
// lease); a waiter that gives up leaves the queue the same way; asking again keeps a
// waiter's place.
func TestBudgetReleasesOnlyTheRunsOwn(t *testing.T) {
	env := newBudgetEnv(t, plan.Limits{MaxParallel: 1})
	recordSignals(env)
	release := func(node, run string) {
		env.SignalWorkflow(SignalRelease, activities.LeaseRef{Holder: WorkflowID(node), Run: run})
	}
	type step struct {
		at     time.Duration
		do     func()
		leases []string
		queue  []string
	}
	steps := []step{
		{time.Second, func() { env.SignalWorkflow(SignalAcquire, queued("node-1", five...)) }, []string{"node-1"}, nil},
		{2 * time.Second, func() { env.SignalWorkflow(SignalAcquire, queued("node-2", five...)) }, []string{"node-1"}, []string{"node-2"}},
		{3 * time.Second, func() { env.SignalWorkflow(SignalAcquire, queued("node-3", five...)) }, []string{"node-1"}, []string{"node-2", "node-3"}},
		// The head of the queue asks again: it keeps its place, once.
		{4 * time.Second, func() { env.SignalWorkflow(SignalAcquire, queued("node-2", five...)) }, []string{"node-1"}, []string{"node-2", "node-3"}},
		// Another run of node-1's ID gives back nothing of this one's.
		{5 * time.Second, func() { release("node-1", "run-other") }, []string{"node-1"}, []string{"node-2", "node-3"}},
		{6 * time.Second, func() { release("node-2", "run-other") }, []string{"node-1"}, []string{"node-2", "node-3"}},
		// No run named: the holder's place goes, whatever its run.
		{7 * time.Second, func() { release("node-2", "") }, []string{"node-1"}, []string{"node-3"}},
		{8 * time.Second, func() { release("node-1", "") }, []string{"node-3"}, nil},
	}
	for i, s := range steps {
		env.RegisterDelayedCallback(s.do, s.at)
		env.RegisterDelayedCallback(func() {
			v := budgetView(t, env)
			if !slices.Equal(leaseNodes(v), s.leases) || !slices.Equal(queueNodes(v), s.queue) || v.Waiting != len(s.queue) {
				t.Errorf("after step %d: leases %v, queue %v (waiting %d); want %v and %v", i+1, leaseNodes(v), queueNodes(v), v.Waiting, s.leases, s.queue)
			}
		}, s.at+500*time.Millisecond)
	}
	env.RegisterDelayedCallback(env.CancelWorkflow, 10*time.Second)
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})
}

// The reaper asks about every lease bound to a run and every waiter with a run, and
// about a drain's reserved lease or request only once it is older than reserveGrace;
// what closed goes, and the room it makes goes to the queue.
func TestBudgetReapsWhatClosedAndSparesWhatIsReserved(t *testing.T) {
	env := newBudgetEnv(t, plan.Limits{MaxParallel: 2})
	recordSignals(env)
	var mu sync.Mutex
	var rounds [][]string
	env.OnActivity(clusterActs.ClosedLeases, mock.Anything, mock.Anything).Return(
		func(_ context.Context, refs []activities.LeaseRef) ([]activities.LeaseRef, error) {
			mu.Lock()
			defer mu.Unlock()
			var asked []string
			for _, r := range refs {
				asked = append(asked, strings.TrimPrefix(r.Holder, activities.ShutdownWorkflowIDPrefix)+"/"+r.Run)
			}
			rounds = append(rounds, asked)
			if len(rounds) == 1 {
				return refs, nil // every run asked about has closed
			}
			return nil, nil
		})
	reserved := func(node string) activities.LeaseRequest {
		r := queued(node, five...)
		r.Run, r.Drain, r.Notify = "", "d1", "farewell-drain-d1"
		return r
	}
	at := func(d time.Duration, fn func()) { env.RegisterDelayedCallback(fn, d) }
	at(time.Second, func() { env.SignalWorkflow(SignalAcquire, reserved("node-1")) })
	at(2*time.Second, func() { env.SignalWorkflow(SignalAcquire, queued("node-2", five...)) })
	at(3*time.Second, func() { env.SignalWorkflow(SignalAcquire, reserved("node-3")) })
	at(4*time.Second, func() { env.SignalWorkflow(SignalAcquire, queued("node-4", five...)) })
	var first, second BudgetView
	at(61*time.Second, func() { first = budgetView(t, env) })
	at(121*time.Second, func() { second = budgetView(t, env) })
	at(125*time.Second, env.CancelWorkflow)
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})
	mu.Lock()
	defer mu.Unlock()
	// At 60 s: node-2's lease and node-4's place are bound to runs; node-1's reserved
	// lease (59 s) and node-3's request (57 s) are not old enough to ask about.
	// At 120 s: node-1's lease is; node-3's, granted at 60 s, is exactly reserveGrace old.
	want := [][]string{{"node-2/run-node-2", "node-4/run-node-4"}, {"node-1/"}}
	if len(rounds) != 2 || !slices.Equal(rounds[0], want[0]) || !slices.Equal(rounds[1], want[1]) {
		t.Errorf("the reaper asked about %v; want %v", rounds, want)
	}
	if !slices.Equal(leaseNodes(first), []string{"node-1", "node-3"}) || len(first.Queue) != 0 {
		t.Errorf("after the first reap: leases %v, queue %v; want node-1 and node-3 (granted the room), none waiting", leaseNodes(first), queueNodes(first))
	}
	if !slices.Equal(leaseNodes(second), []string{"node-1", "node-3"}) {
		t.Errorf("after the second reap: leases %v; want both reserved leases kept (their runs had not closed)", leaseNodes(second))
	}
}

// Limits changed in the budget's worker apply to the next request: the queue is granted
// as far as the new limits allow.
func TestBudgetTakesNewLimits(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(sdklog.NewStructuredLogger(testkit.Logger(t)))
	env := suite.NewTestWorkflowEnvironment()
	w := &Shutdowns{Plan: plan.Default(), Limits: plan.Limits{MaxParallel: 1}}
	env.RegisterWorkflowWithOptions(w.Budget, workflow.RegisterOptions{Name: BudgetWorkflowName})
	env.RegisterActivity(&activities.ClusterActivities{})
	recordSignals(env)
	at := func(d time.Duration, fn func()) { env.RegisterDelayedCallback(fn, d) }
	at(time.Second, func() { env.SignalWorkflow(SignalAcquire, queued("node-1", five...)) })
	at(2*time.Second, func() { env.SignalWorkflow(SignalAcquire, queued("node-2", five...)) })
	at(3*time.Second, func() { w.Limits = plan.Limits{MaxParallel: 2} })
	at(4*time.Second, func() { env.SignalWorkflow(SignalAcquire, queued("node-3", five...)) })
	var view BudgetView
	at(5*time.Second, func() { view = budgetView(t, env); env.CancelWorkflow() })
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})
	if !slices.Equal(leaseNodes(view), []string{"node-1", "node-2"}) || !slices.Equal(queueNodes(view), []string{"node-3"}) || view.Limits.MaxParallel != 2 {
		t.Errorf("after max_parallel 1 → 2: leases %v, queue %v, limits %s; want node-1 and node-2, node-3 waiting, at most 2", leaseNodes(view), queueNodes(view), view.Limits)
	}
}

// A budget run of the version before the queue moves on for a release by signal too —
// at once, not at its next reap — and only for a signal: it stays, reaping, while nobody
// signals it.
func TestBudgetOfAnEarlierVersionMovesOnlyForASignal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		release bool
	}{{"a release", true}, {"nothing", false}} {
		env := newBudgetEnv(t, plan.Limits{MaxParallel: 2})
		env.OnGetVersion("budget-queue", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		if tc.release {
			env.RegisterDelayedCallback(func() {
				env.SignalWorkflow(SignalRelease, activities.LeaseRef{Holder: WorkflowID("node-1"), Run: "run-node-1"})
			}, time.Second)
		}
		// A signal moves it within the second; nothing, not in one reap and a half.
		wait := reapEvery / 2
		if !tc.release {
			wait = reapEvery * 3 / 2
		}
		env.RegisterDelayedCallback(env.CancelWorkflow, wait)
		env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})
		var can *workflow.ContinueAsNewError
		err := env.GetWorkflowError()
		switch {
		case tc.release && !errors.As(err, &can):
			t.Errorf("%s by signal: %v after %s, want a continue-as-new", tc.name, err, wait)
		case tc.release:
			var carried BudgetState
			if err := decodePayloads(can.Input, &carried); err != nil || len(carried.Releases) != 1 {
				t.Errorf("carried %+v (%v); want the release", carried, err)
			}
		case errors.As(err, &can):
			t.Errorf("no signal, yet it moved to a new run")
		}
	}
}

// Every update counts towards the run's share, a request or a release, in runs of
// either version: past budgetUpdatesPerRun the run moves on.
func TestBudgetCountsEveryUpdateTowardsItsMove(t *testing.T) {
	defer func(n int) { budgetUpdatesPerRun = n }(budgetUpdatesPerRun)
	budgetUpdatesPerRun = 6
	for _, queue := range []bool{true, false} {
		for _, update := range []string{UpdateAcquire, UpdateRelease} {
			env := newBudgetEnv(t, plan.Limits{})
			if !queue {
				env.OnGetVersion("budget-queue", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			}
			env.OnActivity(clusterActs.ClosedLeases, mock.Anything, mock.Anything).Return([]activities.LeaseRef(nil), nil)
			results := make([]grantResult, budgetUpdatesPerRun)
			env.RegisterDelayedCallback(func() {
				for i := range budgetUpdatesPerRun {
					node := fmt.Sprintf("node-%d", i)
					var arg any = lease(node)
					if update == UpdateRelease {
						arg = activities.LeaseRef{Holder: WorkflowID(node), Run: "run-" + node}
					}
					env.UpdateWorkflow(update, node, results[i].callbacks(env), arg)
				}
			}, time.Second)
			env.RegisterDelayedCallback(env.CancelWorkflow, 10*reapEvery)
			env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})
			var can *workflow.ContinueAsNewError
			if err := env.GetWorkflowError(); !errors.As(err, &can) {
				t.Errorf("queue %v, %d of %s: %v; want a continue-as-new", queue, budgetUpdatesPerRun, update, err)
			}
		}
	}
}

// A holder that asks again, of a run before the queue, is granted the lease it holds,
// bound to its new run: never a second one, whatever its place among the leases.
func TestBudgetOfAnEarlierVersionGrantsAHolderItsOwnLease(t *testing.T) {
	env := newBudgetEnv(t, plan.Limits{MaxParallel: 1})
	env.OnGetVersion("budget-queue", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	var first, again grantResult
	env.RegisterDelayedCallback(func() { env.UpdateWorkflow(UpdateAcquire, "a", first.callbacks(env), lease("node-1")) }, time.Second)
	env.RegisterDelayedCallback(func() {
		req := lease("node-1")
		req.Run = "run-2"
		env.UpdateWorkflow(UpdateAcquire, "b", again.callbacks(env), req)
	}, 2*time.Second)
	var view BudgetView
	env.RegisterDelayedCallback(func() { view = budgetView(t, env); env.CancelWorkflow() }, 3*time.Second)
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})
	g1, _, _, err1 := first.get()
	g2, _, _, err2 := again.get()
	if !g1.Granted || !g2.Granted || err1 != nil || err2 != nil {
		t.Fatalf("granted %v (%v), then %v (%v); want both", g1.Granted, err1, g2.Granted, err2)
	}
	if len(view.Leases) != 1 || view.Leases[0].Run != "run-2" {
		t.Errorf("leases %+v; want node-1's one, bound to run-2", view.Leases)
	}
}

// The budget tells its answers from a local activity, every answer of a workflow task
// in one, never by a signal from the workflow; a budget run from before budget-tell-by-activity signals each from the
// workflow, and tells the same requests.
func TestBudgetTellsItsAnswersFromALocalActivity(t *testing.T) {
	var told [2][]string
	for i, byActivity := range []bool{true, false} {
		env := newBudgetEnv(t, plan.Limits{MaxParallel: 2})
		if !byActivity {
			env.OnGetVersion("budget-tell-by-activity", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		}
		sig := recordSignals(env)
		env.RegisterDelayedCallback(func() {
			for _, n := range five[:4] {
				env.SignalWorkflow(SignalAcquire, queued(n, five...))
			}
		}, time.Second)
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalRelease, activities.LeaseRef{Holder: WorkflowID("node-1"), Run: "run-node-1"})
			env.SignalWorkflow(SignalRelease, activities.LeaseRef{Holder: WorkflowID("node-2"), Run: "run-node-2"})
		}, 2*time.Second)
		env.RegisterDelayedCallback(env.CancelWorkflow, 3*time.Second)
		env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})
		told[i], _ = sig.sent()
		sig.mu.Lock()
		bySignal, flushes := sig.bySignal, sig.flushes
		sig.mu.Unlock()
		switch {
		case byActivity && (bySignal != 0 || flushes == 0 || flushes > 6):
			// (The test environment delivers each signal in a task of its own: how many
			// answers one activity tells is the server's batching, seen in P6.)
			t.Errorf("by activity: %d answers signalled from the workflow, %d local activities; want none, and at most one per answer", bySignal, flushes)
		case !byActivity && (bySignal != 6 || flushes != 0):
			t.Errorf("an earlier budget: %d answers signalled, %d local activities; want 6 and 0", bySignal, flushes)
		}
	}
	// node-1 and node-2 granted, node-3 and node-4 queued; then the two released and
	// the two queued granted. By activity, in that order; by signal, the same answers
	// (the test environment sends signals to other workflows in no set order).
	want := []string{WorkflowID("node-1"), WorkflowID("node-2"), WorkflowID("node-3"), WorkflowID("node-4"), WorkflowID("node-3"), WorkflowID("node-4")}
	bySignal := slices.Sorted(slices.Values(told[1]))
	if !slices.Equal(told[0], want) || !slices.Equal(bySignal, slices.Sorted(slices.Values(want))) {
		t.Errorf("told %v (by activity) and %v (by signal); want %v", told[0], told[1], want)
	}
}

// A waiter whose shutdown closed while it waited leaves the queue at the reaper's
// round — the first in line too.
func TestBudgetReapsTheFirstWaiter(t *testing.T) {
	env := newBudgetEnv(t, plan.Limits{MaxParallel: 1})
	recordSignals(env)
	env.OnActivity(clusterActs.ClosedLeases, mock.Anything, mock.Anything).Return(
		func(_ context.Context, refs []activities.LeaseRef) ([]activities.LeaseRef, error) {
			var closed []activities.LeaseRef
			for _, r := range refs {
				if r.Holder == WorkflowID("node-b") {
					closed = append(closed, r)
				}
			}
			return closed, nil
		})
	at := func(d time.Duration, fn func()) { env.RegisterDelayedCallback(fn, d) }
	at(time.Second, func() { env.SignalWorkflow(SignalAcquire, queued("node-a", five...)) })
	at(2*time.Second, func() { env.SignalWorkflow(SignalAcquire, queued("node-b", five...)) })
	var before, after BudgetView
	at(30*time.Second, func() { before = budgetView(t, env) })
	at(61*time.Second, func() { after = budgetView(t, env) })
	at(62*time.Second, env.CancelWorkflow)
	env.ExecuteWorkflow(BudgetWorkflowName, BudgetState{})
	if !slices.Equal(leaseNodes(before), []string{"node-a"}) || !slices.Equal(queueNodes(before), []string{"node-b"}) {
		t.Fatalf("before the reap: leases %v, queue %v; want node-a holding, node-b first in line", leaseNodes(before), queueNodes(before))
	}
	if !slices.Equal(leaseNodes(after), []string{"node-a"}) || len(after.Queue) != 0 || after.Waiting != 0 {
		t.Errorf("after the reap: leases %v, queue %v (%d waiting); want node-a holding, nobody waiting", leaseNodes(after), queueNodes(after), after.Waiting)
	}
}
