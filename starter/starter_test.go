package starter

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/history"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

func TestShutdownStartsOnceAndJoinsAfter(t *testing.T) {
	f := newFake()
	s := f.starter()
	ctx := context.Background()
	first, err := s.Shutdown(ctx, workflows.ShutdownRequest{Node: "node-1", Reason: "first"})
	if err != nil || first.Joined || first.NotApplied != nil {
		t.Fatalf("first trigger: %+v %v", first, err)
	}
	o := f.started[0]
	if o.ID != workflows.WorkflowID("node-1") || o.TaskQueue != workflows.TaskQueue ||
		o.WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING ||
		o.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE {
		t.Errorf("started with %+v", o)
	}
	if req := f.runs[o.ID].input.(workflows.ShutdownRequest); req.Trigger == "" {
		t.Error("the request carries no trigger")
	}

	plain, err := s.Shutdown(ctx, workflows.ShutdownRequest{Node: "node-1"})
	if err != nil || !plain.Joined || plain.RunID != first.RunID || plain.NotApplied != nil {
		t.Errorf("a second trigger: %+v %v, want it joined with nothing left unapplied", plain, err)
	}
	force := true
	for _, tc := range []struct {
		req  workflows.ShutdownRequest
		want []string
	}{
		{workflows.ShutdownRequest{Node: "node-1", Force: true}, []string{"force"}},
		{workflows.ShutdownRequest{Node: "node-1", Reason: "again"}, []string{"reason"}},
		{workflows.ShutdownRequest{Node: "node-1", Plan: new(plan.Default())}, []string{"plan"}},
		{workflows.ShutdownRequest{Node: "node-1", Override: &plan.Override{Force: &force}}, []string{"plan"}},
		{workflows.ShutdownRequest{Node: "node-1", Force: true, Reason: "r", Plan: new(plan.Default())}, []string{"force", "reason", "plan"}},
	} {
		r, err := s.Shutdown(ctx, tc.req)
		if err != nil || !r.Joined || !slices.Equal(r.NotApplied, tc.want) {
			t.Errorf("join with %+v: %+v %v; want not applied %v", tc.req, r, err, tc.want)
		}
	}

	f.runs[o.ID].status = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	again, err := s.Shutdown(ctx, workflows.ShutdownRequest{Node: "node-1", Force: true})
	if err != nil || again.Joined || again.RunID == first.RunID {
		t.Errorf("after the run closed: %+v %v, want a new run", again, err)
	}
}

func TestShutdownRefusesBadRequestsWithoutStarting(t *testing.T) {
	f := newFake()
	s := f.starter()
	for _, req := range []workflows.ShutdownRequest{
		{Node: ""},
		{Node: "node 1"},
		{Node: "node-1", Reason: "bad\x1b[2J"},
		{Node: "node-1", Override: &plan.Override{Steps: map[string]plan.StepSettings{"no-such-step": {}}}},
	} {
		if _, err := s.Shutdown(context.Background(), req); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%+v: %v, want ErrBadRequest", req, err)
		}
	}
	if len(f.started) != 0 {
		t.Errorf("a bad request started %d runs", len(f.started))
	}
}

func TestShutdownSaysWhyItCouldNotStart(t *testing.T) {
	f := newFake()
	f.fail["execute"] = serviceerror.NewUnavailable("connection refused")
	if _, err := f.starter().Shutdown(context.Background(), workflows.ShutdownRequest{Node: "node-1"}); err == nil ||
		!strings.Contains(err.Error(), "start shutdown of node-1") {
		t.Errorf("got %v", err)
	}
	f = newFake()
	f.fail["history"] = errors.New("history unavailable")
	if _, err := f.starter().Shutdown(context.Background(), workflows.ShutdownRequest{Node: "node-1"}); err == nil ||
		!strings.Contains(err.Error(), "read the start of") {
		t.Errorf("got %v", err)
	}
}

