package history

import (
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

// builder writes a history event by event.
type builder struct {
	t      *testing.T
	h      historypb.History
	at     time.Time
	nextID int64
}

func newBuilder(t *testing.T, req workflows.ShutdownRequest) *builder {
	b := &builder{t: t, at: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nextID: 1}
	b.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, func(e *historypb.HistoryEvent) {
		e.Attributes = &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
			WorkflowType: &commonpb.WorkflowType{Name: workflows.WorkflowName}, Input: b.payloads(req), OriginalExecutionRunId: "run-1",
			WorkflowId: workflows.WorkflowID(req.Node),
		}}
	})
	return b
}

func (b *builder) payloads(v any) *commonpb.Payloads {
	p, err := converter.GetDefaultDataConverter().ToPayloads(v)
	if err != nil {
		b.t.Fatal(err)
	}
	return p
}

func (b *builder) add(typ enumspb.EventType, fill func(*historypb.HistoryEvent)) int64 {
	b.at = b.at.Add(100 * time.Millisecond)
	e := &historypb.HistoryEvent{EventId: b.nextID, EventType: typ, EventTime: timestamppb.New(b.at)}
	fill(e)
	b.h.Events = append(b.h.Events, e)
	b.nextID++
	return e.EventId
}

func (b *builder) schedule(activity string) int64 {
	return b.add(enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, func(e *historypb.HistoryEvent) {
		e.Attributes = &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
			ActivityType: &commonpb.ActivityType{Name: activity}}}
	})
}

func (b *builder) start(scheduled int64) {
	b.add(enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED, func(e *historypb.HistoryEvent) {
		e.Attributes = &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{
			ScheduledEventId: scheduled, Attempt: 1}}
	})
}

func (b *builder) complete(scheduled int64) {
	b.add(enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, func(e *historypb.HistoryEvent) {
		e.Attributes = &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{
			ScheduledEventId: scheduled, Result: b.payloads(activities.StepOutput{Attempt: 1, Note: "done late"})}}
	})
}

// A step whose close event comes after later steps were appended to the journal (a
// step cut short by force-now closes late) is still recorded as it ended.
func TestReconstructLateCloseEvent(t *testing.T) {
	b := newBuilder(t, workflows.ShutdownRequest{Node: "node-3"})
	first := b.schedule("SetGracefullyLeft")
	b.start(first)
	second := b.schedule("StopHeartbeat")
	b.start(second)
	third := b.schedule("Terminate")
	b.start(third)
	b.complete(first) // late: two steps were appended since
	b.complete(second)
	b.complete(third)
	j, err := Reconstruct(&b.h)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]JournalStep{}
	for _, s := range j.Steps {
		got[s.Name] = s
	}
	if s := got[plan.SetGracefullyLeft]; s.Status != plan.StepSucceeded || s.Note != "done late" || s.Attempts != 1 {
		t.Errorf("the late-closed step: %+v", s)
	}
	if !j.Terminated || j.Node != "node-3" {
		t.Errorf("journal %+v", j)
	}
	if succeeded := j.Succeeded(); len(succeeded) != 2 || succeeded[0] != plan.SetGracefullyLeft {
		t.Errorf("a retry would skip %v", succeeded)
	}
}
