package history

import (
	"slices"
	"sort"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

// JournalStep is one step as the history tells it.
type JournalStep struct {
	Name     string          `json:"name"`
	Status   plan.StepStatus `json:"status"`
	Attempts int             `json:"attempts"`
	Duration plan.Duration   `json:"duration"`
	Error    string          `json:"error,omitempty"`
	Note     string          `json:"note,omitempty"`
}

// ConvergenceCheck is one convergence check as the history tells it.
type ConvergenceCheck struct {
	Converged bool          `json:"converged"`
	Took      plan.Duration `json:"took"`
	// Status is converged, pending or unverified ("" in runs recorded before it).
	Status  string   `json:"status,omitempty"`
	Pending []string `json:"pending,omitempty"`
	Error   string   `json:"error,omitempty"`
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
	Outcome plan.Outcome `json:"outcome,omitempty"`
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
		if s.Status == plan.StepSucceeded && graceful(s.Name) {
			out = append(out, s.Name)
		}
	}
	return out
}

var stepOfActivity = map[string]string{
	"SetGracefullyLeft": plan.SetGracefullyLeft,
	"StopHeartbeat":     plan.StopHeartbeat,
	"Deregister":        plan.Deregister,
	"StopServices":      plan.StopServices,
	"Rollback":          plan.Rollback,
	"Terminate":         plan.Terminate,
}

// graceful reports whether a step named so is a graceful step (built in or the host's
// own), not the rollback or the termination.
func graceful(name string) bool { return name != plan.Rollback && name != plan.Terminate }

// hostStepActivity runs a host's own step; its input names the step.
const hostStepActivity = "RunHostStep"

type scheduled struct {
	activity string
	step     string // the step it runs, "" for none
	at       time.Time
	attempt  int32
}

