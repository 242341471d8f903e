package starter

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

func leaseRequest(node string) activities.LeaseRequest {
	return activities.LeaseRequest{Holder: workflows.WorkflowID(node), Node: node, Limits: plan.Limits{MaxParallel: 2}}
}

func TestAcquireAsksAgainWhileTheBudgetMoves(t *testing.T) {
	f := newFake()
	s := f.starter()
	ctx := context.Background()
	if _, err := s.Acquire(ctx, activities.LeaseRequest{Holder: "not-a-shutdown", Node: "node-1"}); !errors.Is(err, ErrBadRequest) || len(f.updates) != 0 {
		t.Errorf("bad request: %v, %d asked", err, len(f.updates))
	}

	answers := []activities.LeaseGrant{{Retry: true}, {Granted: true, Holder: workflows.WorkflowID("node-1")}}
	f.answer = func(o client.UpdateWorkflowOptions) (any, error) {
		g := answers[0]
		answers = answers[1:]
		return g, nil
	}
	g, err := s.Acquire(ctx, leaseRequest("node-1"))
	if err != nil || !g.Granted || len(f.updates) != 2 || f.updates[0].UpdateName != workflows.UpdateAcquire {
		t.Errorf("moving once: %+v %v after %d asks", g, err, len(f.updates))
	}
	if len(f.withStart) != 2 || f.withStart[0].ID != workflows.BudgetWorkflowID {
		t.Errorf("each ask starts the budget if it does not run: %+v", f.withStart)
	}

	f.updates = nil
	f.answer = func(client.UpdateWorkflowOptions) (any, error) { return activities.LeaseGrant{Retry: true}, nil }
	g, err = s.Acquire(ctx, leaseRequest("node-1"))
	if err != nil || !g.Retry || g.Granted || len(f.updates) != 3 || !strings.Contains(g.Why, "moving") {
		t.Errorf("moving always: %+v %v after %d asks, want a retry after 3", g, err, len(f.updates))
	}

	f.answer = func(client.UpdateWorkflowOptions) (any, error) { return nil, errors.New("limit reached") }
	if _, err := s.Acquire(ctx, leaseRequest("node-1")); err == nil || !strings.Contains(err.Error(), "ask the budget: limit reached") {
		t.Errorf("refused: %v", err)
	}
	f.fail["update"] = errors.New("down")
	if _, err := s.Acquire(ctx, leaseRequest("node-1")); err == nil || !strings.Contains(err.Error(), "ask the budget: down") {
		t.Errorf("unreachable: %v", err)
	}
}

func TestAskBySignal(t *testing.T) {
	f := newFake()
	s := f.starter()
	ctx := context.Background()
	req := leaseRequest("node-1")
	if err := s.Ask(ctx, req); !errors.Is(err, ErrBadRequest) || len(f.signals) != 0 {
		t.Errorf("no notify: %v", err)
	}
	if err := s.Ask(ctx, activities.LeaseRequest{Holder: "x", Notify: "y"}); !errors.Is(err, ErrBadRequest) || len(f.signals) != 0 {
		t.Errorf("bad request: %v", err)
	}
	req.Notify = req.Holder
	if err := s.Ask(ctx, req); err != nil || len(f.signals) != 1 ||
		f.signals[0].ID != workflows.BudgetWorkflowID || f.signals[0].Name != workflows.SignalAcquire {
		t.Errorf("ask: %v %+v", err, f.signals)
	}
	f.fail["signal"] = errors.New("down")
	if err := s.Ask(ctx, req); err == nil || !strings.Contains(err.Error(), "ask the budget") {
		t.Errorf("unreachable: %v", err)
	}
	o := budgetStart()
	if o.ID != workflows.BudgetWorkflowID || o.TaskQueue != workflows.TaskQueue ||
		o.WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING {
		t.Errorf("the budget starts as %+v", o)
	}
}

// A budget that does not run holds no lease: giving one back to it is done.
func TestGivingBackToNoBudgetIsDone(t *testing.T) {
	f := newFake()
	s := f.starter()
	ctx := context.Background()
	ref := activities.LeaseRef{Holder: workflows.WorkflowID("node-1"), Run: "run-1"}
	if err := s.Release(ctx, ref); err != nil {
		t.Errorf("release to no budget: %v", err)
	}
	f.fail["signal"] = serviceerror.NewNotFound("no budget")
	if err := s.GiveBack(ctx, ref); err != nil {
		t.Errorf("give back to no budget: %v", err)
	}
	if err := s.Tell(ctx, ref.Holder, activities.LeaseGrant{Granted: true}); err != nil {
		t.Errorf("tell a closed run: %v", err)
	}

	f.put(&fakeRun{id: workflows.BudgetWorkflowID, status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING})
	if err := s.Release(ctx, ref); err != nil || f.updates[len(f.updates)-1].UpdateName != workflows.UpdateRelease {
		t.Errorf("release: %v", err)
	}
	f.answer = func(client.UpdateWorkflowOptions) (any, error) { return nil, errors.New("refused") }
	if err := s.Release(ctx, ref); err == nil || !strings.Contains(err.Error(), "give the lease of "+ref.Holder+" back") {
		t.Errorf("release refused: %v", err)
	}
	f.fail["signal"] = errors.New("down")
	if err := s.GiveBack(ctx, ref); err == nil {
		t.Error("a give-back that failed is reported done")
	}
	if err := s.Tell(ctx, ref.Holder, activities.LeaseGrant{}); err == nil {
		t.Error("an answer that failed is reported told")
	}
	f.fail["signal"] = nil
	if err := s.GiveBack(ctx, ref); err != nil {
		t.Fatal(err)
	}
	last := f.signals[len(f.signals)-1]
	if last.ID != workflows.BudgetWorkflowID || last.Name != workflows.SignalRelease || last.Arg != ref {
		t.Errorf("give back sent %+v", last)
	}
	if err := s.Tell(ctx, ref.Holder, activities.LeaseGrant{Granted: true}); err != nil {
		t.Fatal(err)
	}
	if last := f.signals[len(f.signals)-1]; last.ID != ref.Holder || last.Name != workflows.SignalBudget {
		t.Errorf("tell sent %+v", last)
	}
}

