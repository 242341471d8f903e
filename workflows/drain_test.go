package workflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/internal/testkit"
	"github.com/farewell-project/farewell/plan"
)

// drainHarness runs Drain in the test environment: each node's shutdown is a mocked
// child run that takes shutdownTook of workflow time, and every activity is mocked.
type drainHarness struct {
	t       *testing.T
	env     *testsuite.TestWorkflowEnvironment
	metrics *metricsRecorder
	// shutdowns is the orchestrator's workflow host: its Limits are the cluster's budget.
	shutdowns *Shutdowns

	mu           sync.Mutex
	preflight    func(activities.PreflightInput) activities.DrainPlan
	grant        func(activities.LeaseRequest) activities.LeaseGrant
	gate         func(activities.GateInput) activities.GateOutput
	latest       func(node string) activities.ShutdownInfo
	outcome      func(node string) plan.Outcome
	fail         func(node string) error // a shutdown that ends without a report
	unconverged  bool                    // shutdowns out, but not seen out by every member
	shutdownTook time.Duration

	inFlight, maxInFlight int
	started               map[string]time.Time
	requests              []ShutdownRequest
	released              []activities.LeaseRef
	asked                 int                   // lease requests the budget received
	returned              []activities.LeaseRef // leases handed back with them
}

func newDrainHarness(t *testing.T) *drainHarness {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(sdklog.NewStructuredLogger(testkit.Logger(t)))
	metrics := newMetricsRecorder()
	suite.SetMetricsHandler(metrics)
	h := &drainHarness{t: t, env: suite.NewTestWorkflowEnvironment(), metrics: metrics, started: map[string]time.Time{}, shutdownTook: 10 * time.Second}
	h.preflight = func(in activities.PreflightInput) activities.DrainPlan {
		p := activities.DrainPlan{Selector: in.Selector, Limits: in.Limits, Cluster: in.Cluster, Budget: in.Budget}
		for _, n := range in.Selector.Nodes {
			p.Nodes = append(p.Nodes, activities.NodeCheck{Node: n, State: activities.StateAlive, Instance: "i-" + n})
		}
		return p
	}
	h.grant = func(activities.LeaseRequest) activities.LeaseGrant { return activities.LeaseGrant{Granted: true} }
	h.gate = func(in activities.GateInput) activities.GateOutput {
		return activities.GateOutput{Ready: true, Out: in.Out}
	}
	h.latest = func(node string) activities.ShutdownInfo {
		return activities.ShutdownInfo{RunID: "run-" + node, Outcome: plan.Graceful, Converged: true}
	}
	h.outcome = func(string) plan.Outcome { return plan.Graceful }

	env := h.env
	s := &Shutdowns{Plan: plan.Default(), Limits: plan.Limits{MaxParallel: 10}}
	h.shutdowns = s
	env.RegisterWorkflowWithOptions(s.Drain, workflow.RegisterOptions{Name: DrainWorkflowName})
	env.RegisterWorkflowWithOptions(GracefulShutdown, workflow.RegisterOptions{Name: WorkflowName})
	env.RegisterActivity(&activities.ClusterActivities{})
	env.OnWorkflow(WorkflowName, mock.Anything, mock.Anything).Return(func(ctx workflow.Context, req ShutdownRequest) (*ShutdownReport, error) {
		h.mu.Lock()
		h.inFlight++
		h.maxInFlight = max(h.maxInFlight, h.inFlight)
		h.started[req.Node] = workflow.Now(ctx)
		h.requests = append(h.requests, req)
		took := h.shutdownTook
		h.mu.Unlock()
		err := workflow.Sleep(ctx, took)
		h.mu.Lock()
		h.inFlight--
		h.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if h.fail != nil {
			if err := h.fail(req.Node); err != nil {
				return nil, err
			}
		}
		o := h.outcome(req.Node)
		return &ShutdownReport{Node: req.Node, RunID: "run-" + req.Node, NodeInstance: "i-" + req.Node, Outcome: o,
			Converged: o.Out() && !h.unconverged, Total: plan.Millis(took)}, nil
	})
	env.OnActivity(clusterActs.PreflightDrain, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PreflightInput) (activities.DrainPlan, error) {
			return h.preflight(in), nil
		})
	env.OnActivity(clusterActs.AcquireLease, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.LeaseRequest) (activities.LeaseGrant, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.asked++
			h.returned = append(h.returned, in.Returning...)
			g := h.grant(in)
			// The budget's answer, at once (the tests of its answers by signal answer
			// from the test's own callbacks).
			g.Holder = in.Holder
			return g, nil
		})
	env.OnActivity(clusterActs.ReleaseLease, mock.Anything, mock.Anything).Return(
		func(_ context.Context, ref activities.LeaseRef) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.released = append(h.released, ref)
			return nil
		})
	env.OnActivity(clusterActs.DrainGate, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.GateInput) (activities.GateOutput, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.gate(in), nil
		})
	env.OnActivity(clusterActs.LatestShutdown, mock.Anything, mock.Anything).Return(
		func(_ context.Context, node string) (activities.ShutdownInfo, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.latest(node), nil
		})
	return h
}

