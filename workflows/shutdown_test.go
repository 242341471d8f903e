package workflows

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/internal/testkit"
	"github.com/farewell-project/farewell/plan"
)

type stepFunc = func(ctx context.Context, in activities.StepInput) (activities.StepOutput, error)

// harness runs GracefulShutdown in the test environment with every activity mocked.
// Each mock dispatches to a replaceable function, so a test changes only what it needs.
type harness struct {
	t       *testing.T
	env     *testsuite.TestWorkflowEnvironment
	metrics *metricsRecorder

	mu        sync.Mutex
	steps     map[string]stepFunc
	lookup    func(activities.LookupInput) (activities.LookupOutput, error)
	verify    func(activities.ConvergenceInput) (activities.ConvergenceOutput, error)
	evict     func(activities.EvictInput) (activities.EvictOutput, error)
	acquire   func(activities.LeaseRequest) (activities.LeaseGrant, error)
	calls     map[string]int
	upserts   []temporal.SearchAttributes
	converged []bool // results of successive convergence checks; the last repeats
}

// harnessLimits is the cluster's budget of the harness's orchestrator.
var harnessLimits = plan.Limits{MaxParallel: 10}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, harnessLimits) }

// newHarnessWith is newHarness for an orchestrator whose cluster budget is limits.
func newHarnessWith(t *testing.T, limits plan.Limits) *harness {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(sdklog.NewStructuredLogger(testkit.Logger(t)))
	metrics := newMetricsRecorder()
	suite.SetMetricsHandler(metrics)
	h := &harness{t: t, env: suite.NewTestWorkflowEnvironment(), metrics: metrics, calls: map[string]int{}, steps: map[string]stepFunc{}}
	ok := func(context.Context, activities.StepInput) (activities.StepOutput, error) {
		return activities.StepOutput{Attempt: 1}, nil
	}
	for _, name := range append(plan.Builtin(), plan.Rollback, plan.Terminate) {
		h.steps[name] = ok
	}
	h.lookup = func(in activities.LookupInput) (activities.LookupOutput, error) {
		return activities.LookupOutput{Node: in.Node, State: activities.StateAlive, Members: 5}, nil
	}
	h.converged = []bool{true}
	h.verify = func(in activities.ConvergenceInput) (activities.ConvergenceOutput, error) {
		h.mu.Lock()
		c := h.converged[0]
		if len(h.converged) > 1 {
			h.converged = h.converged[1:]
		}
		h.mu.Unlock()
		out := activities.ConvergenceOutput{Converged: c, TookMS: 12, Views: map[string]string{"node-1": activities.StateLeft}}
		if !c {
			out.Pending = []string{"node-2"}
		}
		return out, nil
	}
	h.evict = func(in activities.EvictInput) (activities.EvictOutput, error) {
		return activities.EvictOutput{By: "observer", Confirmed: true}, nil
	}

	env := h.env
	// A cluster with a budget: every shutdown asks it (with none it asks nothing: see
	// TestNoBudgetNoLease).
	env.RegisterWorkflowWithOptions((&Shutdowns{Plan: plan.Default(), Limits: limits}).GracefulShutdown, workflow.RegisterOptions{Name: WorkflowName})
	env.RegisterActivity(&activities.NodeActivities{})
	env.RegisterActivity(&activities.ClusterActivities{})
	node := func(name string) stepFunc {
		return func(ctx context.Context, in activities.StepInput) (activities.StepOutput, error) {
			h.mu.Lock()
			h.calls[name]++
			f := h.steps[name]
			h.mu.Unlock()
			return f(ctx, in)
		}
	}
	env.OnActivity(nodeActs.SetGracefullyLeft, mock.Anything, mock.Anything).Return(node(plan.SetGracefullyLeft))
	env.OnActivity(nodeActs.StopHeartbeat, mock.Anything, mock.Anything).Return(node(plan.StopHeartbeat))
	env.OnActivity(nodeActs.Deregister, mock.Anything, mock.Anything).Return(node(plan.Deregister))
	env.OnActivity(nodeActs.StopServices, mock.Anything, mock.Anything).Return(node(plan.StopServices))
	env.OnActivity(nodeActs.Rollback, mock.Anything, mock.Anything).Return(node(plan.Rollback))
	env.OnActivity(nodeActs.Terminate, mock.Anything, mock.Anything).Return(node(plan.Terminate))
	env.OnActivity(clusterActs.Lookup, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.LookupInput) (activities.LookupOutput, error) {
			h.count("lookup")
			return h.lookup(in)
		})
	env.OnActivity(clusterActs.VerifyConvergence, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ConvergenceInput) (activities.ConvergenceOutput, error) {
			h.count("verify")
			return h.verify(in)
		})
	env.OnActivity(clusterActs.ForceEvict, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EvictInput) (activities.EvictOutput, error) {
			h.count("evict")
			return h.evict(in)
		})
	h.acquire = func(in activities.LeaseRequest) (activities.LeaseGrant, error) {
		return activities.LeaseGrant{Granted: true}, nil
	}
	env.OnActivity(clusterActs.AcquireLease, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.LeaseRequest) (activities.LeaseGrant, error) {
			h.count("acquire")
			if in.Notify != "" {
				h.count("ask-by-signal")
			}
			// The budget's answer at once, or Asked: it answers by signal (the test's own
			// callbacks do), or never.
			g, err := h.acquire(in)
			g.Holder = in.Holder
			return g, err
		})
	env.OnActivity(clusterActs.ReleaseLease, mock.Anything, mock.Anything).Return(
		func(_ context.Context, ref activities.LeaseRef) error {
			h.count("release")
			h.count("release-activity")
			return nil
		})
	// A lease that came by signal goes back by signal: from a local activity, or (runs
	// before versionGiveBackByActivity) from the workflow.
	env.OnActivity(clusterActs.GiveBackLease, mock.Anything, mock.Anything).Return(
		func(_ context.Context, ref activities.LeaseRef) error {
			h.count("release")
			h.count("give-back")
			return nil
		})
	env.OnSignalExternalWorkflow(mock.Anything, BudgetWorkflowID, "", SignalRelease, mock.Anything).Return(
		func(_, _, _, _ string, _ any) error {
			h.count("release")
			return nil
		})
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.upserts = append(h.upserts, args.Get(0).(temporal.SearchAttributes))
	}).Return(nil)
	return h
}

func (h *harness) count(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls[name]++
}

func (h *harness) called(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[name]
}

func (h *harness) set(step string, f stepFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.steps[step] = f
}