func TestStatus(t *testing.T) {
	f := newFake()
	s := f.starter()
	ctx := context.Background()
	if _, err := s.Status(ctx, "bad name"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := s.Status(ctx, "node-1"); !errors.Is(err, ErrNoShutdown) {
		t.Errorf("no run: %v", err)
	}
	id := workflows.WorkflowID("node-1")

	r := f.put(&fakeRun{id: id, status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING})
	st, err := s.Status(ctx, "node-1")
	if err != nil || st.Status != "Running" || st.Report != nil || !strings.Contains(st.Error, "progress unavailable") {
		t.Errorf("running, no worker: %+v %v", st, err)
	}
	r.progress = workflows.ShutdownReport{Node: "node-1", Waiting: "lease"}
	st, err = s.Status(ctx, "node-1")
	if err != nil || st.Report == nil || st.Report.Waiting != "lease" || st.Error != "" || st.RunID != r.runID || st.WorkflowID != id {
		t.Errorf("running: %+v %v", st, err)
	}

	r.status, r.result = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, workflows.ShutdownReport{Node: "node-1", Outcome: plan.Degraded}
	st, err = s.Status(ctx, "node-1")
	if err != nil || st.Status != "Completed" || st.Report == nil || st.Report.Outcome != plan.Degraded {
		t.Errorf("completed: %+v %v", st, err)
	}

	r.status, r.err = enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, temporal.NewApplicationError("no node-1 in the cluster", activities.ErrTypeUnknownNode)
	st, err = s.Status(ctx, "node-1")
	if err != nil || st.Status != "Failed" || st.Report != nil || !strings.Contains(st.Error, "unknown node: no node-1") {
		t.Errorf("failed: %+v %v", st, err)
	}

	f.fail["describe"] = serviceerror.NewUnavailable("down")
	if _, err := s.Status(ctx, "node-1"); err == nil || errors.Is(err, ErrNoShutdown) {
		t.Errorf("describe failing: %v", err)
	}
}

func TestExplain(t *testing.T) {
	run := Run{WorkflowID: "farewell-shutdown-node-1"}
	s := newFake().starter()
	for _, tc := range []struct {
		err  error
		is   error
		text string
	}{
		{temporal.NewApplicationError("no such node", activities.ErrTypeUnknownNode), ErrUnknownNode, "unknown node: no such node"},
		{temporal.NewApplicationError("an observer", activities.ErrTypeNotANode), ErrUnknownNode, "unknown node: an observer"},
		{temporal.NewApplicationError("bad plan", workflows.ErrTypeBadRequest), ErrBadRequest, "bad shutdown request: bad plan"},
		{temporal.NewApplicationError("boom", "Other"), nil, "shutdown farewell-shutdown-node-1 failed: boom"},
		{&temporal.TerminatedError{}, nil, "shutdown farewell-shutdown-node-1 was terminated"},
		{temporal.NewCanceledError(), nil, "shutdown farewell-shutdown-node-1 was cancelled"},
		{errors.New("lost"), nil, "shutdown farewell-shutdown-node-1: lost"},
	} {
		got := s.explain(tc.err, run)
		if got.Error() != tc.text || (tc.is != nil && !errors.Is(got, tc.is)) {
			t.Errorf("explain(%v) = %q, want %q (is %v)", tc.err, got, tc.text, tc.is)
		}
	}
}

func TestRetryRunsOnlyWhatDidNotSucceed(t *testing.T) {
	ctx := context.Background()
	id := workflows.WorkflowID("node-1")
	report := func(o plan.Outcome) workflows.ShutdownReport {
		return workflows.ShutdownReport{Node: "node-1", Outcome: o, Reason: "maintenance", RequestedBy: "ops", NodeInstance: "inst-1",
			Steps: []plan.StepResult{{Name: "set-leaving", Status: plan.StepSucceeded}, {Name: "deregister", Status: plan.StepFailed},
				{Name: "stop-services", Status: plan.StepSucceeded}}}
	}

	t.Run("degraded: the steps that succeeded are skipped", func(t *testing.T) {
		f := newFake()
		old := f.put(&fakeRun{id: id, status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, result: report(plan.Degraded)})
		run, rp, err := f.starter().Retry(ctx, "node-1")
		if err != nil || run.Joined || run.RunID == old.runID {
			t.Fatalf("Retry: %+v %v", run, err)
		}
		if rp.Of.RunID != old.runID || rp.Why != "ended degraded" || !slices.Equal(rp.Skip, []string{"set-leaving", "stop-services"}) {
			t.Errorf("plan %+v", rp)
		}
		req := f.runs[id].input.(workflows.ShutdownRequest)
		if req.RetryOf != old.runID || req.RetryInstance != "inst-1" || req.Reason != "retry: maintenance" || req.RequestedBy != "ops" ||
			!slices.Equal(req.SkipSucceeded, rp.Skip) {
			t.Errorf("the retry asked %+v", req)
		}
	})
	t.Run("aborted: everything runs again", func(t *testing.T) {
		f := newFake()
		f.put(&fakeRun{id: id, status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, result: report(plan.Aborted)})
		_, rp, err := f.starter().Retry(ctx, id)
		if err != nil || rp.Skip != nil || !strings.Contains(rp.Why, "rolled back") {
			t.Errorf("aborted: %+v %v", rp, err)
		}
	})
	t.Run("graceful: nothing to retry, nothing started", func(t *testing.T) {
		f := newFake()
		f.put(&fakeRun{id: id, status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, result: report(plan.Graceful)})
		_, _, err := f.starter().Retry(ctx, "node-1")
		if !errors.Is(err, ErrNothingToRetry) || len(f.started) != 0 {
			t.Errorf("graceful: %v, %d started", err, len(f.started))
		}
	})
	t.Run("running: joined", func(t *testing.T) {
		f := newFake()
		r := f.put(&fakeRun{id: id, status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, progress: workflows.ShutdownReport{Node: "node-1"}})
		run, rp, err := f.starter().Retry(ctx, "node-1")
		if err != nil || !run.Joined || run.RunID != r.runID || rp.Of.RunID != r.runID || len(f.started) != 0 {
			t.Errorf("running: %+v %+v %v", run, rp, err)
		}
	})
	t.Run("terminated: what its history shows succeeded stands", func(t *testing.T) {
		h := loadHistory(t, "graceful.json")
		// The run as it stood once its first step completed, then terminated.
		var events []*historypb.HistoryEvent
		for _, e := range h.GetEvents() {
			events = append(events, e)
			if e.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED {
				break
			}
		}
		f := newFake()
		f.put(&fakeRun{id: id, status: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, err: &temporal.TerminatedError{}, events: events})
		j, err := history.Reconstruct(&historypb.History{Events: events})
		if err != nil {
			t.Fatal(err)
		}
		_, rp, err := f.starter().Retry(ctx, "node-1")
		if err != nil || rp.Why != "the run ended Terminated" || len(rp.Skip) != 1 || !slices.Equal(rp.Skip, j.Succeeded()) {
			t.Errorf("terminated: %+v %v (the history shows %v)", rp, err, j.Succeeded())
		}
	})
	t.Run("no run: nothing started", func(t *testing.T) {
		f := newFake()
		if _, _, err := f.starter().Retry(ctx, "node-1"); !errors.Is(err, ErrNoShutdown) || len(f.started) != 0 {
			t.Errorf("no run: %v", err)
		}
	})
}

func loadHistory(t *testing.T, name string) *historypb.History {
	t.Helper()
	file, err := os.Open(filepath.Join("..", "testdata", "histories", name))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	h, err := history.Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSteerAndCancelOnlyARunningShutdown(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	s := f.starter()
	id := workflows.WorkflowID("node-1")
	if err := s.Steer(ctx, "node-1", workflows.UpdateForceNow, "why"); !errors.Is(err, ErrNoShutdown) {
		t.Errorf("no run: %v", err)
	}
	r := f.put(&fakeRun{id: id, status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, result: workflows.ShutdownReport{}})
	if err := s.Steer(ctx, "node-1", workflows.UpdateForceNow, "why"); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "is Completed, not running") {
		t.Errorf("closed: %v", err)
	}
	if _, err := s.Cancel(ctx, "node-1"); !errors.Is(err, ErrRejected) || len(f.cancelled) != 0 {
		t.Errorf("cancel a closed run: %v", err)
	}
	if len(f.updates) != 0 {
		t.Fatalf("updates sent to a closed run: %+v", f.updates)
	}

	r.status, r.progress = enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, workflows.ShutdownReport{}
	if err := s.Steer(ctx, "node-1", workflows.UpdateSkipStep, "deregister"); err != nil {
		t.Errorf("steer: %v", err)
	}
	u := f.updates[0]
	if u.WorkflowID != id || u.RunID != r.runID || u.UpdateName != workflows.UpdateSkipStep || u.Args[0] != "deregister" ||
		u.WaitForStage != client.WorkflowUpdateStageCompleted {
		t.Errorf("update sent: %+v", u)
	}
	f.answer = func(client.UpdateWorkflowOptions) (any, error) {
		return nil, temporal.NewApplicationError("deregister already started", "Rejected")
	}
	if err := s.Steer(ctx, "node-1", workflows.UpdateSkipStep, "deregister"); !errors.Is(err, ErrRejected) ||
		err.Error() != "refused by the shutdown: deregister already started" {
		t.Errorf("refused: %v", err)
	}
	f.answer = nil
	f.fail["update"] = serviceerror.NewUnavailable("down")
	if err := s.Steer(ctx, "node-1", workflows.UpdateSkipStep, "deregister"); err == nil || errors.Is(err, ErrRejected) ||
		!strings.Contains(err.Error(), "on the shutdown of node-1") {
		t.Errorf("unreachable: %v", err)
	}

	if run, err := s.Cancel(ctx, "node-1"); err != nil || run.RunID != r.runID || !slices.Equal(f.cancelled, []string{id + "/" + r.runID}) {
		t.Errorf("cancel: %+v %v %v", run, err, f.cancelled)
	}
	f.fail["cancel"] = errors.New("down")
	if _, err := s.Cancel(ctx, "node-1"); err == nil || !strings.Contains(err.Error(), "cancel the shutdown of node-1") {
		t.Errorf("cancel failing: %v", err)
	}
}

func TestListAsksAndReads(t *testing.T) {
	started := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	exec := func(node string, at time.Duration, closed bool) *workflowpb.WorkflowExecutionInfo {
		e := &workflowpb.WorkflowExecutionInfo{
			Execution: &commonpb.WorkflowExecution{WorkflowId: workflows.WorkflowID(node), RunId: "run-" + node},
			Status:    enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
			StartTime: timestamppb.New(started.Add(at)),
			SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{
				workflows.SearchAttrOutcome: {Data: []byte(`"degraded"`)},
				workflows.SearchAttrStep:    {Data: []byte(`"deregister"`)},
				workflows.SearchAttrSlow:    {Data: []byte(`true`)},
			}},
		}
		if closed {
			e.Status, e.CloseTime = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, timestamppb.New(started.Add(at+time.Minute))
		}
		return e
	}
	f := newFake()
	f.pages = []*workflowservice.ListWorkflowExecutionsResponse{
		{Executions: []*workflowpb.WorkflowExecutionInfo{exec("node-1", 0, true), exec("node-2", 2*time.Second, false)}, NextPageToken: []byte("more")},
		{Executions: []*workflowpb.WorkflowExecutionInfo{exec("node-3", time.Second, true)}},
	}
	s := New(f, Options{Namespace: "ops"})
	got, err := s.List(context.Background(), ListFilter{Node: "node-'1"})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, sum := range got {
		nodes = append(nodes, sum.Node)
	}
	if !slices.Equal(nodes, []string{"node-2", "node-3", "node-1"}) {
		t.Errorf("order %v, want newest first", nodes)
	}
	n1 := got[2]
	if n1.Status != "Completed" || n1.Outcome != "degraded" || n1.Step != "deregister" || !n1.Slow || n1.RunID != "run-node-1" ||
		!n1.Started.Equal(started) || !n1.Closed.Equal(started.Add(time.Minute)) || !got[0].Closed.IsZero() {
		t.Errorf("node-1 reads %+v", n1)
	}
	req := f.lists[0]
	want := "WorkflowType = '" + workflows.WorkflowName + "' AND " + workflows.SearchAttrNode + " = 'node-1'"
	if req.Namespace != "ops" || req.Query != want || req.PageSize != 100 || len(f.lists) != 2 || string(f.lists[1].NextPageToken) != "more" {
		t.Errorf("asked %q in %s, page size %d, %d pages", req.Query, req.Namespace, req.PageSize, len(f.lists))
	}

	for _, tc := range []struct {
		filter ListFilter
		where  string
		size   int32
	}{
		{ListFilter{Open: true}, " AND ExecutionStatus = 'Running'", 100},
		{ListFilter{Closed: true, Limit: 5}, " AND ExecutionStatus != 'Running'", 5},
		{ListFilter{Open: true, Closed: true, Limit: 5000}, "", 1000},
	} {
		f.lists = nil
		if _, err := s.List(context.Background(), tc.filter); err != nil {
			t.Fatal(err)
		}
		if q := f.lists[0].Query; q != "WorkflowType = '"+workflows.WorkflowName+"'"+tc.where || f.lists[0].PageSize != tc.size {
			t.Errorf("%+v: asked %q, page size %d", tc.filter, q, f.lists[0].PageSize)
		}
	}

	f.pages = []*workflowservice.ListWorkflowExecutionsResponse{
		{Executions: []*workflowpb.WorkflowExecutionInfo{exec("a", 0, false), exec("b", time.Second, false)}, NextPageToken: []byte("more")},
		{Executions: []*workflowpb.WorkflowExecutionInfo{exec("c", 2*time.Second, false)}},
	}
	f.lists = nil
	got, err = s.List(context.Background(), ListFilter{Limit: 2})
	if err != nil || len(got) != 2 || len(f.lists) != 1 {
		t.Errorf("limit 2: %d runs in %d pages (%v)", len(got), len(f.lists), err)
	}
	f.fail["list"] = errors.New("down")
	if _, err := s.List(context.Background(), ListFilter{}); err == nil || !strings.Contains(err.Error(), "list shutdowns") {
		t.Errorf("list failing: %v", err)
	}
}