func drainOf(nodes ...string) DrainRequest {
	return DrainRequest{Name: "d1", Selector: activities.Selector{Nodes: nodes}, Limits: plan.Limits{MaxParallel: 1}, FailureThreshold: 1}
}

// run executes the drain and returns its report.
func (h *drainHarness) run(req DrainRequest) *DrainReport {
	h.t.Helper()
	h.env.ExecuteWorkflow(DrainWorkflowName, req)
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("drain did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		h.t.Fatalf("drain failed: %v", err)
	}
	var r DrainReport
	if err := h.env.GetWorkflowResult(&r); err != nil {
		h.t.Fatal(err)
	}
	return &r
}

// progressAt queries the drain's progress at workflow time at.
func (h *drainHarness) progressAt(at time.Duration, into *DrainReport) {
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(QueryProgress)
		if err == nil {
			err = v.Get(into)
		}
		if err != nil {
			h.t.Errorf("progress at %s: %v", at, err)
		}
	}, at)
}

// update sends a drain update at workflow time at and records how it ended.
func (h *drainHarness) update(at time.Duration, name string, arg any, result *error) {
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(name, fmt.Sprintf("%s@%s", name, at), &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { *result = err },
			OnComplete: func(_ any, err error) { *result = err },
		}, arg)
	}, at)
}

func TestDrainKeepsToMaxParallelAndRunsOrdinaryShutdowns(t *testing.T) {
	h := newDrainHarness(t)
	req := drainOf("n1", "n2", "n3", "n4", "n5", "n6")
	req.Limits = plan.Limits{MaxParallel: 2, MinAlive: 3}
	r := h.run(req)
	if r.Outcome != DrainCompleted || r.Count()[DrainDone] != 6 || r.Failures != 0 {
		t.Fatalf("outcome %s, %+v", r.Outcome, r.Count())
	}
	if h.maxInFlight != 2 {
		t.Errorf("at most %d in flight, want 2", h.maxInFlight)
	}
	for _, sr := range h.requests {
		if sr.Drain != "d1" || !sr.Leased || sr.RequestedBy != "drain d1" {
			t.Errorf("child request %+v", sr)
		}
	}
	// The person who started the drain is named in each shutdown it starts.
	h = newDrainHarness(t)
	req.RequestedBy = "ops@example"
	named := h.run(req)
	if len(h.requests) != 6 {
		t.Fatalf("%d shutdowns started, want 6", len(h.requests))
	}
	for _, sr := range h.requests {
		if sr.RequestedBy != "ops@example (drain d1)" {
			t.Errorf("child request requested by %q, want the drain's requester and the drain", sr.RequestedBy)
		}
	}
	// A requester at the bound: the children's requests stay valid.
	h = newDrainHarness(t)
	req.RequestedBy = strings.Repeat("r", plan.MaxReason)
	h.run(req)
	if len(h.requests) != 6 {
		t.Fatalf("%d shutdowns started, want 6", len(h.requests))
	}
	for _, sr := range h.requests {
		if err := sr.Validate(); err != nil || sr.RequestedBy != "drain d1" {
			t.Errorf("child of a drain whose requester is %d bytes: requested by %d bytes, %v", plan.MaxReason, len(sr.RequestedBy), err)
		}
	}
	if lines := strings.Join(named.Lines(), "\n"); !strings.Contains(lines, "requested by ops@example") || !strings.Contains(lines, "outcome: completed") || !strings.Contains(lines, "n6: done, graceful") {
		t.Errorf("the drain's memo lines:\n%s", lines)
	}
	// Each node its own ordinary shutdown, under the cluster's budget (min-alive passed on).
	if r.Cluster.MaxParallel != 10 || r.Waves != 0 && r.Waves > 6 {
		t.Errorf("cluster %+v waves %d", r.Cluster, r.Waves)
	}
}

