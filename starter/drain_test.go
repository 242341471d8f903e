package starter

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/workflows"
)

func drainRequest(name string) workflows.DrainRequest {
	return workflows.DrainRequest{Name: name, Selector: activities.Selector{Nodes: []string{"node-1", "node-2"}}}
}

func TestDrainStartsOnceByName(t *testing.T) {
	f := newFake()
	s := f.starter()
	ctx := context.Background()
	if _, err := s.Drain(ctx, workflows.DrainRequest{Name: "bad name"}); !errors.Is(err, ErrBadRequest) || len(f.started) != 0 {
		t.Errorf("bad request: %v", err)
	}
	run, err := s.Drain(ctx, drainRequest("rack-1"))
	if err != nil || run.Name != "rack-1" || run.WorkflowID != workflows.DrainID("rack-1") || run.RunID == "" {
		t.Fatalf("drain: %+v %v", run, err)
	}
	if o := f.started[0]; o.WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL || !o.WorkflowExecutionErrorWhenAlreadyStarted || o.TaskQueue != workflows.TaskQueue {
		t.Errorf("started with %+v", o)
	}
	if _, err := s.Drain(ctx, drainRequest("rack-1")); !errors.Is(err, ErrDrainRunning) || !strings.Contains(err.Error(), "farewell drain status rack-1") {
		t.Errorf("a second drain of that name: %v", err)
	}
	f.runs[run.WorkflowID].status = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	if again, err := s.Drain(ctx, drainRequest("rack-1")); err != nil || again.RunID == run.RunID {
		t.Errorf("the name used again after it finished: %+v %v", again, err)
	}
	f.fail["execute"] = errors.New("down")
	if _, err := s.Drain(ctx, drainRequest("rack-2")); err == nil || errors.Is(err, ErrDrainRunning) || !strings.Contains(err.Error(), "start the drain rack-2") {
		t.Errorf("unreachable: %v", err)
	}
}

func TestDrainErrorsSayWhy(t *testing.T) {
	plan := activities.DrainPlan{Serving: 3, InFlight: 1}
	refused := drainError(temporal.NewApplicationError("node-9 is unknown", activities.ErrTypeDrainRefused, plan), "rack-1")
	var re *DrainRefusedError
	if !errors.As(refused, &re) || !errors.Is(refused, ErrDrainRefused) || re.Plan.Serving != 3 || re.Plan.InFlight != 1 || re.Error() != "node-9 is unknown" {
		t.Errorf("refused: %v %+v", refused, re)
	}
	for _, tc := range []struct {
		err  error
		is   error
		text string
	}{
		{temporal.NewApplicationError("bad selector", workflows.ErrTypeBadRequest), ErrBadRequest, "bad shutdown request: bad selector"},
		{temporal.NewApplicationError("boom", "Other"), nil, "drain rack-1 failed: boom"},
		{errors.New("lost"), nil, "drain rack-1: lost"},
	} {
		got := drainError(tc.err, "rack-1")
		if got.Error() != tc.text || (tc.is != nil && !errors.Is(got, tc.is)) || errors.Is(got, ErrDrainRefused) {
			t.Errorf("drainError(%v) = %q, want %q", tc.err, got, tc.text)
		}
	}
}

