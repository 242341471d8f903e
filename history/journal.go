package starter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/workflows"
)

// Errors of history handling, tested with errors.Is.
var (
	// ErrBadHistory: the input is not a readable history, or not of a shutdown.
	ErrBadHistory = errors.New("not a shutdown history")
	// ErrNoSuchRun: no workflow or run of that ID.
	ErrNoSuchRun = errors.New("no such shutdown")
)

// WorkflowIDFor accepts a workflow ID or a node name and returns the workflow ID.
func WorkflowIDFor(idOrNode string) string {
	if _, ok := workflows.NodeFromWorkflowID(idOrNode); ok {
		return idOrNode
	}
	return workflows.WorkflowID(idOrNode)
}

// History fetches the whole history of a run (runID "" means the latest run).
func (s *Starter) History(ctx context.Context, workflowID, runID string) (*historypb.History, error) {
	h := &historypb.History{}
	iter := s.c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			var notFound *serviceerror.NotFound
			if errors.As(err, &notFound) {
				return nil, fmt.Errorf("%w: %s %s", ErrNoSuchRun, workflowID, runID)
			}
			return nil, fmt.Errorf("history of %s: %w", workflowID, err)
		}
		h.Events = append(h.Events, e)
	}
	if len(h.Events) == 0 {
		return nil, fmt.Errorf("%w: %s %s", ErrNoSuchRun, workflowID, runID)
	}
	return h, nil
}

// MarshalHistory renders a history as JSON in the shape of
// `temporal workflow show --output json`, so that either tool reads the other's files.
func MarshalHistory(h *historypb.History) ([]byte, error) {
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode history: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseHistory reads a history exported by `farewell history export` or
// `temporal workflow show --output json`, and checks that it is a shutdown's.
func ParseHistory(r io.Reader) (*historypb.History, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadHistory, err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%w: the file is empty", ErrBadHistory)
	}
	h, err := client.HistoryFromJSON(bytes.NewReader(b), client.HistoryJSONOptions{})
	if err != nil {
		return nil, fmt.Errorf("%w: not a Temporal history in JSON: %v", ErrBadHistory, err)
	}
	if err := checkShutdownHistory(h); err != nil {
		return nil, err
	}
	return h, nil
}

func checkShutdownHistory(h *historypb.History) error {
	if len(h.GetEvents()) == 0 {
		return fmt.Errorf("%w: it has no events", ErrBadHistory)
	}
	start := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
	if start == nil {
		return fmt.Errorf("%w: its first event is %s, not WorkflowExecutionStarted", ErrBadHistory, h.GetEvents()[0].GetEventType())
	}
	if name := start.GetWorkflowType().GetName(); name != workflows.WorkflowName {
		return fmt.Errorf("%w: it is a history of workflow type %q, not %s", ErrBadHistory, name, workflows.WorkflowName)
	}
	return nil
}

// JournalStep is one step as the history tells it.
type JournalStep struct {
	Name       string               `json:"name"`
	Status     workflows.StepStatus `json:"status"`
	Attempts   int                  `json:"attempts"`
	DurationMS int64                `json:"duration_ms"`
	Error      string               `json:"error,omitempty"`
	Note       string               `json:"note,omitempty"`
}

// ConvergenceCheck is one convergence check as the history tells it.
type ConvergenceCheck struct {
	Converged bool     `json:"converged"`
	TookMS    int64    `json:"took_ms"`
	Pending   []string `json:"pending,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// Journal is what happened in a shutdown run, reconstructed from its history events.
type Journal struct {
	WorkflowID  string `json:"workflow_id,omitempty"`
	RunID       string `json:"run_id"`
	Node        string `json:"node"`
	Reason      string `json:"reason,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
	// Status is the run's: Running, Completed, Failed, Terminated, TimedOut, Canceled.
	Status  string    `json:"status"`
	Started time.Time `json:"started"`
	Closed  time.Time `json:"closed,omitzero"`
	// NodeState is the node's state the lookup found ("" when the lookup failed).
	NodeState   string             `json:"node_state,omitempty"`
	Steps       []JournalStep      `json:"steps"`
	Convergence []ConvergenceCheck `json:"convergence,omitempty"`
	Evicted     bool               `json:"evicted"`
	EvictError  string             `json:"evict_error,omitempty"`
	Terminated  bool               `json:"terminated"`
	RolledBack  bool               `json:"rolled_back"`
	// Outcome comes from the run's result, once it completed.
	Outcome workflows.Outcome `json:"outcome,omitempty"`
	// Error says why the run failed, was terminated or timed out.
	Error  string                    `json:"error,omitempty"`
	Report *workflows.ShutdownReport `json:"report,omitempty"`
	Events int                       `json:"events"`
}