func TestClosedLeases(t *testing.T) {
	f := newFake()
	s := f.starter()
	running := f.put(&fakeRun{id: workflows.WorkflowID("running"), status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING})
	f.put(&fakeRun{id: workflows.WorkflowID("done"), status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED})
	refs := []activities.LeaseRef{
		{Holder: running.id, Run: running.runID},
		{Holder: workflows.WorkflowID("done")},
		{Holder: workflows.WorkflowID("never")},
	}
	got, err := s.Closed(context.Background(), refs)
	if err != nil || !slices.Equal(got, refs[1:]) {
		t.Errorf("closed: %+v %v", got, err)
	}
	f.fail["describe"] = errors.New("down")
	if _, err := s.Closed(context.Background(), refs); err == nil {
		t.Error("a failed describe counts as an answer")
	}
}

func TestBudgetAndLeased(t *testing.T) {
	f := newFake()
	s := f.starter()
	ctx := context.Background()
	if view, ok, err := s.Budget(ctx); err != nil || ok || len(view.Leases) != 0 {
		t.Errorf("no budget: %+v %v %v", view, ok, err)
	}
	f.put(&fakeRun{id: workflows.BudgetWorkflowID, status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
		progress: workflows.BudgetView{Limits: plan.Limits{MaxParallel: 2}, Leases: []workflows.Lease{{Node: "a"}, {Node: "b"}}}})
	view, ok, err := s.Budget(ctx)
	if err != nil || !ok || view.Limits.MaxParallel != 2 {
		t.Errorf("budget: %+v %v %v", view, ok, err)
	}
	if nodes, err := s.Leased(ctx); err != nil || !slices.Equal(nodes, []string{"a", "b"}) {
		t.Errorf("leased: %v %v", nodes, err)
	}
	f.fail["query"] = errors.New("no worker")
	if _, _, err := s.Budget(ctx); err == nil || !strings.Contains(err.Error(), "query the budget") {
		t.Errorf("query failing: %v", err)
	}
}

func TestRunningAndLatest(t *testing.T) {
	f := newFake()
	s := f.starter()
	ctx := context.Background()
	if info, err := s.Running(ctx, "node-1"); err != nil || info.Running || info.RunID != "" {
		t.Errorf("no run: %+v %v", info, err)
	}
	if info, err := s.Latest(ctx, "node-1"); err != nil || info != (activities.ShutdownInfo{}) {
		t.Errorf("no run: %+v %v", info, err)
	}
	r := f.put(&fakeRun{id: workflows.WorkflowID("node-1"), status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, progress: workflows.ShutdownReport{}})
	if info, err := s.Running(ctx, "node-1"); err != nil || !info.Running || info.RunID != r.runID {
		t.Errorf("running: %+v %v", info, err)
	}
	if info, err := s.Latest(ctx, "node-1"); err != nil || !info.Running || info.Outcome != "" {
		t.Errorf("latest running: %+v %v", info, err)
	}

	r.status = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	r.result = workflows.ShutdownReport{Outcome: plan.Degraded, NodeInstance: "inst", Converged: true, Error: "deregister failed", Total: plan.Duration(3e9)}
	info, err := s.Latest(ctx, "node-1")
	want := activities.ShutdownInfo{RunID: r.runID, Outcome: plan.Degraded, Total: plan.Duration(3e9), Instance: "inst", Converged: true, Error: "deregister failed"}
	if err != nil || info != want {
		t.Errorf("latest completed: %+v %v, want %+v", info, err, want)
	}
	if info, err := s.Running(ctx, "node-1"); err != nil || info.Running {
		t.Errorf("completed is running: %+v %v", info, err)
	}

	r.status, r.err = enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, errors.New("gone")
	if info, err := s.Latest(ctx, "node-1"); err != nil || info.Running || info.Error != "shutdown "+r.id+": gone" {
		t.Errorf("latest terminated: %+v %v", info, err)
	}
	r.status, r.err, r.result = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, nil, workflows.ShutdownReport{}
	if info, err := s.Latest(ctx, "node-1"); err != nil || info.Error != "the run ended Completed" {
		t.Errorf("latest with no outcome and no error: %+v %v", info, err)
	}

	f.fail["describe"] = errors.New("down")
	if _, err := s.Running(ctx, "node-1"); err == nil {
		t.Error("running: a failed describe reads as no run")
	}
	if _, err := s.Latest(ctx, "node-1"); err == nil {
		t.Error("latest: a failed describe reads as no run")
	}
}

func TestPollers(t *testing.T) {
	f := newFake()
	f.pollers = 2
	if n, err := f.starter().Pollers(context.Background(), "node-1"); err != nil || n != 2 {
		t.Errorf("pollers: %d %v", n, err)
	}
	f.fail["tq"] = errors.New("down")
	if _, err := f.starter().Pollers(context.Background(), "node-1"); err == nil || !strings.Contains(err.Error(), workflows.NodeTaskQueue("node-1")) {
		t.Errorf("pollers failing: %v", err)
	}
}