func TestDrainPreflight(t *testing.T) {
	f := newFake()
	s := f.starter()
	if _, err := s.DrainPreflight(context.Background(), workflows.DrainRequest{Name: "x"}); !errors.Is(err, ErrBadRequest) || len(f.started) != 0 {
		t.Errorf("bad request: %v", err)
	}
	f.onStart = func(r *fakeRun) {
		r.status, r.result = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, activities.DrainPlan{Serving: 5}
	}
	p, err := s.DrainPreflight(context.Background(), drainRequest("rack-1"))
	if err != nil || p.Serving != 5 || len(f.started) != 1 {
		t.Fatalf("preflight: %+v %v, %d started", p, err, len(f.started))
	}
	o := f.started[0]
	prefix := strings.TrimSuffix(workflows.DrainPreflightID("rack-1", 0), "0")
	if !strings.HasPrefix(o.ID, prefix) || o.WorkflowExecutionTimeout != 5*time.Minute ||
		o.WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL {
		t.Errorf("the dry run starts as %+v", o)
	}
	f.onStart = func(r *fakeRun) {
		r.status, r.err = enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, temporal.NewApplicationError("nothing chosen", activities.ErrTypeDrainRefused)
	}
	if _, err := s.DrainPreflight(context.Background(), drainRequest("rack-1")); !errors.Is(err, ErrDrainRefused) {
		t.Errorf("refused: %v", err)
	}
	f.fail["execute"] = errors.New("down")
	if _, err := s.DrainPreflight(context.Background(), drainRequest("rack-1")); err == nil || !strings.Contains(err.Error(), "start the dry run") {
		t.Errorf("unreachable: %v", err)
	}
}

func TestDrainStatus(t *testing.T) {
	f := newFake()
	s := f.starter()
	ctx := context.Background()
	if _, err := s.DrainStatus(ctx, "rack-1"); !errors.Is(err, ErrNoDrain) {
		t.Errorf("no drain: %v", err)
	}
	id := workflows.DrainID("rack-1")
	r := f.put(&fakeRun{id: id, status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING})
	st, err := s.DrainStatus(ctx, "rack-1")
	if err != nil || st.Report != nil || !strings.Contains(st.Error, "progress unavailable") {
		t.Errorf("running, no worker: %+v %v", st, err)
	}
	r.progress = workflows.DrainReport{Name: "rack-1", Phase: "running"}
	st, err = s.DrainStatus(ctx, "rack-1")
	if err != nil || st.Report == nil || st.Report.Phase != "running" || st.Status != "Running" || st.RunID != r.runID || st.Error != "" {
		t.Errorf("running: %+v %v", st, err)
	}
	if q := f.queries[len(f.queries)-1]; q != id+"/" {
		t.Errorf("progress asked of %q: a drain's progress follows it into its next run (no run ID)", q)
	}
	r.status, r.result = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, workflows.DrainReport{Name: "rack-1", Outcome: "completed"}
	if st, err := s.DrainStatus(ctx, "rack-1"); err != nil || st.Report == nil || st.Report.Outcome != "completed" {
		t.Errorf("completed: %+v %v", st, err)
	}
	r.status, r.err = enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, temporal.NewApplicationError("node-9 unknown", activities.ErrTypeDrainRefused)
	if st, err := s.DrainStatus(ctx, "rack-1"); err != nil || st.Error != "node-9 unknown" {
		t.Errorf("refused: %+v %v", st, err)
	}
	f.fail["describe"] = errors.New("down")
	if _, err := s.DrainStatus(ctx, "rack-1"); err == nil || errors.Is(err, ErrNoDrain) {
		t.Errorf("describe failing: %v", err)
	}
}

func TestSteerDrainSaysWhyItWasRefused(t *testing.T) {
	f := newFake()
	s := f.starter()
	ctx := context.Background()
	if err := s.SteerDrain(ctx, "rack-1", workflows.UpdateDrainPause, "why"); !errors.Is(err, ErrNoDrain) {
		t.Errorf("no drain: %v", err)
	}
	r := f.put(&fakeRun{id: workflows.DrainID("rack-1"), status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING})
	if err := s.SteerDrain(ctx, "rack-1", workflows.UpdateDrainPause, "why"); err != nil {
		t.Errorf("pause: %v", err)
	}
	if u := f.updates[len(f.updates)-1]; u.WorkflowID != r.id || u.RunID != "" || u.UpdateName != workflows.UpdateDrainPause {
		t.Errorf("sent %+v", u)
	}
	for _, tc := range []struct {
		answer error
		is     error
		text   string
	}{
		{temporal.NewApplicationError("already paused", "Rejected"), ErrRejected, "refused by the shutdown: already paused"},
		{errors.New("workflow execution already completed"), ErrRejected, "the drain rack-1 already finished"},
		{serviceerror.NewNotFound("update of a closed run"), ErrRejected, "the drain rack-1 already finished (Completed)"},
		{errors.New("down"), nil, workflows.UpdateDrainPause + " on the drain rack-1: down"},
	} {
		f.answer = func(client.UpdateWorkflowOptions) (any, error) { return nil, tc.answer }
		var notFound *serviceerror.NotFound
		if errors.As(tc.answer, &notFound) { // the run closed while the update was on its way
			f.change(r, func(r *fakeRun) { r.status = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED })
		}
		err := s.SteerDrain(ctx, "rack-1", workflows.UpdateDrainPause, "why")
		if err == nil || !strings.Contains(err.Error(), tc.text) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("answer %v: %v, want %q", tc.answer, err, tc.text)
		}
	}
}