// The drain gives back each of its shutdowns' leases once: handed to the next lease
// request, the last at its end.
// Each shutdown a drain starts gives the drain's reason (or the drain's name), and names
// its requester with the drain as long as that fits the bound, at the bound included.
func TestDrainNamesWhyAndWhoInEachShutdown(t *testing.T) {
	for _, tc := range []struct {
		reason, requestedBy string
		wantReason, wantBy  string
	}{
		{"", "", "drain d1", "drain d1"},
		{"kernel update", "ops", "kernel update", "ops (drain d1)"},
		{"", strings.Repeat("r", plan.MaxReason-len(" (drain d1)")), "drain d1", strings.Repeat("r", plan.MaxReason-len(" (drain d1)")) + " (drain d1)"},
		{"", strings.Repeat("r", plan.MaxReason-len(" (drain d1)")+1), "drain d1", "drain d1"},
	} {
		h := newDrainHarness(t)
		req := drainOf("n1")
		req.Reason, req.RequestedBy = tc.reason, tc.requestedBy
		h.run(req)
		if len(h.requests) != 1 {
			t.Fatalf("%d shutdowns started, want 1", len(h.requests))
		}
		if sr := h.requests[0]; sr.Reason != tc.wantReason || sr.RequestedBy != tc.wantBy || sr.Validate() != nil {
			t.Errorf("reason %q, requested by %d bytes: the shutdown's reason %q, requested by %d bytes (%v); want %q and %d bytes",
				tc.reason, len(tc.requestedBy), sr.Reason, len(sr.RequestedBy), sr.Validate(), tc.wantReason, len(tc.wantBy))
		}
	}
}

// --pause-between keeps that long between two starts, whatever max-parallel allows; with
// none, the nodes max-parallel allows start at once.
func TestDrainPausesBetweenTwoStarts(t *testing.T) {
	for _, pause := range []time.Duration{0, 30 * time.Second} {
		h := newDrainHarness(t)
		h.shutdownTook = time.Second
		req := drainOf("n1", "n2", "n3")
		req.Limits.MaxParallel, req.PauseBetween = 3, plan.Duration(pause)
		h.run(req)
		at := []time.Time{h.started["n1"], h.started["n2"], h.started["n3"]}
		for i := 1; i < len(at); i++ {
			if gap := at[i].Sub(at[i-1]); gap < pause || pause == 0 && gap != 0 {
				t.Errorf("pause %s: n%d started %s after n%d; want %s", pause, i+1, gap, i, pause)
			}
		}
	}
}

// A lease granted with a word from the budget (past its limits, say) shows that word in
// the node's note while its shutdown runs.
func TestDrainNotesWhatTheBudgetSaidOfAGrant(t *testing.T) {
	h := newDrainHarness(t)
	h.grant = func(in activities.LeaseRequest) activities.LeaseGrant {
		if in.Node == "n1" {
			return activities.LeaseGrant{Granted: true, Why: "granted past the floor"}
		}
		return activities.LeaseGrant{Granted: true}
	}
	var first, second DrainReport
	h.progressAt(5*time.Second, &first)   // n1 running
	h.progressAt(15*time.Second, &second) // n2 running
	h.run(drainOf("n1", "n2"))
	if first.Nodes[0].State != DrainRunning || first.Nodes[0].Note != "granted past the floor" {
		t.Errorf("n1 %s, note %q; want running, with the budget's word", first.Nodes[0].State, first.Nodes[0].Note)
	}
	if second.Nodes[1].State != DrainRunning || second.Nodes[1].Note != "" {
		t.Errorf("n2 %s, note %q; want running, with none", second.Nodes[1].State, second.Nodes[1].Note)
	}
}

// A shutdown that ends without a report counts as a failure, with its error and the
// time it ran.
func TestDrainTimesAShutdownThatEndedWithoutAReport(t *testing.T) {
	h := newDrainHarness(t)
	h.fail = func(node string) error {
		if node == "n1" {
			return temporal.NewNonRetryableApplicationError("worker lost", "Panic", nil)
		}
		return nil
	}
	req := drainOf("n1", "n2")
	req.FailureThreshold = 0
	r := h.run(req)
	n := r.Nodes[0]
	if n.State != DrainDone || n.Outcome != "" || !strings.Contains(n.Note, "worker lost") || n.Took != plan.Millis(h.shutdownTook) || r.Failures != 1 {
		t.Errorf("n1: %s, outcome %q, note %q, took %s; %d failures; want done, no outcome, its error, %s, one failure",
			n.State, n.Outcome, n.Note, n.Took, r.Failures, h.shutdownTook)
	}
}

func TestDrainHandsLeasesOver(t *testing.T) {
	h := newDrainHarness(t)
	var returned []string
	h.grant = func(in activities.LeaseRequest) activities.LeaseGrant {
		for _, ref := range in.Returning {
			returned = append(returned, ref.Holder+">"+in.Node)
		}
		return activities.LeaseGrant{Granted: true}
	}
	r := h.run(drainOf("n1", "n2", "n3"))
	if r.Outcome != DrainCompleted {
		t.Fatalf("outcome %s", r.Outcome)
	}
	if got := strings.Join(returned, " "); got != "farewell-shutdown-n1>n2 farewell-shutdown-n2>n3" {
		t.Errorf("handed over %s", got)
	}
	var released []string
	for _, ref := range h.released {
		released = append(released, ref.Holder+"@"+ref.Run)
	}
	if len(released) != 1 || !strings.HasPrefix(released[0], "farewell-shutdown-n3@") || strings.HasSuffix(released[0], "@") {
		t.Errorf("released %v; want n3's, bound to its run, at the end", released)
	}
}