func TestWaitReturnsTheReportAndShowsProgress(t *testing.T) {
	f := newFake()
	s := f.starter()
	id := workflows.WorkflowID("node-1")
	r := f.put(&fakeRun{id: id, status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED,
		result: workflows.ShutdownReport{Node: "node-1", Outcome: plan.Graceful}})
	var seen []plan.Outcome
	report, err := s.Wait(context.Background(), Run{WorkflowID: id, RunID: r.runID}, func(p workflows.ShutdownReport) { seen = append(seen, p.Outcome) })
	if err != nil || report.Outcome != plan.Graceful || !slices.Equal(seen, []plan.Outcome{plan.Graceful}) {
		t.Errorf("Wait: %+v %v, progress %v", report, err, seen)
	}
	// A goroutine of the Wait above may still be reading the run: change it under the lock.
	f.change(r, func(r *fakeRun) {
		r.status, r.err = enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, temporal.NewApplicationError("plan", workflows.ErrTypeBadRequest)
	})
	if _, err := s.Wait(context.Background(), Run{WorkflowID: id, RunID: r.runID}, nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("Wait on a refused run: %v", err)
	}

	// A run still going: its progress is shown as it changes, then its report.
	running := f.put(&fakeRun{id: workflows.WorkflowID("node-2"), status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
		progress: workflows.ShutdownReport{Node: "node-2", Waiting: "lease"}})
	var waits []string
	report, err = s.Wait(context.Background(), Run{WorkflowID: running.id, RunID: running.runID}, func(p workflows.ShutdownReport) {
		waits = append(waits, p.Waiting+"/"+string(p.Outcome))
		if p.Waiting == "lease" { // seen: the run gets its lease and ends
			f.change(running, func(r *fakeRun) {
				r.status, r.result = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, workflows.ShutdownReport{Node: "node-2", Outcome: plan.Graceful}
			})
		}
	})
	if err != nil || report.Outcome != plan.Graceful || !slices.Equal(waits, []string{"lease/", "/graceful"}) {
		t.Errorf("Wait on a running run: %+v %v, progress %v", report, err, waits)
	}
}