// run executes the workflow and returns its report.
func (h *harness) run(req ShutdownRequest) *ShutdownReport {
	h.t.Helper()
	if req.Node == "" {
		req.Node = "node-3"
	}
	if req.Plan == nil {
		p := plan.Default()
		req.Plan = &p
	}
	h.env.ExecuteWorkflow(WorkflowName, req)
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		h.t.Fatalf("workflow failed: %v", err)
	}
	var r ShutdownReport
	if err := h.env.GetWorkflowResult(&r); err != nil {
		h.t.Fatal(err)
	}
	return &r
}

// fails makes a step fail as NodeActivities do: the attempt rides in the error's details,
// the type and retryability are kept.
func fails(err error) stepFunc {
	return func(ctx context.Context, _ activities.StepInput) (activities.StepOutput, error) {
		msg, typ, nonRetryable := err.Error(), "StepFailed", false
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			msg, typ, nonRetryable = appErr.Message(), appErr.Type(), appErr.NonRetryable()
		}
		return activities.StepOutput{}, temporal.NewApplicationErrorWithOptions(msg, typ, temporal.ApplicationErrorOptions{
			NonRetryable: nonRetryable,
			Details:      []any{activities.Progress{Attempt: activity.GetInfo(ctx).Attempt}},
		})
	}
}

// timesOut makes a step time out; the attempt is in the last heartbeat, as NodeActivities
// record it when they start (a step never picked up has none).
func timesOut(typ enumspb.TimeoutType) stepFunc {
	return func(ctx context.Context, _ activities.StepInput) (activities.StepOutput, error) {
		if typ == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START {
			return activities.StepOutput{}, temporal.NewTimeoutError(typ, nil)
		}
		return activities.StepOutput{}, temporal.NewTimeoutError(typ, nil, activities.Progress{Attempt: activity.GetInfo(ctx).Attempt})
	}
}

func planWith(mod func(*plan.Plan)) *plan.Plan {
	p := plan.Default()
	mod(&p)
	return &p
}

func policy(step string, onFailure plan.Policy) *plan.Plan {
	return planWith(func(p *plan.Plan) {
		for i := range p.Steps {
			if p.Steps[i].Name == step {
				p.Steps[i].OnFailure = onFailure
			}
		}
	})
}

func statuses(r *ShutdownReport) map[string]plan.StepStatus {
	out := map[string]plan.StepStatus{}
	for _, s := range r.Steps {
		out[s.Name] = s.Status
	}
	return out
}

func TestAllStepsSucceed(t *testing.T) {
	h := newHarness(t)
	r := h.run(ShutdownRequest{Reason: "maintenance", RequestedBy: "test"})
	if r.Outcome != plan.Graceful || !r.Converged || r.Evicted || r.RolledBack {
		t.Fatalf("report %+v", r)
	}
	for _, s := range r.Steps {
		if s.Status != plan.StepSucceeded || s.Attempts != 1 {
			t.Errorf("step %s: %s after %d attempts", s.Name, s.Status, s.Attempts)
		}
	}
	if r.Node != "node-3" || r.Reason != "maintenance" || r.RequestedBy != "test" || r.WorkflowID == "" {
		t.Errorf("report identity %+v", r)
	}
	if h.called("evict") != 0 || h.called(plan.Terminate) != 0 {
		t.Error("a graceful shutdown evicted the node")
	}
	// Search attributes: the node at once (not set at the start here), the outcome at
	// the end; a run that ends within stepColumnAfter never shows a step in between.
	node, steps, outcome := h.listed()
	if node != "node-3" || outcome != "graceful" {
		t.Errorf("search attributes: node %q outcome %q", node, outcome)
	}
	if want := []string{"done"}; !slices.Equal(steps, want) {
		t.Errorf("FarewellStep went %v, want %v", steps, want)
	}
}

// listed reads the run's search attributes as they were upserted: the node, every
// value FarewellStep took, and the outcome.
func (h *harness) listed() (node string, steps []string, outcome string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, sa := range h.upserts {
		if v, ok := sa.GetKeyword(NodeKey); ok {
			node = v
		}
		if v, ok := sa.GetKeyword(StepKey); ok {
			steps = append(steps, v)
		}
		if v, ok := sa.GetKeyword(OutcomeKey); ok {
			outcome = v
		}
	}
	return node, steps, outcome
}

// listedHarness is a harness whose run, of version v, a starter put in the list with
// its node (as starters do).
func listedHarness(t *testing.T, v workflow.Version) *harness {
	h := newHarness(t)
	h.atVersion(v)
	if err := h.env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(NodeKey.ValueSet("node-3"))); err != nil {
		t.Fatal(err)
	}
	return h
}

// A run still going after stepColumnAfter shows the step it is at in the list's
// FarewellStep column, then every step as it starts; a node named at the start is not
// upserted again.
func TestStepColumnFollowsARunPastItsFirstSecond(t *testing.T) {
	for _, version := range []workflow.Version{versionStepColumn, versionGiveBackByActivity} {
		t.Run(versionName(version), func(t *testing.T) {
			h := listedHarness(t, version)
			// deregister's first attempt fails, its second comes 2 s later.
			p := plan.Default()
			p.Steps[p.Index(plan.Deregister)].Backoff = 2 * time.Second
			h.steps[plan.Deregister] = func(_ context.Context, in activities.StepInput) (activities.StepOutput, error) {
				if h.called(plan.Deregister) == 1 {
					return activities.StepOutput{}, errors.New("not yet")
				}
				return activities.StepOutput{Attempt: 2}, nil
			}
			r := h.run(ShutdownRequest{Plan: &p})
			node, steps, outcome := h.listed()
			if r.Outcome != plan.Graceful || outcome != "graceful" || node != "" {
				t.Errorf("outcome %s (listed %q), node upserted %q; want graceful, and the node not upserted again", r.Outcome, outcome, node)
			}
			want := []string{"deregister", "stop-services", "convergence", "done"}
			if !slices.Equal(steps, want) {
				t.Errorf("FarewellStep went %v, want %v", steps, want)
			}
		})
	}
}

// A cancel the run refuses (after deregister) does not stop the column from following
// it: stop-services, retried 2 s later, is shown once the run is a second old.
func TestStepColumnFollowsARunWhoseCancelWasRefused(t *testing.T) {
	h := newHarness(t)
	p := plan.Default()
	p.Steps[p.Index(plan.StopServices)].Backoff = 2 * time.Second
	h.set(plan.StopServices, func(context.Context, activities.StepInput) (activities.StepOutput, error) {
		if h.called(plan.StopServices) == 1 {
			h.env.CancelWorkflow() // the operator cancels while this step runs
			return activities.StepOutput{}, errors.New("not yet")
		}
		return activities.StepOutput{Attempt: 2}, nil
	})
	r := h.run(ShutdownRequest{Plan: &p})
	_, steps, _ := h.listed()
	if r.Outcome != plan.Graceful {
		t.Errorf("outcome %s: want graceful (the cancel refused)", r.Outcome)
	}
	if want := []string{"stop-services", "convergence", "done"}; !slices.Equal(steps, want) {
		t.Errorf("FarewellStep went %v, want %v", steps, want)
	}
}