// Succeeded lists the graceful steps that succeeded in this run (and were not rolled
// back).
func (j *Journal) Succeeded() []string {
	if j.RolledBack {
		return nil
	}
	var out []string
	for _, s := range j.Steps {
		if s.Status == workflows.StepSucceeded && config.StepIndex(s.Name) >= 0 {
			out = append(out, s.Name)
		}
	}
	return out
}

var stepOfActivity = map[string]string{
	"SetGracefullyLeft": config.StepSetGracefullyLeft,
	"StopHeartbeat":     config.StepStopHeartbeat,
	"Deregister":        config.StepDeregister,
	"StopServices":      config.StepStopServices,
	"Rollback":          activities.StepRollback,
	"Terminate":         activities.StepTerminate,
}

type scheduled struct {
	activity string
	at       time.Time
	attempt  int32
}

// Reconstruct reads a shutdown history's events into a Journal.
func Reconstruct(h *historypb.History) (*Journal, error) {
	if err := checkShutdownHistory(h); err != nil {
		return nil, err
	}
	dc := converter.GetDefaultDataConverter()
	j := &Journal{Status: "Running", Events: len(h.GetEvents())}
	pending := map[int64]*scheduled{}
	steps := map[string]*JournalStep{}
	stepFor := func(name string) *JournalStep {
		if s, ok := steps[name]; ok {
			return s
		}
		j.Steps = append(j.Steps, JournalStep{Name: name})
		s := &j.Steps[len(j.Steps)-1]
		steps[name] = s
		return s
	}
	finish := func(schedID int64, at time.Time) (*scheduled, *JournalStep) {
		sc := pending[schedID]
		if sc == nil {
			return nil, nil
		}
		delete(pending, schedID)
		name, ok := stepOfActivity[sc.activity]
		if !ok {
			return sc, nil
		}
		st := stepFor(name)
		st.DurationMS = at.Sub(sc.at).Milliseconds()
		st.Attempts = int(max(sc.attempt, 1))
		return sc, st
	}

	for _, e := range h.GetEvents() {
		at := e.GetEventTime().AsTime()
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			a := e.GetWorkflowExecutionStartedEventAttributes()
			j.RunID, j.Started = a.GetOriginalExecutionRunId(), at
			if wid := a.GetWorkflowId(); wid != "" {
				j.WorkflowID = wid
			}
			var req workflows.ShutdownRequest
			if err := dc.FromPayloads(a.GetInput(), &req); err == nil {
				j.Node, j.Reason, j.RequestedBy = req.Node, req.Reason, req.RequestedBy
				if j.WorkflowID == "" {
					j.WorkflowID = workflows.WorkflowID(req.Node)
				}
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			pending[e.GetEventId()] = &scheduled{activity: e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName(), at: at}
			if name, ok := stepOfActivity[pending[e.GetEventId()].activity]; ok && config.StepIndex(name) >= 0 {
				stepFor(name).Status = workflows.StepRunning
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := e.GetActivityTaskStartedEventAttributes()
			if sc := pending[a.GetScheduledEventId()]; sc != nil {
				sc.attempt = a.GetAttempt()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			a := e.GetActivityTaskCompletedEventAttributes()
			sc, st := finish(a.GetScheduledEventId(), at)
			if st == nil {
				continue
			}
			var out activities.StepOutput
			_ = dc.FromPayloads(a.GetResult(), &out)
			st.Status, st.Error, st.Note = workflows.StepSucceeded, "", out.Note
			if out.Attempt > 0 {
				st.Attempts = int(out.Attempt)
			}
			switch sc.activity {
			case "Rollback":
				j.RolledBack = true
			case "Terminate":
				j.Terminated = true
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			a := e.GetActivityTaskFailedEventAttributes()
			if _, st := finish(a.GetScheduledEventId(), at); st != nil {
				st.Status, st.Error = workflows.StepFailed, failureMessage(a.GetFailure())
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			a := e.GetActivityTaskTimedOutEventAttributes()
			if sc, st := finish(a.GetScheduledEventId(), at); st != nil {
				st.Status, st.Error = workflows.StepTimedOut, failureMessage(a.GetFailure())
				if a.GetFailure().GetTimeoutFailureInfo().GetTimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START || sc.attempt == 0 {
					st.Attempts = 0
				}
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			a := e.GetActivityTaskCanceledEventAttributes()
			if _, st := finish(a.GetScheduledEventId(), at); st != nil {
				st.Status, st.Error = workflows.StepFailed, "cancelled"
			}
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			j.localActivity(dc, e.GetMarkerRecordedEventAttributes())
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			j.Status, j.Closed = "Completed", at
			var r workflows.ShutdownReport
			if err := dc.FromPayloads(e.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &r); err == nil {
				j.Report, j.Outcome = &r, r.Outcome
				j.RolledBack = j.RolledBack || r.RolledBack
				for _, s := range r.Steps {
					if s.Status == workflows.StepSkipped || s.Status == workflows.StepPending {
						st := stepFor(s.Name)
						if st.Status == "" || st.Status == workflows.StepRunning {
							st.Status, st.Note = s.Status, s.Note
						}
					}
					if s.Status == workflows.StepSucceeded && s.Attempts == 0 {
						st := stepFor(s.Name) // succeeded in an earlier run: not scheduled in this one
						st.Status, st.Note = s.Status, s.Note
					}
				}
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
			j.Status, j.Closed = "Failed", at
			j.Error = failureMessage(e.GetWorkflowExecutionFailedEventAttributes().GetFailure())
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
			j.Status, j.Closed = "Terminated", at
			j.Error = "terminated: " + e.GetWorkflowExecutionTerminatedEventAttributes().GetReason()
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
			j.Status, j.Closed, j.Error = "TimedOut", at, "the run timed out"
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
			j.Status, j.Closed, j.Error = "Canceled", at, "cancelled"
		}
	}
	j.sortSteps()
	return j, nil
}

// localActivity reads a local activity marker: lookup, force-evict, convergence checks.
func (j *Journal) localActivity(dc converter.DataConverter, a *historypb.MarkerRecordedEventAttributes) {
	if a.GetMarkerName() != "LocalActivity" {
		return
	}
	var data struct {
		ActivityType string
		Attempt      int32
	}
	if err := dc.FromPayloads(a.GetDetails()["data"], &data); err != nil {
		return
	}
	result, failure := a.GetDetails()["result"], a.GetFailure()
	switch data.ActivityType {
	case "Lookup":
		var out activities.LookupOutput
		if failure == nil && decode(dc, result, &out) {
			j.NodeState = string(out.State)
		} else if failure != nil {
			j.Error = failureMessage(failure)
		}
	case "ForceEvict":
		if failure == nil {
			j.Evicted = true
		} else {
			j.EvictError = failureMessage(failure)
		}
	case "VerifyConvergence":
		var out activities.ConvergenceOutput
		c := ConvergenceCheck{}
		if failure == nil && decode(dc, result, &out) {
			c.Converged, c.TookMS, c.Pending = out.Converged, out.TookMS, out.Pending
		} else if failure != nil {
			c.Error = failureMessage(failure)
		}
		j.Convergence = append(j.Convergence, c)
	}
}

func decode(dc converter.DataConverter, p *commonpb.Payloads, v any) bool {
	return p != nil && dc.FromPayloads(p, v) == nil
}

// sortSteps puts the graceful steps in plan order, then rollback and terminate.
func (j *Journal) sortSteps() {
	order := func(name string) int {
		if i := config.StepIndex(name); i >= 0 {
			return i
		}
		if name == activities.StepRollback {
			return 10
		}
		return 11
	}
	for i := 1; i < len(j.Steps); i++ {
		for k := i; k > 0 && order(j.Steps[k].Name) < order(j.Steps[k-1].Name); k-- {
			j.Steps[k], j.Steps[k-1] = j.Steps[k-1], j.Steps[k]
		}
	}
}

// failureMessage is a failure's message with its causes, innermost last.
func failureMessage(f *failurepb.Failure) string {
	var parts []string
	for ; f != nil; f = f.GetCause() {
		msg := f.GetMessage()
		if ti := f.GetTimeoutFailureInfo(); ti != nil {
			msg = "timed out (" + kebab(ti.GetTimeoutType().String()) + ")"
		}
		if msg != "" && (len(parts) == 0 || parts[len(parts)-1] != msg) {
			parts = append(parts, msg)
		}
	}
	return strings.Join(parts, ": ")
}

// kebab turns StartToClose into start-to-close.
func kebab(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('-')
		}
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}