func TestDrainWaitsWhileTheBudgetIsFull(t *testing.T) {
	h := newDrainHarness(t)
	full := true
	h.env.RegisterDelayedCallback(func() { h.mu.Lock(); full = false; h.mu.Unlock() }, 30*time.Second)
	h.grant = func(in activities.LeaseRequest) activities.LeaseGrant {
		if full {
			return activities.LeaseGrant{Why: "3 shutdowns in flight, max_parallel is 3", Queued: true, Position: 1}
		}
		return activities.LeaseGrant{Granted: true}
	}
	var during DrainReport
	h.progressAt(10*time.Second, &during)
	start := h.env.Now()
	r := h.run(drainOf("n1", "n2"))
	if !strings.Contains(during.Waiting, "the cluster's budget: 3 shutdowns in flight, max_parallel is 3 (place 1 in its queue)") || len(during.InFlight()) != 0 {
		t.Errorf("while the budget was full: waiting %q, in flight %v", during.Waiting, during.InFlight())
	}
	if at := h.started["n1"].Sub(start); at < 30*time.Second {
		t.Errorf("n1 started %s in, before the budget had room (30s)", at)
	}
	if r.Outcome != DrainCompleted {
		t.Errorf("outcome %s", r.Outcome)
	}
}

// A request the budget will answer by signal is asked once; woken meanwhile (an
// operator's update), the drain waits on for the answer rather than asking again, and
// asks again once the answer is overdue — budgetRecheck after it asked, not later.
func TestDrainAsksOnceForAnAnswerBySignal(t *testing.T) {
	h := newDrainHarness(t)
	h.grant = func(activities.LeaseRequest) activities.LeaseGrant { return activities.LeaseGrant{Asked: true} }
	var setErr, abortErr error
	h.update(10*time.Second, UpdateDrainSetMaxParallel, SetMaxParallelRequest{MaxParallel: 2}, &setErr)
	asked := []int{-1, -1}
	for i, at := range []time.Duration{20 * time.Second, budgetRecheck + 5*time.Second} {
		h.env.RegisterDelayedCallback(func() { h.mu.Lock(); asked[i] = h.asked; h.mu.Unlock() }, at)
	}
	h.update(budgetRecheck+6*time.Second, UpdateDrainAbort, DrainControl{}, &abortErr)
	h.run(drainOf("n1"))
	if setErr != nil || abortErr != nil || asked[0] != 1 || asked[1] != 2 {
		t.Errorf("asked %d times in 20s and %d in %s (updates: %v, %v); want once, then again once the answer is overdue (%s)",
			asked[0], asked[1], budgetRecheck+5*time.Second, setErr, abortErr, budgetRecheck)
	}
}

func TestDrainStopsAtItsFailureThreshold(t *testing.T) {
	h := newDrainHarness(t)
	h.outcome = func(node string) plan.Outcome {
		if node == "n2" {
			return plan.Forced
		}
		return plan.Graceful
	}
	r := h.run(drainOf("n1", "n2", "n3", "n4"))
	if r.Outcome != DrainStopped || !strings.Contains(r.Why, "failure threshold") || r.Failures != 1 {
		t.Fatalf("outcome %s: %s (%d failures)", r.Outcome, r.Why, r.Failures)
	}
	if _, ran := h.started["n3"]; ran {
		t.Error("n3 started after the threshold was reached")
	}
	if n := r.Nodes[2]; n.State != DrainSkipped || !strings.Contains(n.Note, "not started") {
		t.Errorf("n3: %+v", n)
	}
}

func TestDrainPauseResumeAbort(t *testing.T) {
	h := newDrainHarness(t)
	var pauseErr, pauseAgainErr, resumeErr, abortErr, maxErr error
	h.update(5*time.Second, UpdateDrainPause, DrainControl{Reason: "look at the graphs"}, &pauseErr)
	h.update(6*time.Second, UpdateDrainPause, DrainControl{}, &pauseAgainErr)
	var paused DrainReport
	h.progressAt(20*time.Second, &paused)
	h.update(30*time.Second, UpdateDrainResume, DrainControl{}, &resumeErr)
	h.update(31*time.Second, UpdateDrainSetMaxParallel, SetMaxParallelRequest{MaxParallel: 0}, &maxErr)
	h.update(35*time.Second, UpdateDrainAbort, DrainControl{Reason: "enough"}, &abortErr)
	start := h.env.Now()
	r := h.run(drainOf("n1", "n2", "n3", "n4"))
	if pauseErr != nil || resumeErr != nil || abortErr != nil {
		t.Fatalf("pause %v, resume %v, abort %v", pauseErr, resumeErr, abortErr)
	}
	if pauseAgainErr == nil || maxErr == nil {
		t.Errorf("pausing twice: %v; max-parallel 0: %v; want both refused", pauseAgainErr, maxErr)
	}
	if !strings.Contains(paused.Paused, "look at the graphs") || len(paused.InFlight()) != 0 {
		t.Errorf("while paused: %q, in flight %v", paused.Paused, paused.InFlight())
	}
	if at := h.started["n2"].Sub(start); at != 30*time.Second {
		t.Errorf("n2 started %s in, want at the resume (30s)", at)
	}
	// Aborted while n2 ran: n2 finished, nothing else started.
	if r.Outcome != DrainAborted || r.Nodes[1].Outcome != plan.Graceful || r.Nodes[2].State != DrainSkipped || r.Nodes[3].State != DrainSkipped {
		t.Errorf("outcome %s, nodes %+v", r.Outcome, r.Nodes)
	}
}