// A run that waits for the budget shows "budget" in the list's column once it has
// waited stepColumnAfter; granted, it shows its steps only if they last as long.
func TestStepColumnShowsAWaitForTheBudget(t *testing.T) {
	for _, version := range []workflow.Version{versionStepColumn, versionGiveBackByActivity} {
		t.Run(versionName(version), func(t *testing.T) {
			h := listedHarness(t, version)
			var holder string
			h.acquire = func(in activities.LeaseRequest) (activities.LeaseGrant, error) {
				h.mu.Lock()
				holder = in.Holder
				h.mu.Unlock()
				return activities.LeaseGrant{Asked: true}, nil // answered 3 s later
			}
			h.env.RegisterDelayedCallback(func() {
				h.env.SignalWorkflow(SignalBudget, activities.LeaseGrant{Holder: holder, Granted: true})
			}, 3*time.Second)
			r := h.run(ShutdownRequest{})
			node, steps, outcome := h.listed()
			if r.Outcome != plan.Graceful || outcome != "graceful" || node != "" {
				t.Errorf("outcome %s (listed %q), node upserted %q; want graceful, and the node not upserted again", r.Outcome, outcome, node)
			}
			want := []string{"budget", "done"}
			if !slices.Equal(steps, want) {
				t.Errorf("FarewellStep went %v, want %v", steps, want)
			}
		})
	}
}

func TestFailingStepsNeverBlockTheNext(t *testing.T) {
	retryable := errors.New("boom")
	wrongNode := temporal.NewNonRetryableApplicationError("wrong node", activities.ErrTypeWrongNode, nil)
	tests := []struct {
		step     string
		fault    stepFunc
		status   plan.StepStatus
		attempts int
		outcome  plan.Outcome
	}{
		{plan.SetGracefullyLeft, fails(retryable), plan.StepFailed, 2, plan.Degraded},
		{plan.SetGracefullyLeft, timesOut(enumspb.TIMEOUT_TYPE_START_TO_CLOSE), plan.StepTimedOut, 2, plan.Degraded},
		{plan.SetGracefullyLeft, fails(wrongNode), plan.StepFailed, 1, plan.Degraded},
		{plan.StopHeartbeat, fails(retryable), plan.StepFailed, 2, plan.Degraded},
		{plan.StopHeartbeat, timesOut(enumspb.TIMEOUT_TYPE_START_TO_CLOSE), plan.StepTimedOut, 2, plan.Degraded},
		{plan.Deregister, fails(retryable), plan.StepFailed, 2, plan.Forced},
		{plan.Deregister, timesOut(enumspb.TIMEOUT_TYPE_START_TO_CLOSE), plan.StepTimedOut, 2, plan.Forced},
		{plan.Deregister, fails(temporal.NewNonRetryableApplicationError("leave not confirmed", activities.ErrTypeLeaveFailed, nil)), plan.StepFailed, 1, plan.Forced},
		// Out of the cluster, but something may still serve: terminated, not evicted.
		{plan.StopServices, fails(retryable), plan.StepFailed, 2, plan.Forced},
		{plan.StopServices, timesOut(enumspb.TIMEOUT_TYPE_START_TO_CLOSE), plan.StepTimedOut, 2, plan.Forced},
	}
	for _, tt := range tests {
		t.Run(tt.step+"/"+string(tt.status), func(t *testing.T) {
			h := newHarness(t)
			h.set(tt.step, tt.fault)
			r := h.run(ShutdownRequest{})
			res, _ := r.Step(tt.step)
			if res.Status != tt.status || res.Attempts != tt.attempts || res.Error == "" {
				t.Errorf("%s: %s after %d attempts (%q), want %s after %d", tt.step, res.Status, res.Attempts, res.Error, tt.status, tt.attempts)
			}
			for _, other := range r.Steps {
				if other.Name != tt.step && other.Status != plan.StepSucceeded {
					t.Errorf("step %s %s: a failure of %s blocked it", other.Name, other.Status, tt.step)
				}
			}
			if h.called(tt.step) != tt.attempts {
				t.Errorf("%s ran %d times, want %d", tt.step, h.called(tt.step), tt.attempts)
			}
			if r.Outcome != tt.outcome {
				t.Errorf("outcome %s, want %s", r.Outcome, tt.outcome)
			}
			switch {
			case tt.outcome == plan.Forced && tt.step == plan.StopServices:
				if !r.Terminated || r.Evicted || h.called("evict") != 0 || !strings.Contains(r.Error, "terminated") {
					t.Errorf("services not stopped, node not terminated: %+v", r)
				}
			case tt.outcome == plan.Forced:
				if !r.Evicted || !r.Terminated || h.called("evict") != 1 || r.ForceReason == "" {
					t.Errorf("forced without eviction: %+v", r)
				}
			case h.called(plan.Terminate) != 0:
				t.Errorf("a node that left with its services stopped was terminated")
			}
		})
	}
}

func TestAbortBeforeDeregisterRollsBack(t *testing.T) {
	h := newHarness(t)
	h.set(plan.StopHeartbeat, fails(errors.New("cannot stop")))
	r := h.run(ShutdownRequest{Plan: policy(plan.StopHeartbeat, plan.Abort)})
	if r.Outcome != plan.Aborted || !r.RolledBack || r.Evicted {
		t.Fatalf("report %+v", r)
	}
	st := statuses(r)
	if st[plan.SetGracefullyLeft] != plan.StepSucceeded || st[plan.StopHeartbeat] != plan.StepFailed ||
		st[plan.Deregister] != plan.StepSkipped || st[plan.StopServices] != plan.StepSkipped {
		t.Errorf("steps %v", st)
	}
	if h.called(plan.Rollback) != 1 || h.called(plan.Deregister) != 0 {
		t.Errorf("rollback ran %d times, deregister %d", h.called(plan.Rollback), h.called(plan.Deregister))
	}
}

func TestAbortAfterDeregisterActsAsContinue(t *testing.T) {
	h := newHarness(t)
	h.set(plan.StopServices, fails(errors.New("stuck")))
	r := h.run(ShutdownRequest{Plan: policy(plan.StopServices, plan.Abort)})
	if r.Outcome != plan.Forced || !r.Terminated || r.RolledBack || h.called(plan.Rollback) != 0 {
		t.Fatalf("report %+v", r)
	}
	res, _ := r.Step(plan.StopServices)
	if !strings.Contains(res.Note, "acts as continue") {
		t.Errorf("note %q", res.Note)
	}
}

