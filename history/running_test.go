package history

import (
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

// prefix is the history as it stood once event i was written: a run still going.
func prefix(h *historypb.History, i int) *historypb.History {
	return &historypb.History{Events: h.GetEvents()[:i+1]}
}

// A run's journal follows it while it runs: cut any committed history just after a
// step's activity closed, and the journal already says how that step ended — succeeded
// after the attempt the server counted, failed or timed out with its error — before the
// run's report exists to say it.
func TestAJournalFollowsARunStillGoing(t *testing.T) {
	dc := converter.GetDefaultDataConverter()
	checked := 0
	for name, file := range histories(t) {
		t.Run(name, func(t *testing.T) {
			h := parseFile(t, file)
			step := map[int64]string{} // a step's activity, by its scheduled event
			attempt := map[int64]int{} // the attempt that started it
			for i, e := range h.GetEvents() {
				var scheduled int64
				var want plan.StepStatus
				switch e.GetEventType() {
				case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
					a := e.GetActivityTaskScheduledEventAttributes()
					switch activity := a.GetActivityType().GetName(); activity {
					case "SetGracefullyLeft", "StopHeartbeat", "Deregister", "StopServices":
						step[e.GetEventId()] = map[string]string{"SetGracefullyLeft": plan.SetGracefullyLeft,
							"StopHeartbeat": plan.StopHeartbeat, "Deregister": plan.Deregister, "StopServices": plan.StopServices}[activity]
					case "RunHostStep": // a host's own step: its input names it
						var in activities.StepInput
						if dc.FromPayloads(a.GetInput(), &in) == nil {
							step[e.GetEventId()] = in.Step
						}
					}
					continue
				case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
					a := e.GetActivityTaskStartedEventAttributes()
					attempt[a.GetScheduledEventId()] = int(a.GetAttempt())
					continue
				case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
					scheduled, want = e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId(), plan.StepSucceeded
				case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
					scheduled, want = e.GetActivityTaskFailedEventAttributes().GetScheduledEventId(), plan.StepFailed
				case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
					scheduled, want = e.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId(), plan.StepTimedOut
				default:
					continue
				}
				name, ok := step[scheduled]
				if !ok {
					continue
				}
				j, err := Reconstruct(prefix(h, i))
				if err != nil {
					t.Fatal(err)
				}
				if j.Status != "Running" || j.WorkflowID != workflows.WorkflowID(j.Node) {
					t.Errorf("after event %d: status %s, workflow %q", e.GetEventId(), j.Status, j.WorkflowID)
				}
				var got JournalStep
				for _, s := range j.Steps {
					if s.Name == name {
						got = s
					}
				}
				checked++
				if got.Status != want || (want == plan.StepSucceeded) != (got.Error == "") {
					t.Errorf("after event %d, %s: %s %q; want %s", e.GetEventId(), name, got.Status, got.Error, want)
				}
				if want == plan.StepSucceeded && got.Attempts != attempt[scheduled] {
					t.Errorf("after event %d, %s: %d attempts; the server started attempt %d", e.GetEventId(), name, got.Attempts, attempt[scheduled])
				}
			}
		})
	}
	if checked < len(histories(t)) {
		t.Errorf("only %d steps' ends found in the committed histories", checked)
	}
}

// A journal names the run's workflow as its start event says (a run started by
// another tool may have any ID), and, in a history exported without it (older servers
// and tools leave it out), as the starter names a node's shutdown.
func TestAJournalNamesItsWorkflow(t *testing.T) {
	for id, want := range map[string]string{"ops-retire-node-1": "ops-retire-node-1", "": workflows.WorkflowID("node-1")} {
		h := proto.Clone(parseFile(t, histories(t)["graceful"])).(*historypb.History)
		h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().WorkflowId = id
		j, err := Reconstruct(h)
		if err != nil {
			t.Fatal(err)
		}
		if j.WorkflowID != want || j.Node != "node-1" {
			t.Errorf("start naming %q: workflow %q of node %q, want %q", id, j.WorkflowID, j.Node, want)
		}
	}
}

// A convergence check that failed or timed out as an activity is in the journal with
// its error (none of the committed runs had one: each is made here from a check that
// completed).
func TestAJournalTellsAFailedConvergenceCheck(t *testing.T) {
	h := parseFile(t, histories(t)["graceful"])
	checks := 0
	for i, e := range h.GetEvents() {
		a := e.GetActivityTaskCompletedEventAttributes()
		if a == nil {
			continue
		}
		scheduled := h.GetEvents()[a.GetScheduledEventId()-1]
		if scheduled.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() != "VerifyConvergence" {
			continue
		}
		checks++
		fail := &failurepb.Failure{Message: "no member answered"}
		for _, closing := range []*historypb.HistoryEvent{
			{EventId: e.GetEventId(), EventTime: e.GetEventTime(), EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED,
				Attributes: &historypb.HistoryEvent_ActivityTaskFailedEventAttributes{ActivityTaskFailedEventAttributes: &historypb.ActivityTaskFailedEventAttributes{
					ScheduledEventId: a.GetScheduledEventId(), StartedEventId: a.GetStartedEventId(), Failure: fail}}},
			{EventId: e.GetEventId(), EventTime: e.GetEventTime(), EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
				Attributes: &historypb.HistoryEvent_ActivityTaskTimedOutEventAttributes{ActivityTaskTimedOutEventAttributes: &historypb.ActivityTaskTimedOutEventAttributes{
					ScheduledEventId: a.GetScheduledEventId(), StartedEventId: a.GetStartedEventId(), Failure: fail}}},
		} {
			events := append(append([]*historypb.HistoryEvent{}, h.GetEvents()[:i]...), closing)
			j, err := Reconstruct(&historypb.History{Events: events})
			if err != nil {
				t.Fatal(err)
			}
			n := len(j.Convergence)
			if n == 0 || j.Convergence[n-1].Error != "no member answered" || j.Convergence[n-1].Converged {
				t.Errorf("%s: checks %+v; want the last with its error", closing.GetEventType(), j.Convergence)
			}
		}
	}
	if checks == 0 {
		t.Fatal("the history has no convergence check run as an activity")
	}
}

// A lookup that failed is the journal's error as soon as it is recorded.
func TestAJournalTellsAFailedLookup(t *testing.T) {
	h := parseFile(t, histories(t)["unknown-node"])
	for i, e := range h.GetEvents() {
		if e.GetMarkerRecordedEventAttributes().GetFailure() == nil {
			continue
		}
		j, err := Reconstruct(prefix(h, i))
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != "Running" || !strings.Contains(j.Error, "unknown node") {
			t.Errorf("after the failed lookup: status %s, error %q", j.Status, j.Error)
		}
		return
	}
	t.Fatal("the unknown-node history has no failed lookup")
}