func TestProgressKeyChangesWithWhatAPersonSees(t *testing.T) {
	base := workflows.ShutdownReport{Steps: []plan.StepResult{{Name: "deregister", Status: plan.StepRunning}}}
	key := progressKey(&base)
	for name, change := range map[string]func(*workflows.ShutdownReport){
		"a step's status": func(r *workflows.ShutdownReport) {
			r.Steps = []plan.StepResult{{Name: "deregister", Status: plan.StepSucceeded}}
		},
		"the outcome":    func(r *workflows.ShutdownReport) { r.Outcome = plan.Forced },
		"what it awaits": func(r *workflows.ShutdownReport) { r.Waiting = "lease" },
		"a force":        func(r *workflows.ShutdownReport) { r.ForceReason = "asked" },
	} {
		r := base
		change(&r)
		if progressKey(&r) == key {
			t.Errorf("a change of %s is not shown", name)
		}
	}
}

func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{serviceerror.NewUnavailable("down"), true},
		{fmtWrap(status.Error(codes.Unavailable, "x")), true},
		{errors.New("dial tcp 127.0.0.1:7233: connect: connection refused"), true},
		{errors.New("read: connection reset by peer"), true},
		{errors.New("connect: no route to host"), true},
		{errors.New("failed reaching server: last connection error"), true},
		{serviceerror.NewInvalidArgument("bad"), false},
		{fmtWrap(status.Error(codes.PermissionDenied, "x")), false},
		{ErrBadRequest, false},
	} {
		if got := Unavailable(tc.err); got != tc.want {
			t.Errorf("Unavailable(%v) = %v", tc.err, got)
		}
	}
}

func fmtWrap(err error) error { return &wrapped{err} }

type wrapped struct{ err error }

func (w *wrapped) Error() string { return "wrapped: " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }
