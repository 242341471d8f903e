package starter

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
)

// fakeTemporal is the part of Temporal's client the starter calls, over runs held in
// memory: enough to check what the starter asks and how it reads the answers. The
// starter against a real server is tested in e2e; these tests pin its own rules (what
// joins, what is refused, how an error reads). A method the starter does not call
// panics (the embedded client is nil).
type fakeTemporal struct {
	client.Client

	mu      sync.Mutex
	runs    map[string]*fakeRun // the latest run, by workflow ID
	nextRun int

	started   []client.StartWorkflowOptions
	withStart []client.StartWorkflowOptions // the starts of update-with-start calls
	updates   []client.UpdateWorkflowOptions
	signals   []fakeSignal
	cancelled []string
	queries   []string // workflow ID/run ID of each query
	lists     []*workflowservice.ListWorkflowExecutionsRequest

	// fail makes the named call fail: "execute", "update", "signal", "describe",
	// "query", "cancel", "list", "history", "tq".
	fail map[string]error
	// answer is what an update returns (nil: nothing, no error).
	answer func(client.UpdateWorkflowOptions) (any, error)
	// pages are what List returns, one per call.
	pages []*workflowservice.ListWorkflowExecutionsResponse
	// pollers on every task queue.
	pollers int
	// onStart, if set, sees every new run as it starts (to end it at once).
	onStart func(*fakeRun)
}

type fakeRun struct {
	id, runID string
	status    enumspb.WorkflowExecutionStatus
	input     any   // the first argument it started with
	result    any   // what Get returns once completed
	err       error // what Get returns when it did not complete
	progress  any   // the progress query's answer; nil makes the query fail
	events    []*historypb.HistoryEvent
}

type fakeSignal struct {
	ID, Name string
	Arg      any
}

func newFake() *fakeTemporal {
	return &fakeTemporal{runs: map[string]*fakeRun{}, fail: map[string]error{}}
}

func (f *fakeTemporal) starter() *Starter { return New(f, Options{}) }

// put records a run as the latest of its workflow ID.
func (f *fakeTemporal) put(r *fakeRun) *fakeRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.runID == "" {
		f.nextRun++
		r.runID = fmt.Sprintf("run-%d", f.nextRun)
	}
	f.runs[r.id] = r
	return r
}

// run is the latest run of id as it stands now: a copy, taken under the lock (tests
// change runs under it while the starter reads them).
func (f *fakeTemporal) run(id string) (fakeRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.runs[id]
	if !ok {
		return fakeRun{}, serviceerror.NewNotFound("workflow not found for ID: " + id)
	}
	return *r, nil
}

// change changes a run under the lock.
func (f *fakeTemporal) change(r *fakeRun, do func(*fakeRun)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	do(r)
}

// failure is the error the named call returns: the context's, when it is done (as a
// real client's call fails), or one injected.
func (f *fakeTemporal) failure(ctx context.Context, call string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail[call]
}

func (f *fakeTemporal) ExecuteWorkflow(ctx context.Context, o client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
	if err := f.failure(ctx, "execute"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.started = append(f.started, o)
	var prev fakeRun
	p, ok := f.runs[o.ID]
	if ok {
		prev = *p
	}
	f.mu.Unlock()
	if ok && prev.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		// As the SDK does: a run already going is handed back as if started, unless the
		// caller asked for the error (a USE_EXISTING policy hands it back on purpose).
		if o.WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING && o.WorkflowExecutionErrorWhenAlreadyStarted {
			return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "", prev.runID)
		}
		return fakeHandle{f, prev.id, prev.runID}, nil
	}
	var input any
	if len(args) > 0 {
		input = args[0]
	}
	r := &fakeRun{id: o.ID, status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, input: input}
	if f.onStart != nil {
		f.onStart(r)
	}
	f.put(r)
	return fakeHandle{f, r.id, r.runID}, nil
}

func (f *fakeTemporal) GetWorkflow(ctx context.Context, id, runID string) client.WorkflowRun {
	return fakeHandle{f, id, runID}
}

func (f *fakeTemporal) GetWorkflowHistory(ctx context.Context, id, runID string, _ bool, _ enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	r, err := f.run(id)
	if err == nil {
		err = f.failure(ctx, "history")
	}
	if err != nil {
		return &fakeEvents{err: err}
	}
	if len(r.events) > 0 {
		return &fakeEvents{events: r.events}
	}
	payloads, err := converter.GetDefaultDataConverter().ToPayloads(r.input)
	if err != nil {
		return &fakeEvents{err: err}
	}
	return &fakeEvents{events: []*historypb.HistoryEvent{{
		EventId:   1,
		EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
			WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
				WorkflowType: &commonpb.WorkflowType{Name: "fake"}, Input: payloads,
			},
		},
	}}}
}

func (f *fakeTemporal) DescribeWorkflowExecution(ctx context.Context, id, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	if err := f.failure(ctx, "describe"); err != nil {
		return nil, err
	}
	r, err := f.run(id)
	if err != nil {
		return nil, err
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: r.id, RunId: r.runID},
		Status:    r.status,
	}}, nil
}

func (f *fakeTemporal) QueryWorkflow(ctx context.Context, id, runID, _ string, _ ...any) (converter.EncodedValue, error) {
	f.mu.Lock()
	f.queries = append(f.queries, id+"/"+runID)
	f.mu.Unlock()
	if err := f.failure(ctx, "query"); err != nil {
		return nil, err
	}
	r, err := f.run(id)
	if err != nil {
		return nil, err
	}
	if r.progress == nil {
		return nil, fmt.Errorf("no worker answers queries of %s", id)
	}
	return fakeValue{r.progress}, nil
}

func (f *fakeTemporal) UpdateWorkflow(ctx context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	f.mu.Lock()
	f.updates = append(f.updates, o)
	f.mu.Unlock()
	if err := f.failure(ctx, "update"); err != nil {
		return nil, err
	}
	if _, err := f.run(o.WorkflowID); err != nil {
		return nil, err
	}
	return f.answerUpdate(o), nil
}

func (f *fakeTemporal) answerUpdate(o client.UpdateWorkflowOptions) fakeUpdate {
	if f.answer == nil {
		return fakeUpdate{}
	}
	v, err := f.answer(o)
	return fakeUpdate{v, err}
}

func (f *fakeTemporal) NewWithStartWorkflowOperation(o client.StartWorkflowOptions, _ any, _ ...any) client.WithStartWorkflowOperation {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.withStart = append(f.withStart, o)
	return nil
}

func (f *fakeTemporal) UpdateWithStartWorkflow(ctx context.Context, o client.UpdateWithStartWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	f.mu.Lock()
	f.updates = append(f.updates, o.UpdateOptions)
	f.mu.Unlock()
	if err := f.failure(ctx, "update"); err != nil {
		return nil, err
	}
	return f.answerUpdate(o.UpdateOptions), nil
}

func (f *fakeTemporal) SignalWorkflow(ctx context.Context, id, _ string, name string, arg any) error {
	f.mu.Lock()
	f.signals = append(f.signals, fakeSignal{id, name, arg})
	f.mu.Unlock()
	return f.failure(ctx, "signal")
}

func (f *fakeTemporal) SignalWithStartWorkflow(ctx context.Context, id, name string, arg any, _ client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	f.signals = append(f.signals, fakeSignal{id, name, arg})
	f.mu.Unlock()
	if err := f.failure(ctx, "signal"); err != nil {
		return nil, err
	}
	return fakeHandle{f, id, "budget-run"}, nil
}

func (f *fakeTemporal) CancelWorkflow(ctx context.Context, id, runID string) error {
	f.mu.Lock()
	f.cancelled = append(f.cancelled, id+"/"+runID)
	f.mu.Unlock()
	return f.failure(ctx, "cancel")
}

func (f *fakeTemporal) ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	if err := f.failure(ctx, "list"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, req)
	if len(f.pages) == 0 {
		return &workflowservice.ListWorkflowExecutionsResponse{}, nil
	}
	page := f.pages[0]
	f.pages = f.pages[1:]
	return page, nil
}

func (f *fakeTemporal) DescribeTaskQueue(ctx context.Context, _ string, _ enumspb.TaskQueueType) (*workflowservice.DescribeTaskQueueResponse, error) {
	if err := f.failure(ctx, "tq"); err != nil {
		return nil, err
	}
	resp := &workflowservice.DescribeTaskQueueResponse{}
	for range f.pollers {
		resp.Pollers = append(resp.Pollers, &taskqueuepb.PollerInfo{})
	}
	return resp, nil
}

// fakeHandle is a run as ExecuteWorkflow and GetWorkflow return it.
type fakeHandle struct {
	f         *fakeTemporal
	id, runID string
}

func (h fakeHandle) GetID() string                  { return h.id }
func (h fakeHandle) GetRunID() string               { return h.runID }
func (h fakeHandle) GetFirstExecutionRunID() string { return h.runID }

// Get waits, as the SDK's does, for the run to close (the fake looks every few
// milliseconds), then returns its result or its error.
func (h fakeHandle) Get(ctx context.Context, v any) error {
	for {
		r, err := h.f.run(h.id)
		if err != nil {
			return err
		}
		if r.status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			if r.err != nil {
				return r.err
			}
			return fakeValue{r.result}.Get(v)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}
func (h fakeHandle) GetWithOptions(ctx context.Context, v any, _ client.WorkflowRunGetOptions) error {
	return h.Get(ctx, v)
}

// fakeValue is an answer as the SDK decodes it: through JSON.
type fakeValue struct{ v any }

func (e fakeValue) HasValue() bool { return e.v != nil }
func (e fakeValue) Get(ptr any) error {
	if ptr == nil || e.v == nil {
		return nil
	}
	b, err := json.Marshal(e.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, ptr)
}

type fakeUpdate struct {
	v   any
	err error
}

func (u fakeUpdate) WorkflowID() string { return "" }
func (u fakeUpdate) RunID() string      { return "" }
func (u fakeUpdate) UpdateID() string   { return "" }
func (u fakeUpdate) Get(_ context.Context, ptr any) error {
	if u.err != nil {
		return u.err
	}
	return fakeValue{u.v}.Get(ptr)
}

type fakeEvents struct {
	events []*historypb.HistoryEvent
	err    error
}

func (it *fakeEvents) HasNext() bool { return it.err != nil || len(it.events) > 0 }
func (it *fakeEvents) Next() (*historypb.HistoryEvent, error) {
	if it.err != nil {
		err := it.err
		it.err = nil
		return nil, err
	}
	e := it.events[0]
	it.events = it.events[1:]
	return e, nil
}