func TestDrainSkipNode(t *testing.T) {
	h := newDrainHarness(t)
	var skipErr, runningErr, unknownErr error
	h.update(time.Second, UpdateDrainSkipNode, SkipNodeRequest{Node: "n3", Reason: "keep it"}, &skipErr)
	h.update(2*time.Second, UpdateDrainSkipNode, SkipNodeRequest{Node: "n1"}, &runningErr)
	h.update(3*time.Second, UpdateDrainSkipNode, SkipNodeRequest{Node: "n9"}, &unknownErr)
	r := h.run(drainOf("n1", "n2", "n3"))
	if skipErr != nil || runningErr == nil || unknownErr == nil {
		t.Fatalf("skip %v; skip of a running node %v; of an unknown one %v", skipErr, runningErr, unknownErr)
	}
	if _, ran := h.started["n3"]; ran || r.Nodes[2].State != DrainSkipped || !strings.Contains(r.Nodes[2].Note, "keep it") {
		t.Errorf("n3: %+v", r.Nodes[2])
	}
	if r.Outcome != DrainCompleted {
		t.Errorf("outcome %s", r.Outcome)
	}
}

func TestDrainStopsAtTheFloorSayingWhy(t *testing.T) {
	h := newDrainHarness(t)
	h.grant = func(in activities.LeaseRequest) activities.LeaseGrant {
		if in.Node == "n1" {
			return activities.LeaseGrant{Granted: true}
		}
		return activities.LeaseGrant{Floor: true, Why: "it would leave 2 nodes in service, fewer than min_alive 3"}
	}
	req := drainOf("n1", "n2", "n3")
	req.Limits.MinAlive = 3
	r := h.run(req)
	if r.Outcome != DrainStopped || !strings.Contains(r.Why, "min-alive floor") || r.Count()[DrainBlocked] != 2 {
		t.Fatalf("outcome %s: %s; %+v", r.Outcome, r.Why, r.Count())
	}
	if r.Failures != 0 || len(h.started) != 1 {
		t.Errorf("failures %d, started %v", r.Failures, h.started)
	}
}

func TestDrainHealthGate(t *testing.T) {
	t.Run("waits", func(t *testing.T) {
		h := newDrainHarness(t)
		start := h.env.Now()
		h.gate = func(in activities.GateInput) activities.GateOutput {
			if h.env.Now().Sub(start) < 20*time.Second {
				return activities.GateOutput{Why: "n9 is blocked (no heartbeat for 7s)"}
			}
			return activities.GateOutput{Ready: true, Out: in.Out}
		}
		var during DrainReport
		h.progressAt(10*time.Second, &during)
		r := h.run(drainOf("n1"))
		if !strings.Contains(during.Waiting, "health gate: n9 is blocked") {
			t.Errorf("waiting %q", during.Waiting)
		}
		if at := h.started["n1"].Sub(start); at < 20*time.Second || r.Outcome != DrainCompleted {
			t.Errorf("n1 started %s in (the gate opened at 20s), outcome %s", at, r.Outcome)
		}
	})
	t.Run("pauses after its timeout", func(t *testing.T) {
		h := newDrainHarness(t)
		h.gate = func(activities.GateInput) activities.GateOutput { return activities.GateOutput{Why: "n9 is blocked"} }
		var during DrainReport
		// Paused as soon as it waited its timeout, not a look later.
		h.progressAt(30*time.Second+gatePoll/2, &during)
		var abortErr error
		h.update(50*time.Second, UpdateDrainAbort, DrainControl{}, &abortErr)
		req := drainOf("n1")
		req.GateTimeout = plan.Duration(30 * time.Second)
		r := h.run(req)
		if !strings.Contains(during.Paused, "the health gate waited 30s") || abortErr != nil || r.Outcome != DrainAborted || len(h.started) != 0 {
			t.Errorf("paused %q, abort %v, outcome %s, started %v", during.Paused, abortErr, r.Outcome, h.started)
		}
	})
	t.Run("asks about each node taken out, once", func(t *testing.T) {
		h := newDrainHarness(t)
		h.unconverged = true // the gate looks at what the members did not all see out
		var asked []string
		h.gate = func(in activities.GateInput) activities.GateOutput {
			for _, p := range in.Out {
				asked = append(asked, p.Node+"/"+p.Instance)
			}
			return activities.GateOutput{Ready: true, Out: in.Out}
		}
		h.run(drainOf("n1", "n2", "n3"))
		// (n3 is the last: no start waits on the gate after it.)
		if want := []string{"n1/i-n1", "n2/i-n2"}; !slices.Equal(asked, want) {
			t.Errorf("the gate was asked about %q; want %q, each once, and nothing not yet done", asked, want)
		}
	})
}

func TestDrainJoinsAShutdownAlreadyRunning(t *testing.T) {
	h := newDrainHarness(t)
	start := h.env.Now()
	h.preflight = func(in activities.PreflightInput) activities.DrainPlan {
		return activities.DrainPlan{Nodes: []activities.NodeCheck{
			{Node: "n1", State: activities.StateAlive},
			{Node: "n2", State: activities.StateLeaving, Join: true, RunID: "theirs", Blocker: activities.BlockRunning},
			{Node: "n3", State: activities.StateLeft, Skip: true, Blocker: activities.BlockNotAlive, Note: "left already"},
		}}
	}
	h.latest = func(node string) activities.ShutdownInfo {
		if h.env.Now().Sub(start) < 25*time.Second {
			return activities.ShutdownInfo{Running: true, RunID: "theirs"}
		}
		return activities.ShutdownInfo{RunID: "theirs", Outcome: plan.Degraded, Converged: true}
	}
	req := drainOf("n1", "n2", "n3")
	r := h.run(req)
	if _, started := h.started["n2"]; started {
		t.Error("the drain started a second shutdown of n2")
	}
	n2 := r.Nodes[1]
	if n2.State != DrainDone || n2.Outcome != plan.Degraded || n2.RunID != "theirs" || r.Nodes[2].State != DrainSkipped {
		t.Errorf("n2 %+v, n3 %+v", n2, r.Nodes[2])
	}
	if r.Outcome != DrainCompleted || r.Total.Std() < 25*time.Second {
		t.Errorf("outcome %s after %s", r.Outcome, r.Total)
	}
}

// A shutdown the drain joins without knowing its run shows the run it follows while it
// runs.
func TestDrainShowsTheRunItFollows(t *testing.T) {
	h := newDrainHarness(t)
	start := h.env.Now()
	h.preflight = func(in activities.PreflightInput) activities.DrainPlan {
		return activities.DrainPlan{Nodes: []activities.NodeCheck{{Node: "n1", State: activities.StateLeaving, Join: true, Blocker: activities.BlockRunning}}}
	}
	h.latest = func(string) activities.ShutdownInfo {
		return activities.ShutdownInfo{Running: h.env.Now().Sub(start) < 25*time.Second, RunID: "theirs", Outcome: plan.Graceful, Converged: true}
	}
	var mid DrainReport
	h.progressAt(10*time.Second, &mid)
	h.run(drainOf("n1"))
	if len(mid.Nodes) != 1 || mid.Nodes[0].State != DrainJoined || mid.Nodes[0].RunID != "theirs" {
		t.Errorf("while it runs: %+v; want n1 joined, following run theirs", mid.Nodes)
	}
}

func TestDrainRefusedByItsPreflight(t *testing.T) {
	h := newDrainHarness(t)
	h.preflight = func(in activities.PreflightInput) activities.DrainPlan {
		return activities.DrainPlan{Nodes: []activities.NodeCheck{{Node: "n1"}, {Node: "nx", Blocker: activities.BlockUnknown, Fatal: true, Note: "no member of that name"}}}
	}
	h.env.ExecuteWorkflow(DrainWorkflowName, drainOf("n1", "nx"))
	var appErr *temporal.ApplicationError
	if err := h.env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeDrainRefused || !strings.Contains(appErr.Message(), "nx: no member") {
		t.Fatalf("want a refusal naming nx, got %v", err)
	}
	var p activities.DrainPlan
	if err := appErr.Details(&p); err != nil || len(p.Nodes) != 2 {
		t.Errorf("the refusal carries the plan: %+v %v", p, err)
	}
	if len(h.started) != 0 {
		t.Errorf("started %v", h.started)
	}
}

// Past NodesPerRun starts the drain continues as new; the next run follows the
// shutdowns in flight and finishes the rest.
func TestDrainContinuesAsNew(t *testing.T) {
	h := newDrainHarness(t)
	req := drainOf("n1", "n2", "n3", "n4", "n5")
	req.Limits.MaxParallel, req.NodesPerRun = 2, 2
	h.env.ExecuteWorkflow(DrainWorkflowName, req)
	var can *workflow.ContinueAsNewError
	if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
		var r DrainReport
		_ = h.env.GetWorkflowResult(&r)
		t.Fatalf("want a continue-as-new, got %v: %+v", err, r.Nodes)
	}
	var next DrainRequest
	if err := decodePayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	c := next.Carry
	// (The test environment reports a child run started only once it ended: what the
	// next run follows shows as done already.)
	if c == nil || c.Count()[DrainJoined]+c.Count()[DrainDone] != 2 || c.Count()[DrainPending] != 3 {
		t.Fatalf("carried %+v", c)
	}
	if got := h.metrics.recorded(MetricDrainsStarted, nil); !slices.Equal(got, []float64{1}) {
		t.Errorf("the first run counted %v drains started; want one", got)
	}

	// In the real server the first two run on into the next run, which follows them.
	next.NodesPerRun = 0
	c.Nodes[0].State, c.Nodes[1].State = DrainJoined, DrainJoined
	h2 := newDrainHarness(t)
	r := h2.run(next)
	if r.Outcome != DrainCompleted || r.Count()[DrainDone] != 5 || r.Runs != 1 {
		t.Fatalf("second run: outcome %s, %+v, runs %d", r.Outcome, r.Count(), r.Runs)
	}
	if _, again := h2.started["n1"]; again || len(h2.started) != 3 {
		t.Errorf("the second run started %v; want n3, n4, n5 only", h2.started)
	}
	if got := h2.metrics.recorded(MetricDrainsStarted, nil); len(got) != 0 {
		t.Errorf("the run it continued as counted %v drains started; want none: it is the same drain", got)
	}
	if got := h2.metrics.recorded(MetricDrains, map[string]string{"outcome": string(DrainCompleted)}); !slices.Equal(got, []float64{1}) {
		t.Errorf("drains ended: %v; want one completed", got)
	}
}

// A run the server asks to continue as new moves on before it starts another node, once
// the starts it asked for have started.
func TestDrainMovesOnWhenTheServerSuggests(t *testing.T) {
	h := newDrainHarness(t)
	h.env.SetContinueAsNewSuggested(true)
	h.env.ExecuteWorkflow(DrainWorkflowName, drainOf("n1", "n2"))
	var can *workflow.ContinueAsNewError
	if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("want a continue-as-new, got %v", err)
	}
	var next DrainRequest
	if err := decodePayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if len(h.started) != 0 || next.Carry == nil || next.Carry.Count()[DrainPending] != 2 {
		t.Errorf("started %v, carried %+v; want nothing started, both nodes carried pending", h.started, next.Carry)
	}
}

// With no limit to keep (none in the cluster's budget, no min-alive of the drain's own)
// a drain asks the budget nothing and gives nothing back; with a min-alive floor of its
// own it asks for every node, the floor being the budget's to judge.
func TestDrainAsksTheBudgetOnlyWithALimitToKeep(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cluster plan.Limits
		floor   int
		asks    bool
	}{
		{"no limit anywhere", plan.Limits{}, 0, false},
		{"the cluster's max_parallel", plan.Limits{MaxParallel: 3}, 0, true},
		{"the cluster's min_alive", plan.Limits{MinAlive: 1}, 0, true},
		{"the drain's own floor", plan.Limits{}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newDrainHarness(t)
			h.shutdowns.Limits = tc.cluster
			req := drainOf("n1", "n2", "n3")
			req.Limits.MinAlive = tc.floor
			r := h.run(req)
			if got := r.Count()[DrainDone]; got != 3 {
				t.Fatalf("%d of 3 nodes done: %+v", got, r.Nodes)
			}
			for _, q := range h.requests {
				if !q.Leased {
					t.Errorf("%s's shutdown would ask the budget itself: the drain's children never do", q.Node)
				}
			}
			back := len(h.released) + len(h.returned)
			if tc.asks && (h.asked < 3 || back < 3) {
				t.Errorf("asked the budget %d times and gave back %d leases; want one of each per node", h.asked, back)
			}
			if !tc.asks && (h.asked != 0 || back != 0) {
				t.Errorf("asked the budget %d times and gave back %d leases; with no limit to keep, want neither", h.asked, back)
			}
		})
	}
}