func TestWaitDrainStartedAndWaitDrain(t *testing.T) {
	f := newFake()
	s := f.starter()
	id := workflows.DrainID("rack-1")
	r := f.put(&fakeRun{id: id, status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, progress: workflows.DrainReport{Phase: "preflight"}})
	run := DrainRun{Name: "rack-1", WorkflowID: id, RunID: r.runID}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := s.WaitDrainStarted(ctx, run)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "has not got past its pre-flight") {
		t.Errorf("still in its pre-flight: %v", err)
	}
	r.progress = workflows.DrainReport{Phase: "running", Nodes: []workflows.DrainNode{{Node: "node-1"}}}
	bounded, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitDrainStarted(bounded, run); err != nil {
		t.Errorf("running: %v", err)
	}

	var seen []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		report, err := s.WaitDrain(bounded, run, func(r workflows.DrainReport) { seen = append(seen, r.Phase) })
		if err != nil || report.Phase != "done" {
			t.Errorf("WaitDrain: %+v %v", report, err)
		}
	}()
	f.change(r, func(r *fakeRun) {
		r.status, r.result = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, workflows.DrainReport{Phase: "done"}
	})
	<-done
	if len(seen) == 0 || seen[len(seen)-1] != "done" {
		t.Errorf("progress seen %v", seen)
	}

	f.change(r, func(r *fakeRun) {
		r.status, r.err = enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, temporal.NewApplicationError("node-9 unknown", activities.ErrTypeDrainRefused)
	})
	if err := s.WaitDrainStarted(bounded, run); !errors.Is(err, ErrDrainRefused) {
		t.Errorf("refused: %v", err)
	}
	if _, err := s.WaitDrain(bounded, run, nil); err == nil || !strings.Contains(err.Error(), "drain rack-1 ended Failed: node-9 unknown") {
		t.Errorf("WaitDrain on a refused drain: %v", err)
	}
	if _, err := s.WaitDrain(bounded, DrainRun{Name: "none"}, nil); !errors.Is(err, ErrNoDrain) {
		t.Errorf("WaitDrain on no drain: %v", err)
	}
}

func TestDrainKeyChangesWithWhatAPersonSees(t *testing.T) {
	base := workflows.DrainReport{Nodes: []workflows.DrainNode{{Node: "node-1", State: "running"}}, MaxParallel: 2}
	key := drainKey(&base)
	for name, change := range map[string]func(*workflows.DrainReport){
		"a node's state": func(r *workflows.DrainReport) { r.Nodes = []workflows.DrainNode{{Node: "node-1", State: "done"}} },
		"a node's outcome": func(r *workflows.DrainReport) {
			r.Nodes = []workflows.DrainNode{{Node: "node-1", State: "running", Outcome: "forced"}}
		},
		"a pause":        func(r *workflows.DrainReport) { r.Paused = "ops" },
		"an abort":       func(r *workflows.DrainReport) { r.Aborted = "ops" },
		"a stop":         func(r *workflows.DrainReport) { r.Stopped = "failures" },
		"what it awaits": func(r *workflows.DrainReport) { r.Waiting = "lease" },
		"its cap":        func(r *workflows.DrainReport) { r.MaxParallel = 3 },
	} {
		r := base
		change(&r)
		if drainKey(&r) == key {
			t.Errorf("a change of %s is not shown", name)
		}
	}
}