func TestFailedRollbackForcesTheNodeOut(t *testing.T) {
	h := newHarness(t)
	h.set(plan.SetGracefullyLeft, fails(errors.New("gossip down")))
	h.set(plan.Rollback, fails(errors.New("still down")))
	r := h.run(ShutdownRequest{Plan: policy(plan.SetGracefullyLeft, plan.Abort)})
	if r.Outcome != plan.Forced || r.RolledBack || !r.Evicted {
		t.Fatalf("a failed rollback left the node half-stopped: %+v", r)
	}
}

func TestForcePolicySkipsTheRestAndEvicts(t *testing.T) {
	h := newHarness(t)
	h.set(plan.SetGracefullyLeft, timesOut(enumspb.TIMEOUT_TYPE_START_TO_CLOSE))
	r := h.run(ShutdownRequest{Plan: policy(plan.SetGracefullyLeft, plan.Force)})
	st := statuses(r)
	if r.Outcome != plan.Forced || st[plan.StopHeartbeat] != plan.StepSkipped || st[plan.StopServices] != plan.StepSkipped {
		t.Fatalf("outcome %s, steps %v", r.Outcome, st)
	}
	if !strings.Contains(r.ForceReason, "policy force") || !r.Terminated {
		t.Errorf("force reason %q, terminated %v", r.ForceReason, r.Terminated)
	}
}

func TestForceRequestedSkipsGracefulSteps(t *testing.T) {
	h := newHarness(t)
	r := h.run(ShutdownRequest{Force: true})
	for _, s := range r.Steps {
		if s.Status != plan.StepSkipped {
			t.Errorf("%s %s with force requested", s.Name, s.Status)
		}
	}
	if r.Outcome != plan.Forced {
		t.Errorf("outcome %s", r.Outcome)
	}
}

func TestConvergenceNotReachedForcesEviction(t *testing.T) {
	h := newHarness(t)
	h.converged = []bool{false, true}
	r := h.run(ShutdownRequest{})
	if r.Outcome != plan.Forced || !r.Evicted || h.called("verify") != 2 {
		t.Fatalf("outcome %s evicted %v verify calls %d", r.Outcome, r.Evicted, h.called("verify"))
	}
	if !strings.Contains(r.ForceReason, "node-2") {
		t.Errorf("force reason %q does not name the pending member", r.ForceReason)
	}
	// The result says why, and who evicted it, in words.
	if r.EvictedBy != "observer" || !strings.HasPrefix(r.Why, "forced out because ") || !strings.Contains(r.Why, "evicted by observer") {
		t.Errorf("evicted by %q, why %q", r.EvictedBy, r.Why)
	}
	lines := strings.Join(r.StepLines(), "\n")
	if !strings.Contains(lines, "forced because ") || !strings.Contains(lines, "why: forced out") {
		t.Errorf("the memo's lines lack the force:\n%s", lines)
	}
}

func TestForceDisabled(t *testing.T) {
	noForce := planWith(func(p *plan.Plan) { p.Force = false })
	leaveFailed := fails(temporal.NewNonRetryableApplicationError("leave not confirmed; memberlist shut down anyway", activities.ErrTypeLeaveFailed, nil))
	t.Run("reversible: rolled back", func(t *testing.T) {
		h := newHarness(t)
		h.set(plan.Deregister, fails(errors.New("leave failed")))
		r := h.run(ShutdownRequest{Plan: noForce})
		if r.Outcome != plan.Aborted || !r.RolledBack || h.called("evict") != 0 || !strings.Contains(r.Error, "force is disabled") {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("memberlist down: out anyway", func(t *testing.T) {
		h := newHarness(t)
		h.set(plan.Deregister, leaveFailed)
		r := h.run(ShutdownRequest{Plan: noForce})
		if r.Outcome != plan.Degraded || r.Evicted || h.called("evict") != 0 || h.called(plan.Rollback) != 0 {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("memberlist down, not out, no force: failed", func(t *testing.T) {
		h := newHarness(t)
		h.set(plan.Deregister, leaveFailed)
		h.converged = []bool{false}
		r := h.run(ShutdownRequest{Plan: noForce})
		if r.Outcome != plan.Failed || h.called("evict") != 0 || !strings.Contains(r.Error, "force disabled") {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("rollback fails: out anyway or failed", func(t *testing.T) {
		h := newHarness(t)
		h.set(plan.StopHeartbeat, fails(errors.New("cannot stop")))
		h.set(plan.Rollback, fails(errors.New("still broken")))
		h.converged = []bool{false}
		r := h.run(ShutdownRequest{Plan: planWith(func(p *plan.Plan) {
			p.Force = false
			p.Steps[1].OnFailure = plan.Abort
		})})
		if r.Outcome != plan.Failed || h.called("evict") != 0 || !strings.Contains(r.Error, "rollback failed") {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("eviction does not converge", func(t *testing.T) {
		h := newHarness(t)
		h.set(plan.Deregister, fails(errors.New("leave failed")))
		h.converged = []bool{false}
		r := h.run(ShutdownRequest{})
		if r.Outcome != plan.Failed || !r.Evicted || len(r.Pending) == 0 {
			t.Fatalf("report %+v", r)
		}
	})
}

func TestLookupState(t *testing.T) {
	lookup := func(st string) func(activities.LookupInput) (activities.LookupOutput, error) {
		return func(in activities.LookupInput) (activities.LookupOutput, error) {
			return activities.LookupOutput{Node: in.Node, Instance: "p1", State: st}, nil
		}
	}
	t.Run("dead is not out: the steps run", func(t *testing.T) {
		h := newHarness(t)
		h.lookup = lookup(activities.StateDead)
		r := h.run(ShutdownRequest{})
		if h.called(plan.SetGracefullyLeft) != 1 || r.Outcome != plan.Graceful {
			t.Fatalf("outcome %s, steps %v", r.Outcome, statuses(r))
		}
	})
	t.Run("left is out: nothing to run", func(t *testing.T) {
		h := newHarness(t)
		h.lookup = lookup(activities.StateLeft)
		r := h.run(ShutdownRequest{})
		if h.called(plan.SetGracefullyLeft) != 0 || r.Outcome != plan.Degraded || h.called("evict") != 0 {
			t.Fatalf("outcome %s, steps %v", r.Outcome, statuses(r))
		}
	})
	t.Run("force requested holds for a node already out", func(t *testing.T) {
		h := newHarness(t)
		h.lookup = lookup(activities.StateLeft)
		r := h.run(ShutdownRequest{Force: true})
		if h.called("evict") != 1 || r.Outcome != plan.Forced {
			t.Fatalf("outcome %s, evictions %d", r.Outcome, h.called("evict"))
		}
	})
	t.Run("steps carry the instance looked up", func(t *testing.T) {
		h := newHarness(t)
		h.lookup = lookup(activities.StateAlive)
		var got string
		h.set(plan.Deregister, func(_ context.Context, in activities.StepInput) (activities.StepOutput, error) {
			got = in.Instance
			return activities.StepOutput{Attempt: 1}, nil
		})
		r := h.run(ShutdownRequest{})
		if got != "p1" || r.NodeInstance != "p1" {
			t.Fatalf("step saw instance %q, report %q", got, r.NodeInstance)
		}
	})
	t.Run("a retry after a restart runs every step", func(t *testing.T) {
		h := newHarness(t)
		h.lookup = lookup(activities.StateAlive)
		r := h.run(ShutdownRequest{SkipSucceeded: []string{plan.StopHeartbeat}, RetryOf: "r0", RetryInstance: "p0"})
		if h.called(plan.StopHeartbeat) != 1 || r.Outcome != plan.Graceful {
			t.Fatalf("stop-heartbeat ran %d times, outcome %s", h.called(plan.StopHeartbeat), r.Outcome)
		}
	})
	t.Run("a retry of the same process skips what succeeded", func(t *testing.T) {
		h := newHarness(t)
		h.lookup = lookup(activities.StateAlive)
		r := h.run(ShutdownRequest{SkipSucceeded: []string{plan.StopHeartbeat}, RetryOf: "r0", RetryInstance: "p1"})
		st, _ := r.Step(plan.StopHeartbeat)
		if h.called(plan.StopHeartbeat) != 0 || st.Status != plan.StepSucceeded || !strings.Contains(st.Note, "earlier run (r0)") {
			t.Fatalf("stop-heartbeat ran %d times: %+v", h.called(plan.StopHeartbeat), st)
		}
	})
}

func TestWorkerGoneSkipsNodeStepsAndForces(t *testing.T) {
	h := newHarness(t)
	h.set(plan.SetGracefullyLeft, timesOut(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START))
	r := h.run(ShutdownRequest{})
	res, _ := r.Step(plan.SetGracefullyLeft)
	if res.Status != plan.StepTimedOut || res.Attempts != 0 || !strings.Contains(res.Error, "schedule-to-start") {
		t.Errorf("first step %+v", res)
	}
	for _, name := range plan.Builtin()[1:] {
		if h.called(name) != 0 {
			t.Errorf("%s was scheduled although the worker is gone", name)
		}
	}
	if r.Outcome != plan.Forced || !r.Evicted || r.Terminated || h.called(plan.Terminate) != 0 {
		t.Fatalf("report %+v", r)
	}
}

func TestUnknownNodeFailsTheWorkflow(t *testing.T) {
	h := newHarness(t)
	h.lookup = func(in activities.LookupInput) (activities.LookupOutput, error) {
		return activities.LookupOutput{}, temporal.NewNonRetryableApplicationError(
			`unknown node "node-9": no member of that name in the cluster (nodes: node-1)`, activities.ErrTypeUnknownNode, nil)
	}
	h.env.ExecuteWorkflow(GracefulShutdown, ShutdownRequest{Node: "node-9"})
	err := h.env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeUnknownNode || !appErr.NonRetryable() ||
		!strings.Contains(appErr.Message(), `"node-9"`) {
		t.Fatalf("workflow error %v", err)
	}
	if h.called("lookup") != 1 || h.called(plan.SetGracefullyLeft) != 0 {
		t.Error("unknown node was retried or stepped on")
	}
}

func TestBadPlanIsRefused(t *testing.T) {
	h := newHarness(t)
	bad := planWith(func(p *plan.Plan) { p.Steps[0].MaxAttempts = 0; p.Steps[1].OnFailure = "explode" })
	h.env.ExecuteWorkflow(GracefulShutdown, ShutdownRequest{Node: "node-3", Plan: bad})
	err := h.env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "max_attempts") || !strings.Contains(err.Error(), "explode") {
		t.Fatalf("workflow error %v", err)
	}
}

// A request with no plan runs the orchestrator's; an override changes only what it sets.
func TestTheOrchestratorOwnsThePlan(t *testing.T) {
	orchestrator := plan.Default()
	orchestrator.Steps[orchestrator.Index(plan.StopHeartbeat)].OnFailure = plan.Abort
	orchestrator.Steps[orchestrator.Index(plan.StopHeartbeat)].MaxAttempts = 3
	run := func(t *testing.T, req ShutdownRequest) (*harness, ShutdownReport) {
		h := newHarness(t)
		h.set(plan.StopHeartbeat, fails(errors.New("cannot stop")))
		h.env.ExecuteWorkflow((&Shutdowns{Plan: orchestrator}).GracefulShutdown, req)
		var r ShutdownReport
		if err := h.env.GetWorkflowResult(&r); err != nil {
			t.Fatal(err)
		}
		return h, r
	}
	t.Run("no plan: the orchestrator's", func(t *testing.T) {
		h, r := run(t, ShutdownRequest{Node: "node-3"})
		if r.Outcome != plan.Aborted || h.called(plan.StopHeartbeat) != 3 {
			t.Fatalf("outcome %s after %d attempts, want aborted after 3 (the orchestrator's plan)", r.Outcome, h.called(plan.StopHeartbeat))
		}
	})
	t.Run("an override keeps the rest", func(t *testing.T) {
		cont := plan.Continue
		h, r := run(t, ShutdownRequest{Node: "node-3", Override: &plan.Override{Steps: map[string]plan.StepOverride{plan.StopHeartbeat: {OnFailure: &cont}}}})
		if r.Outcome != plan.Degraded || h.called(plan.StopHeartbeat) != 3 {
			t.Fatalf("outcome %s after %d attempts, want degraded after 3", r.Outcome, h.called(plan.StopHeartbeat))
		}
	})
	t.Run("a bad override is refused", func(t *testing.T) {
		zero := 0
		h := newHarness(t)
		h.env.ExecuteWorkflow((&Shutdowns{Plan: orchestrator}).GracefulShutdown, ShutdownRequest{Node: "node-3",
			Override: &plan.Override{Steps: map[string]plan.StepOverride{plan.Deregister: {MaxAttempts: &zero}}}})
		if err := h.env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "steps.deregister.max_attempts") {
			t.Fatalf("workflow error %v", err)
		}
	})
}

func TestProgressQueryMidFlow(t *testing.T) {
	h := newHarness(t)
	var mid ShutdownReport
	h.set(plan.Deregister, func(ctx context.Context, _ activities.StepInput) (activities.StepOutput, error) {
		v, err := h.env.QueryWorkflow(QueryProgress)
		if err != nil {
			t.Errorf("query: %v", err)
		} else if err := v.Get(&mid); err != nil {
			t.Errorf("decode: %v", err)
		}
		return activities.StepOutput{Attempt: 1}, nil
	})
	r := h.run(ShutdownRequest{})
	st := statuses(&mid)
	if st[plan.SetGracefullyLeft] != plan.StepSucceeded || st[plan.Deregister] != plan.StepRunning ||
		st[plan.StopServices] != plan.StepPending || mid.Outcome != "" || mid.CurrentStep() != plan.Deregister {
		t.Errorf("progress mid-flow: %v outcome %q", st, mid.Outcome)
	}
	if r.Outcome != plan.Graceful {
		t.Errorf("outcome %s", r.Outcome)
	}
}

func TestCancel(t *testing.T) {
	t.Run("before deregister compensates", func(t *testing.T) {
		h := newHarness(t)
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		h.set(plan.StopHeartbeat, func(ctx context.Context, _ activities.StepInput) (activities.StepOutput, error) {
			h.env.CancelWorkflow() // the operator cancels while this step runs
			select {
			case <-release:
			case <-ctx.Done():
			}
			return activities.StepOutput{Attempt: 1}, ctx.Err()
		})
		r := h.run(ShutdownRequest{})
		if r.Outcome != plan.Aborted || !r.RolledBack || h.called(plan.Deregister) != 0 {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("after deregister is refused", func(t *testing.T) {
		h := newHarness(t)
		h.set(plan.StopServices, func(ctx context.Context, _ activities.StepInput) (activities.StepOutput, error) {
			h.env.CancelWorkflow() // the operator cancels while this step runs
			return activities.StepOutput{Attempt: 1}, nil
		})
		r := h.run(ShutdownRequest{})
		if r.Outcome != plan.Graceful || r.RolledBack || h.called(plan.Rollback) != 0 {
			t.Fatalf("report %+v", r)
		}
	})
}

func TestCancelDuringTheForcedPathIsRefused(t *testing.T) {
	h := newHarness(t)
	h.set(plan.SetGracefullyLeft, timesOut(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START))
	h.evict = func(in activities.EvictInput) (activities.EvictOutput, error) {
		h.env.CancelWorkflow() // the operator cancels while the eviction runs
		return activities.EvictOutput{By: "observer", Confirmed: true}, nil
	}
	r := h.run(ShutdownRequest{})
	if r.Outcome != plan.Forced || !r.Evicted || !r.Converged {
		t.Fatalf("a cancel during the eviction broke it: %+v", r)
	}
}

func TestAbortBeforeAnyChangeNeedsNoRollback(t *testing.T) {
	h := newHarness(t)
	h.set(plan.SetGracefullyLeft, timesOut(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START))
	r := h.run(ShutdownRequest{Plan: planWith(func(p *plan.Plan) { p.Force = false })})
	if r.Outcome != plan.Aborted || h.called(plan.Rollback) != 0 || h.called("evict") != 0 {
		t.Fatalf("report %+v, rollbacks %d", r, h.called(plan.Rollback))
	}
}

type updateResult struct {
	rejected, completed error
	accepted            bool
}

func (u *updateResult) callbacks() *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{
		OnAccept:   func() { u.accepted = true },
		OnReject:   func(err error) { u.rejected = err },
		OnComplete: func(_ any, err error) { u.completed = err },
	}
}

// whileFirstStepRuns holds set-gracefully-left running until send has sent its updates:
// the callback looks again every millisecond of the test's clock until the step runs.
func (h *harness) whileFirstStepRuns(send func()) {
	release := make(chan struct{})
	var running atomic.Bool
	h.set(plan.SetGracefullyLeft, func(context.Context, activities.StepInput) (activities.StepOutput, error) {
		running.Store(true)
		<-release
		return activities.StepOutput{Attempt: 1}, nil
	})
	var steer func()
	steer = func() {
		if !running.Load() {
			h.env.RegisterDelayedCallback(steer, time.Millisecond)
			return
		}
		send()
		close(release)
	}
	h.env.RegisterDelayedCallback(steer, time.Millisecond)
}

func TestUpdates(t *testing.T) {
	t.Run("skip-step and extend-timeout, unknown step rejected", func(t *testing.T) {
		h := newHarness(t)
		var skip, extend, unknown, started updateResult
		var deregisterTimeout time.Duration
		h.set(plan.Deregister, func(ctx context.Context, _ activities.StepInput) (activities.StepOutput, error) {
			deregisterTimeout = activity.GetInfo(ctx).StartToCloseTimeout
			return activities.StepOutput{Attempt: 1}, nil
		})
		h.whileFirstStepRuns(func() {
			h.env.UpdateWorkflow(UpdateSkipStep, "1", skip.callbacks(), SkipStepRequest{Step: plan.StopHeartbeat, Reason: "test"})
			h.env.UpdateWorkflow(UpdateExtendTimeout, "2", extend.callbacks(), ExtendTimeoutRequest{Step: plan.Deregister, StartToClose: plan.Duration(time.Minute)})
			h.env.UpdateWorkflow(UpdateSkipStep, "3", unknown.callbacks(), SkipStepRequest{Step: "say-goodbye"})
			h.env.UpdateWorkflow(UpdateSkipStep, "4", started.callbacks(), SkipStepRequest{Step: plan.SetGracefullyLeft})
		})
		r := h.run(ShutdownRequest{})
		if !skip.accepted || !extend.accepted {
			t.Fatalf("updates not accepted: skip %v extend %v", skip.rejected, extend.rejected)
		}
		if unknown.rejected == nil || !strings.Contains(unknown.rejected.Error(), "say-goodbye") {
			t.Errorf("unknown step: %v", unknown.rejected)
		}
		if started.rejected == nil || !strings.Contains(started.rejected.Error(), "already running") {
			t.Errorf("running step: %v", started.rejected)
		}
		res, _ := r.Step(plan.StopHeartbeat)
		if res.Status != plan.StepSkipped || h.called(plan.StopHeartbeat) != 0 || r.Outcome != plan.Degraded ||
			!strings.Contains(res.Note, "skipped by the operator: test") {
			t.Errorf("skipped step %+v, outcome %s", res, r.Outcome)
		}
		if deregisterTimeout != time.Minute {
			t.Errorf("deregister ran with start-to-close %s, want the extended 1m", deregisterTimeout)
		}
	})
	t.Run("force-now cuts the running step short", func(t *testing.T) {
		h := newHarness(t)
		var force updateResult
		h.set(plan.SetGracefullyLeft, func(ctx context.Context, _ activities.StepInput) (activities.StepOutput, error) {
			<-ctx.Done() // hangs until cancelled
			return activities.StepOutput{}, ctx.Err()
		})
		h.env.RegisterDelayedCallback(func() {
			h.env.UpdateWorkflow(UpdateForceNow, "f", force.callbacks(), ForceNowRequest{Reason: "wedged"})
		}, time.Millisecond)
		r := h.run(ShutdownRequest{})
		if !force.accepted || r.Outcome != plan.Forced || !strings.Contains(r.ForceReason, "force-now") {
			t.Fatalf("force-now: accepted %v outcome %s reason %q", force.accepted, r.Outcome, r.ForceReason)
		}
		if h.called(plan.Deregister) != 0 {
			t.Error("graceful steps ran after force-now")
		}
	})
}

func TestMarkdownTable(t *testing.T) {
	h := newHarness(t)
	h.set(plan.StopHeartbeat, fails(errors.New("boom | bang")))
	r := h.run(ShutdownRequest{})
	md := r.Markdown(plan.Default())
	for _, want := range []string{"| 2/4 | stop-heartbeat | ✗ failed | 2 |", "**Why**: the node left without an eviction, though stop-heartbeat failed", `boom \| bang`, "**Outcome: degraded**"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// The rules of the fault matrix, as the workflow drives them.
func TestTheProcessTheRunActsOn(t *testing.T) {
	alive := func(in activities.LookupInput) (activities.LookupOutput, error) {
		return activities.LookupOutput{Node: in.Node, Instance: "p1", State: activities.StateAlive}, nil
	}
	gone := fails(temporal.NewNonRetryableApplicationError("process p1 of node-3 is gone", activities.ErrTypeProcessGone, nil))
	t.Run("a newer process answers: gone, counted out, never touched", func(t *testing.T) {
		h := newHarness(t)
		h.lookup = alive
		h.set(plan.SetGracefullyLeft, gone)
		r := h.run(ShutdownRequest{})
		if r.Outcome != plan.Degraded || r.Gone == "" || h.called("evict") != 0 || h.called(plan.Terminate) != 0 ||
			h.called(plan.StopHeartbeat) != 0 {
			t.Fatalf("outcome %s, gone %q, evictions %d, terminations %d", r.Outcome, r.Gone, h.called("evict"), h.called(plan.Terminate))
		}
	})
	t.Run("eviction and convergence name the process", func(t *testing.T) {
		h := newHarness(t)
		h.lookup = alive
		h.set(plan.Deregister, fails(errors.New("leave failed")))
		var verified activities.ConvergenceInput
		var evictIn activities.EvictInput
		h.evict = func(in activities.EvictInput) (activities.EvictOutput, error) {
			evictIn = in
			return activities.EvictOutput{Confirmed: true}, nil
		}
		h.verify = func(in activities.ConvergenceInput) (activities.ConvergenceOutput, error) {
			verified = in
			return activities.ConvergenceOutput{Converged: true, Status: "converged"}, nil
		}
		r := h.run(ShutdownRequest{})
		if r.Outcome != plan.Forced || evictIn.Instance != "p1" || verified.Instance != "p1" || verified.StrictLeft {
			t.Fatalf("outcome %s, evicted %+v, verified %+v", r.Outcome, evictIn, verified)
		}
	})
	t.Run("an eviction nobody confirmed does not count", func(t *testing.T) {
		h := newHarness(t)
		h.set(plan.SetGracefullyLeft, timesOut(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START)) // worker gone: no termination
		h.evict = func(activities.EvictInput) (activities.EvictOutput, error) { return activities.EvictOutput{}, nil }
		r := h.run(ShutdownRequest{})
		if r.Outcome != plan.Failed || r.Evicted || !strings.Contains(r.Error, "not confirmed") {
			t.Fatalf("outcome %s, evicted %v: %s", r.Outcome, r.Evicted, r.Error)
		}
	})
	t.Run("too few answers: out, but unverified", func(t *testing.T) {
		h := newHarness(t)
		h.verify = func(activities.ConvergenceInput) (activities.ConvergenceOutput, error) {
			return activities.ConvergenceOutput{Status: "unverified", Answered: 1, Needed: 2}, nil
		}
		r := h.run(ShutdownRequest{})
		if r.Outcome != plan.Graceful || r.Converged || r.Convergence != plan.Unverified || !strings.Contains(r.Error, "unverified") {
			t.Fatalf("outcome %s, convergence %s: %s", r.Outcome, r.Convergence, r.Error)
		}
	})
	t.Run("force off: only left counts", func(t *testing.T) {
		h := newHarness(t)
		var strict bool
		h.verify = func(in activities.ConvergenceInput) (activities.ConvergenceOutput, error) {
			strict = in.StrictLeft
			return activities.ConvergenceOutput{Converged: true, Status: "converged"}, nil
		}
		h.run(ShutdownRequest{Plan: planWith(func(p *plan.Plan) { p.Force = false })})
		if !strict {
			t.Fatal("with force off the check counted dead as out")
		}
	})
	t.Run("node steps heartbeat", func(t *testing.T) {
		h := newHarness(t)
		var timeout time.Duration
		h.set(plan.StopHeartbeat, func(ctx context.Context, _ activities.StepInput) (activities.StepOutput, error) {
			timeout = activity.GetInfo(ctx).HeartbeatTimeout
			return activities.StepOutput{Attempt: 1}, nil
		})
		h.run(ShutdownRequest{})
		if timeout != plan.Default().HeartbeatTimeout {
			t.Fatalf("heartbeat timeout %s, want the plan's %s", timeout, plan.Default().HeartbeatTimeout)
		}
	})
}

// extend-timeout takes only a longer StartToClose, up to plan.MaxStartToClose.
func TestExtendTimeoutAtItsBounds(t *testing.T) {
	h := newHarness(t)
	current, _ := plan.Default().Step(plan.Deregister)
	tries := []time.Duration{current.StartToClose, plan.MaxStartToClose + time.Nanosecond, plan.MaxStartToClose}
	results := make([]updateResult, len(tries))
	h.whileFirstStepRuns(func() {
		for i, d := range tries {
			h.env.UpdateWorkflow(UpdateExtendTimeout, strconv.Itoa(i), results[i].callbacks(), ExtendTimeoutRequest{Step: plan.Deregister, StartToClose: plan.Duration(d)})
		}
	})
	h.run(ShutdownRequest{})
	if results[0].rejected == nil || !strings.Contains(results[0].rejected.Error(), "does not extend") {
		t.Errorf("the same start_to_close: %v, want refused", results[0].rejected)
	}
	if results[1].rejected == nil || !strings.Contains(results[1].rejected.Error(), "more than the most") {
		t.Errorf("past the most a step may take: %v, want refused", results[1].rejected)
	}
	if !results[2].accepted {
		t.Errorf("the most a step may take: %v, want accepted", results[2].rejected)
	}
}

// The attempts of a failed step: the one its error or last heartbeat says, when it
// says one (an attempt is counted from 1); none before it was picked up.
func TestAttemptsOfAFailedStep(t *testing.T) {
	spec := plan.StepSpec{MaxAttempts: 5}
	withAttempt := func(n int32) error {
		return temporal.NewApplicationErrorWithOptions("boom", "StepFailed", temporal.ApplicationErrorOptions{Details: []any{activities.Progress{Attempt: n}}})
	}
	for name, tt := range map[string]struct {
		err  error
		want int
	}{
		"its error says 3":           {withAttempt(3), 3},
		"its error says 0":           {withAttempt(0), 1},
		"its heartbeat says 4":       {temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil, activities.Progress{Attempt: 4}), 4},
		"its heartbeat says 0":       {temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_START_TO_CLOSE, nil, activities.Progress{Attempt: 0}), 1},
		"never picked up":            {temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, nil), 0},
		"an error that says no more": {errors.New("boom"), 1},
	} {
		if got := attempts(tt.err, spec); got != tt.want {
			t.Errorf("%s: %d attempts, want %d", name, got, tt.want)
		}
	}
}

// A lookup that refuses the node (unknown, or not a node) ends the run at once with
// that error, never retried, whether or not the activity marked it so.
func TestARefusedLookupEndsTheRun(t *testing.T) {
	for _, typ := range []string{activities.ErrTypeUnknownNode, activities.ErrTypeNotANode} {
		h := newHarness(t)
		h.lookup = func(activities.LookupInput) (activities.LookupOutput, error) {
			return activities.LookupOutput{}, temporal.NewApplicationError(`"node-9": refused`, typ)
		}
		h.env.ExecuteWorkflow(GracefulShutdown, ShutdownRequest{Node: "node-9"})
		var appErr *temporal.ApplicationError
		if err := h.env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != typ || !appErr.NonRetryable() {
			t.Errorf("%s: workflow error %v; want it, not retryable", typ, err)
		}
		if h.called("lookup") != 1 || h.called(plan.SetGracefullyLeft) != 0 {
			t.Errorf("%s: looked up %d times, stepped on %d times; want once and never", typ, h.called("lookup"), h.called(plan.SetGracefullyLeft))
		}
	}
}

// A plan of stop-services alone still knows the services serve until that step
// succeeds: when it fails, the process is terminated.
func TestAServiceStillServesUntilItsStepSucceeds(t *testing.T) {
	h := newHarness(t)
	h.set(plan.StopServices, fails(errors.New("api will not stop")))
	r := h.run(ShutdownRequest{Plan: planWith(func(p *plan.Plan) { p.Steps = p.Steps[p.Index(plan.StopServices):] })})
	if !r.Terminated || h.called(plan.Terminate) != 1 {
		t.Errorf("stop-services failed, the only step: terminated %v (%d calls), outcome %s; want the process terminated", r.Terminated, h.called(plan.Terminate), r.Outcome)
	}
}

// deadlines records, by activity type, how long each activity (or local activity) the
// run started was given: from its start to its deadline.
func deadlines(env *testsuite.TestWorkflowEnvironment) func(string) time.Duration {
	var mu sync.Mutex
	got := map[string]time.Duration{}
	record := func(info *activity.Info) {
		mu.Lock()
		defer mu.Unlock()
		got[info.ActivityType.Name] = info.Deadline.Sub(info.StartedTime)
	}
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) { record(info) })
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) { record(info) })
	return func(name string) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return got[name]
	}
}

// An activity that waits gets more than its wait: the convergence check its timeout, a
// request to the budget (runs before its queue) and a drain's request the time they
// wait inside it, each with room to answer after the wait.
func TestAnActivityThatWaitsOutlivesItsWait(t *testing.T) {
	h := newHarness(t)
	took := deadlines(h.env)
	h.run(ShutdownRequest{})
	p := plan.Default()
	if got := took("VerifyConvergence"); got <= p.ConvergenceTimeout+plan.ConvergenceSlack/2 {
		t.Errorf("the convergence check has %s; want more than its timeout %s, with room", got, p.ConvergenceTimeout)
	}

	h = newHarness(t)
	h.atVersion(versionBudgetQueue - 1)
	took = deadlines(h.env)
	h.run(ShutdownRequest{})
	if got := took("AcquireLease"); got <= budgetWait+5*time.Second {
		t.Errorf("a request to a budget before its queue has %s; want more than the %s it waits there, with room", got, budgetWait)
	}

	d := newDrainHarness(t)
	took = deadlines(d.env)
	d.run(drainOf("n1"))
	if got := took("AcquireLease"); got <= drainLeaseWait+5*time.Second {
		t.Errorf("a drain's request has %s; want more than the %s it waits, with room", got, drainLeaseWait)
	}
}

// The convergence check's time is recorded as it took, by whether it converged.
func TestConvergenceTimeIsRecorded(t *testing.T) {
	h := newHarness(t)
	h.run(ShutdownRequest{})
	if got := h.metrics.recorded(MetricConvergenceDuration, map[string]string{"converged": "true"}); !slices.Equal(got, []float64{0.012}) {
		t.Errorf("convergence recorded %v (seconds); want the check's 12ms", got)
	}
}

// A shutdown in the budget's queue says how many are ahead of it, and nothing of the
// kind when it is next.
func TestAShutdownInTheQueueSaysHowManyAreAhead(t *testing.T) {
	h := newHarness(t)
	var holder string
	h.acquire = func(in activities.LeaseRequest) (activities.LeaseGrant, error) {
		h.mu.Lock()
		holder = in.Holder
		h.mu.Unlock()
		return activities.LeaseGrant{Asked: true}, nil
	}
	answer := func(at time.Duration, g activities.LeaseGrant) {
		h.env.RegisterDelayedCallback(func() {
			h.mu.Lock()
			g.Holder = holder
			h.mu.Unlock()
			h.env.SignalWorkflow(SignalBudget, g)
		}, at)
	}
	waiting := make([]string, 2)
	for i, at := range []time.Duration{2 * time.Second, 4 * time.Second} {
		h.env.RegisterDelayedCallback(func() {
			v, err := h.env.QueryWorkflow(QueryProgress)
			var r ShutdownReport
			if err == nil {
				err = v.Get(&r)
			}
			if err != nil {
				t.Error(err)
			}
			waiting[i] = r.Waiting
		}, at)
	}
	answer(time.Second, activities.LeaseGrant{Queued: true, Why: "2 in flight", Position: 3})
	answer(3*time.Second, activities.LeaseGrant{Queued: true, Why: "2 in flight", Position: 1})
	answer(5*time.Second, activities.LeaseGrant{Granted: true})
	if r := h.run(ShutdownRequest{}); r.Outcome != plan.Graceful {
		t.Fatalf("outcome %s", r.Outcome)
	}
	if want := []string{"2 in flight; 2 ahead in the queue", "2 in flight"}; !slices.Equal(waiting, want) {
		t.Errorf("waiting %q; want %q", waiting, want)
	}
}