// Reconstruct reads a shutdown history's events into a Journal.
func Reconstruct(h *historypb.History) (*Journal, error) {
	if err := checkShutdown(h); err != nil {
		return nil, err
	}
	dc := converter.GetDefaultDataConverter()
	j := &Journal{Status: "Running", Events: len(h.GetEvents())}
	pending := map[int64]*scheduled{}
	// Steps are tracked by index: a pointer into j.Steps would go stale when a later
	// append moves the slice, and a late close event (a step cut short by force-now
	// closes after the next one was scheduled) would be written to the stale copy.
	index := map[string]int{}
	stepFor := func(name string) *JournalStep {
		i, ok := index[name]
		if !ok {
			j.Steps = append(j.Steps, JournalStep{Name: name})
			i = len(j.Steps) - 1
			index[name] = i
		}
		return &j.Steps[i]
	}
	finish := func(schedID int64, at time.Time) (*scheduled, *JournalStep) {
		sc := pending[schedID]
		if sc == nil {
			return nil, nil
		}
		delete(pending, schedID)
		if sc.step == "" {
			return sc, nil
		}
		st := stepFor(sc.step)
		st.Duration = plan.Millis(at.Sub(sc.at))
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
			a := e.GetActivityTaskScheduledEventAttributes()
			sc := &scheduled{activity: a.GetActivityType().GetName(), step: stepOfActivity[a.GetActivityType().GetName()], at: at}
			if sc.activity == hostStepActivity {
				var in activities.StepInput
				if err := dc.FromPayloads(a.GetInput(), &in); err == nil {
					sc.step = in.Step
				}
			}
			pending[e.GetEventId()] = sc
			if sc.step != "" && graceful(sc.step) {
				stepFor(sc.step).Status = plan.StepRunning
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := e.GetActivityTaskStartedEventAttributes()
			if sc := pending[a.GetScheduledEventId()]; sc != nil {
				sc.attempt = a.GetAttempt()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			a := e.GetActivityTaskCompletedEventAttributes()
			sc, st := finish(a.GetScheduledEventId(), at)
			if sc != nil && sc.activity == "VerifyConvergence" {
				j.convergence(dc, a.GetResult(), nil)
			}
			if st == nil {
				continue
			}
			var out activities.StepOutput
			_ = dc.FromPayloads(a.GetResult(), &out)
			st.Status, st.Error, st.Note = plan.StepSucceeded, "", out.Note
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
			sc, st := finish(a.GetScheduledEventId(), at)
			if sc != nil && sc.activity == "VerifyConvergence" {
				j.convergence(dc, nil, a.GetFailure())
			}
			if st != nil {
				st.Status, st.Error = plan.StepFailed, failureMessage(a.GetFailure())
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			a := e.GetActivityTaskTimedOutEventAttributes()
			sc, st := finish(a.GetScheduledEventId(), at)
			if sc != nil && sc.activity == "VerifyConvergence" {
				j.convergence(dc, nil, a.GetFailure())
			}
			if st != nil {
				st.Status, st.Error = plan.StepTimedOut, failureMessage(a.GetFailure())
				if a.GetFailure().GetTimeoutFailureInfo().GetTimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START || sc.attempt == 0 {
					st.Attempts = 0
				}
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			a := e.GetActivityTaskCanceledEventAttributes()
			if _, st := finish(a.GetScheduledEventId(), at); st != nil {
				st.Status, st.Error = plan.StepFailed, "cancelled"
			}
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			j.localActivity(dc, e.GetMarkerRecordedEventAttributes())
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			j.Status, j.Closed = "Completed", at
			var r workflows.ShutdownReport
			if err := dc.FromPayloads(e.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &r); err == nil {
				j.Report, j.Outcome = &r, r.Outcome
				j.RolledBack = j.RolledBack || r.RolledBack
				j.Evicted = r.Evicted
				for _, s := range r.Steps {
					if s.Status == plan.StepSkipped || s.Status == plan.StepPending {
						st := stepFor(s.Name)
						if st.Status == "" || st.Status == plan.StepRunning {
							st.Status, st.Note = s.Status, s.Note
						}
					}
					if s.Status == plan.StepSucceeded && s.Attempts == 0 {
						st := stepFor(s.Name) // succeeded in an earlier run: not scheduled in this one
						st.Status, st.Note = s.Status, s.Note
					}
					if i := slices.IndexFunc(j.Steps, func(js JournalStep) bool { return js.Name == s.Name }); i >= 0 &&
						j.Steps[i].Status == plan.StepRunning && s.Status != plan.StepRunning {
						// Abandoned by the run (a cancel, force-now): no event closed it, the
						// report says how it ended.
						j.Steps[i].Status, j.Steps[i].Error, j.Steps[i].Attempts = s.Status, s.Error, s.Attempts
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
			j.NodeState = out.State
		} else if failure != nil {
			j.Error = failureMessage(failure)
		}
	case "ForceEvict":
		var out activities.EvictOutput
		switch {
		case failure != nil:
			j.EvictError = failureMessage(failure)
		case decode(dc, result, &out) && out.Gone != "":
			j.EvictError = "no eviction: " + out.Gone
		default:
			j.Evicted = true // the report, once the run completed, says whether it counted
		}
	case "VerifyConvergence":
		j.convergence(dc, result, failure)
	}
}

// convergence adds one convergence check, from a local activity marker or a regular
// activity's result.
func (j *Journal) convergence(dc converter.DataConverter, result *commonpb.Payloads, failure *failurepb.Failure) {
	var out activities.ConvergenceOutput
	c := ConvergenceCheck{}
	switch {
	case failure != nil:
		c.Error = failureMessage(failure)
	case decode(dc, result, &out):
		c.Converged, c.Took, c.Pending, c.Status = out.Converged, plan.Millis(time.Duration(out.TookMS)*time.Millisecond), out.Pending, out.Status
	}
	j.Convergence = append(j.Convergence, c)
}

func decode(dc converter.DataConverter, p *commonpb.Payloads, v any) bool {
	return p != nil && dc.FromPayloads(p, v) == nil
}

// sortSteps puts the graceful steps in the order the run has them — its report's (the
// plan it ran, a host's own steps in their places), or, for a run without one, the
// order they were scheduled in — then rollback and terminate.
func (j *Journal) sortSteps() {
	rank := map[string]int{}
	if j.Report != nil {
		for i, s := range j.Report.Steps {
			rank[s.Name] = i
		}
	}
	order := func(i int) int {
		switch name := j.Steps[i].Name; {
		case name == plan.Rollback:
			return 2 * plan.MaxSteps
		case name == plan.Terminate:
			return 2*plan.MaxSteps + 1
		default:
			if r, ok := rank[name]; ok {
				return r
			}
			return plan.MaxSteps + i // as it came
		}
	}
	keys := make([]int, len(j.Steps))
	for i := range keys {
		keys[i] = order(i)
	}
	idx := make([]int, len(j.Steps))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	steps := make([]JournalStep, len(j.Steps))
	for i, k := range idx {
		steps[i] = j.Steps[k]
	}
	j.Steps = steps
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