// The cluster's limits are looked at again before each start: set while the drain
// runs, the nodes started from then on ask the budget.
func TestDrainSeesTheClusterLimitsSetWhileItRuns(t *testing.T) {
	h := newDrainHarness(t)
	h.shutdowns.Limits = plan.Limits{}
	h.env.RegisterDelayedCallback(func() { h.shutdowns.Limits = plan.Limits{MaxParallel: 3} }, 15*time.Second)
	r := h.run(drainOf("n1", "n2", "n3"))
	if r.Count()[DrainDone] != 3 {
		t.Fatalf("%+v", r.Nodes)
	}
	// n1 started with no limit anywhere, n2 at 10s, n3 at 20s: n3 under the new limit.
	if h.asked != 1 {
		t.Errorf("asked the budget %d times; want once: for n3, started after the cluster set a limit", h.asked)
	}
}

// What a drain did stays in its memo after it closed: its lines.
func TestDrainLeavesItsLinesInItsMemo(t *testing.T) {
	h := newDrainHarness(t)
	var memo map[string]any
	h.env.OnUpsertMemo(mock.Anything).Run(func(args mock.Arguments) { memo = args.Get(0).(map[string]any) }).Return(nil)
	r := h.run(drainOf("n1"))
	lines, ok := memo[MemoDrain].([]string)
	if !ok || !slices.Equal(lines, r.Lines()) {
		t.Errorf("memo %v; want the drain's lines %q", memo, r.Lines())
	}
}

// A drain of a thousand nodes keeps its memo under the size Temporal warns about, with
// every node that did not end graceful or degraded named, and says how many it left out.
func TestDrainMemoIsBoundedAndKeepsTheFailures(t *testing.T) {
	r := DrainReport{Name: "big", Selector: activities.Selector{All: true}, Outcome: DrainCompleted}
	for i := range 1000 {
		n := DrainNode{Node: fmt.Sprintf("node-%04d", i), State: DrainDone, Outcome: plan.Graceful, Took: plan.Millis(time.Second)}
		if i%250 == 7 {
			n.Outcome, n.Note = plan.Forced, "deregister: timed out"
		}
		r.Nodes = append(r.Nodes, n)
	}
	lines := r.Lines()
	memo := strings.Join(lines, "\n")
	if len(memo) > 32<<10 {
		t.Errorf("memo of %d bytes; want under 32 kB", len(memo))
	}
	for _, n := range []string{"node-0007", "node-0257", "node-0507", "node-0757"} {
		if !strings.Contains(memo, n+": done, forced") {
			t.Errorf("forced node %s is not in the memo", n)
		}
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, fmt.Sprintf("and %d more", 1000-drainTableRows)) {
		t.Errorf("last line %q: want how many were left out", last)
	}
	// A small drain names every node, in order.
	r.Nodes = r.Nodes[:5]
	if got := len(r.Lines()); got != 2+5 {
		t.Errorf("a drain of 5: %d lines, want its 2 and one a node", got)
	}
}

// A failure threshold of 0 never stops the drain; a drain's max_parallel can be set to
// anything from 1 to plan.MaxLimit while it runs.
func TestDrainThresholdZeroAndMaxParallelBounds(t *testing.T) {
	h := newDrainHarness(t)
	h.outcome = func(node string) plan.Outcome {
		if node == "n1" || node == "n2" {
			return plan.Forced
		}
		return plan.Graceful
	}
	errs := make([]error, 3)
	for i, k := range []int{plan.MaxLimit, plan.MaxLimit + 1, 1} {
		h.update(time.Duration(i+1)*time.Second, UpdateDrainSetMaxParallel, SetMaxParallelRequest{MaxParallel: k}, &errs[i])
	}
	req := drainOf("n1", "n2", "n3")
	req.FailureThreshold = 0
	r := h.run(req)
	if r.Outcome == DrainStopped || r.Failures != 2 || r.Nodes[2].Outcome != plan.Graceful {
		t.Errorf("threshold 0: outcome %s (%s), %d failures, n3 %+v; want every node shut down", r.Outcome, r.Why, r.Failures, r.Nodes[2])
	}
	if errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Errorf("max_parallel %d: %v; %d: %v; 1: %v; want the middle one refused", plan.MaxLimit, errs[0], plan.MaxLimit+1, errs[1], errs[2])
	}
}

// A drain request is checked field by field before anything starts.
func TestDrainRequestValidate(t *testing.T) {
	for want, r := range map[string]DrainRequest{
		"one way only":      {Name: "d1", Selector: activities.Selector{All: true, Glob: "n*"}},
		"max_parallel":      {Name: "d1", Selector: activities.Selector{All: true}, Limits: plan.Limits{MaxParallel: -1}},
		"failure_threshold": {Name: "d1", Selector: activities.Selector{All: true}, FailureThreshold: -1},
		"name":              {Name: "d 1", Selector: activities.Selector{All: true}},
	} {
		if err := r.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", r, err, want)
		}
	}
	if err := (DrainRequest{Name: "d1", Selector: activities.Selector{All: true}, Limits: plan.Limits{MaxParallel: 2, MinAlive: 1}}).Validate(); err != nil {
		t.Error(err)
	}
}
