package history

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/workflows"
)

// ErrNondeterministic: the current workflow code does not make the decisions the
// history records; running shutdowns of that history would break on it.
var ErrNondeterministic = errors.New("the current code is not deterministic against this history")

// NondeterminismError explains where the current code and the history part ways.
type NondeterminismError struct {
	// Explanation says it in plain words: which event, and what the code did instead.
	Explanation string
	// Raw is the SDK's own message.
	Raw string
}

func (e *NondeterminismError) Error() string { return e.Explanation }

// Is makes it match ErrNondeterministic.
func (e *NondeterminismError) Is(target error) bool { return target == ErrNondeterministic }

// ReplayOptions configure Replay.
type ReplayOptions struct {
	// Workflow is the code to replay against; nil means the current GracefulShutdown.
	// (Tests pass changed code to see how a change would fare.)
	Workflow any
	// Logger receives the replayer's logs; nil discards them.
	Logger *slog.Logger
}

// Replay runs the workflow code against a shutdown's history with the SDK replayer (no
// interceptors: a replay must not emit the run's spans again) and returns what the
// history says happened. A history the code does not reproduce is a
// *NondeterminismError (ErrNondeterministic); a history of something else, ErrBadHistory.
func Replay(h *historypb.History, o ReplayOptions) (*Journal, error) {
	j, err := Reconstruct(h)
	if err != nil {
		return nil, err
	}
	wf := o.Workflow
	if wf == nil {
		wf = workflows.GracefulShutdown
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rec := &commandRecorder{}
	replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		Interceptors: []interceptor.WorkerInterceptor{rec},
	})
	if err != nil {
		return j, err
	}
	replayer.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: workflows.WorkflowName})
	if err := replayer.ReplayWorkflowHistory(sdklog.NewStructuredLogger(logger), h); err != nil {
		if isNondeterminism(err) {
			return j, &NondeterminismError{Explanation: explain(h, rec.calls(), err.Error()), Raw: err.Error()}
		}
		return j, fmt.Errorf("replay: %w", err)
	}
	return j, nil
}

// commandRecorder notes, in order, the activities the workflow code asks for during a
// replay, so that a divergence from the history can be told in plain words. It records;
// it does not trace (a replay must not emit spans).
type commandRecorder struct {
	interceptor.WorkerInterceptorBase
	mu   sync.Mutex
	seen []string
}

func (r *commandRecorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

func (r *commandRecorder) record(what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, what)
}

func (r *commandRecorder) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &recordingInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, rec: r}
}

type recordingInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	rec *commandRecorder
}

func (i *recordingInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	return i.Next.Init(&recordingOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: outbound}, rec: i.rec})
}

type recordingOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	rec *commandRecorder
}

func (o *recordingOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	o.rec.record("activity " + activityType)
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}

func (o *recordingOutbound) ExecuteLocalActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	o.rec.record("local activity " + activityType)
	return o.Next.ExecuteLocalActivity(ctx, activityType, args...)
}

// historyCommands lists, in order, the activities the history records, with the event
// IDs that record them.
func historyCommands(h *historypb.History) (what []string, events []int64) {
	dc := converter.GetDefaultDataConverter()
	for _, e := range h.GetEvents() {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			what = append(what, "activity "+e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName())
			events = append(events, e.GetEventId())
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			a := e.GetMarkerRecordedEventAttributes()
			if a.GetMarkerName() != "LocalActivity" {
				continue
			}
			var data struct{ ActivityType string }
			if dc.FromPayloads(a.GetDetails()["data"], &data) == nil {
				what = append(what, "local activity "+data.ActivityType)
				events = append(events, e.GetEventId())
			}
		}
	}
	return what, events
}

// explain says where the code and the history part ways: the first activity the code
// asked for that the history does not have at that place.
func explain(h *historypb.History, code []string, raw string) string {
	hist, events := historyCommands(h)
	for i := range max(len(hist), len(code)) {
		switch {
		case i >= len(code):
			return fmt.Sprintf("not deterministic at event %d: the history records %s there, but the current code stops before it (a step was removed)",
				events[i], hist[i])
		case i >= len(hist):
			return fmt.Sprintf("not deterministic after event %d: the current code asks for %s, which the history does not have (a step was added)",
				lastOr(events, 0), code[i])
		case hist[i] != code[i]:
			return fmt.Sprintf("not deterministic at event %d: the history records %s there, but the current code asks for %s instead",
				events[i], hist[i], code[i])
		}
	}
	return explainNondeterminism(raw)
}

func lastOr(s []int64, def int64) int64 {
	if len(s) == 0 {
		return def
	}
	return s[len(s)-1]
}

func isNondeterminism(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "TMPRL1100") || strings.Contains(msg, "nondeterministic") || strings.Contains(msg, "non-deterministic")
}

var (
	reHistoryVsReplay = regexp.MustCompile(`history event is (\w+)[^,]*?(?:ActivityType:\(?(?:Name:)?(\w+))?.*?replay command is (\w+)[^,]*?(?:ActivityType:\(?(?:Name:)?(\w+))?`)
	reActivityTypes   = regexp.MustCompile(`ActivityType:\s*\(?\s*Name:\s*(\w+)`)
	reLocalActivity   = regexp.MustCompile(`code executed local activity (\w+), but history event found (\w+)`)
	reMissingCommand  = regexp.MustCompile(`(?i)history event is (\w+).*?(?:no|missing) (?:replay )?command`)
	reEventID         = regexp.MustCompile(`(?i)(?:EventId|event id|eventID)[:= ]+(\d+)`)
)

// explainNondeterminism turns the SDK's [TMPRL1100] message into plain words.
func explainNondeterminism(raw string) string {
	where := ""
	if m := reEventID.FindStringSubmatch(raw); m != nil {
		where = " at event " + m[1]
	}
	if m := reLocalActivity.FindStringSubmatch(raw); m != nil {
		return fmt.Sprintf("not deterministic%s: the history records local activity %s there, but the current code runs local activity %s",
			where, m[2], m[1])
	}
	if m := reHistoryVsReplay.FindStringSubmatch(raw); m != nil {
		history, command := m[1], m[3]
		if acts := reActivityTypes.FindAllStringSubmatch(raw, -1); len(acts) >= 2 {
			return fmt.Sprintf("not deterministic%s: the history records %s of activity %s there, but the current code issues %s of activity %s",
				where, history, acts[0][1], command, acts[1][1])
		}
		return fmt.Sprintf("not deterministic%s: the history records %s there, but the current code issues %s", where, history, command)
	}
	if m := reMissingCommand.FindStringSubmatch(raw); m != nil {
		return fmt.Sprintf("not deterministic%s: the history records %s, but the current code issues nothing for it (a step was removed or reordered)", where, m[1])
	}
	if strings.Contains(raw, "missing replay command") || strings.Contains(raw, "lookup failed") {
		return "not deterministic: the current code issues a command the history does not have (a step was added or reordered): " + raw
	}
	return "not deterministic: " + raw
}
