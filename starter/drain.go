package starter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/workflows"
)

// Errors of drains, for errors.Is.
var (
	// ErrDrainRefused: the drain's pre-flight found a blocker it cannot go past (an
	// unknown node, nothing chosen); DrainRefusedError carries the plan.
	ErrDrainRefused = errors.New("drain refused")
	// ErrDrainRunning: a drain of that name runs already.
	ErrDrainRunning = errors.New("drain already running")
	// ErrNoDrain: no drain of that name on record.
	ErrNoDrain = errors.New("no drain of that name")
)

// DrainRefusedError is a drain refused by its pre-flight, with what it found.
type DrainRefusedError struct {
	Plan    activities.DrainPlan
	Message string
}

func (e *DrainRefusedError) Error() string { return e.Message }
func (e *DrainRefusedError) Unwrap() error { return ErrDrainRefused }

// DrainRun identifies a drain's run.
type DrainRun struct {
	Name       string `json:"name"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// Drain starts a drain. A drain of that name that runs already is an error matching
// ErrDrainRunning; a finished one's name may be used again.
func (s *Starter) Drain(ctx context.Context, req workflows.DrainRequest) (DrainRun, error) {
	if err := req.Validate(); err != nil {
		return DrainRun{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	id := workflows.DrainID(req.Name)
	run, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without it the SDK answers a running drain of that name as if it had started it.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:                            workflows.DrainSummary(req),
		StaticDetails:                            workflows.DrainDetails(req),
		TypedSearchAttributes:                    temporal.NewSearchAttributes(workflows.DrainKey.ValueSet(req.Name)),
	}, workflows.DrainWorkflowName, req)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return DrainRun{}, fmt.Errorf("%w: %s (farewell drain status %s)", ErrDrainRunning, req.Name, req.Name)
	}
	if err != nil {
		return DrainRun{}, fmt.Errorf("start the drain %s: %w", req.Name, err)
	}
	return DrainRun{Name: req.Name, WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

// DrainPreflight runs a drain's dry run and returns what it found; it changes nothing.
func (s *Starter) DrainPreflight(ctx context.Context, req workflows.DrainRequest) (*activities.DrainPlan, error) {
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	run, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.DrainPreflightID(req.Name, time.Now().UnixMilli()),
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		StaticSummary:            "dry run of " + workflows.DrainSummary(req),
		WorkflowExecutionTimeout: 5 * time.Minute,
	}, workflows.DrainPreflightName, req)
	if err != nil {
		return nil, fmt.Errorf("start the dry run: %w", err)
	}
	var p activities.DrainPlan
	if err := run.Get(ctx, &p); err != nil {
		return nil, drainError(err, req.Name)
	}
	return &p, nil
}

// drainError says why a drain failed; a refusal carries the plan.
func drainError(err error, name string) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case activities.ErrTypeDrainRefused:
			e := &DrainRefusedError{Message: appErr.Message()}
			_ = appErr.Details(&e.Plan)
			return e
		case workflows.ErrTypeBadRequest:
			return fmt.Errorf("%w: %s", ErrBadRequest, appErr.Message())
		}
		return fmt.Errorf("drain %s failed: %s", name, appErr.Message())
	}
	return fmt.Errorf("drain %s: %w", name, err)
}

// DrainStatus is where a drain stands.
type DrainStatus struct {
	DrainRun
	// Status is Temporal's: Running, Completed, Failed, ContinuedAsNew, …
	Status string                 `json:"status"`
	Report *workflows.DrainReport `json:"report,omitempty"`
	Error  string                 `json:"error,omitempty"`
}

// DrainStatus returns the latest run of the drain called name: its progress while it
// runs, its report once done.
func (s *Starter) DrainStatus(ctx context.Context, name string) (DrainStatus, error) {
	id := workflows.DrainID(name)
	d, err := s.c.DescribeWorkflowExecution(ctx, id, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return DrainStatus{}, fmt.Errorf("%w: %q", ErrNoDrain, name)
	}
	if err != nil {
		return DrainStatus{}, fmt.Errorf("describe the drain %s: %w", name, err)
	}
	info := d.GetWorkflowExecutionInfo()
	st := DrainStatus{DrainRun: DrainRun{Name: name, WorkflowID: id, RunID: info.GetExecution().GetRunId()}, Status: info.GetStatus().String()}
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		r, err := s.drainProgress(ctx, st.DrainRun)
		if err != nil {
			st.Error = "progress unavailable (is the orchestrator worker running?): " + err.Error()
		}
		st.Report = r
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		var r workflows.DrainReport
		if err := s.c.GetWorkflow(ctx, id, st.RunID).Get(ctx, &r); err != nil {
			return st, fmt.Errorf("read the report of %s: %w", id, err)
		}
		st.Report = &r
	default:
		if err := s.c.GetWorkflow(ctx, id, st.RunID).Get(ctx, nil); err != nil {
			st.Error = drainError(err, name).Error()
		}
	}
	return st, nil
}

func (s *Starter) drainProgress(ctx context.Context, run DrainRun) (*workflows.DrainReport, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// No run ID: a drain that continued as new is followed into its next run.
	v, err := s.c.QueryWorkflow(qctx, run.WorkflowID, "", workflows.QueryProgress)
	if err != nil {
		return nil, err
	}
	var r workflows.DrainReport
	if err := v.Get(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

// SteerDrain sends a control update (workflows.UpdateDrainPause, …) to the running
// drain called name. A refusal matches ErrRejected.
func (s *Starter) SteerDrain(ctx context.Context, name, update string, arg any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h, err := s.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.DrainID(name), UpdateName: update, Args: []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	var notFound *serviceerror.NotFound
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &notFound):
		if d, derr := s.c.DescribeWorkflowExecution(ctx, workflows.DrainID(name), ""); derr == nil {
			return fmt.Errorf("%w: the drain %s already finished (%s)", ErrRejected, name, d.GetWorkflowExecutionInfo().GetStatus())
		}
		return fmt.Errorf("%w: %q", ErrNoDrain, name)
	case errors.As(err, &appErr):
		return fmt.Errorf("%w: %s", ErrRejected, appErr.Message())
	case strings.Contains(err.Error(), "workflow execution already completed"):
		return fmt.Errorf("%w: the drain %s already finished", ErrRejected, name)
	}
	return fmt.Errorf("%s on the drain %s: %w", update, name, err)
}

// WaitDrainStarted waits until the drain got past its pre-flight: nil once it runs,
// a *DrainRefusedError (matching ErrDrainRefused) when the pre-flight refused it.
func (s *Starter) WaitDrainStarted(ctx context.Context, run DrainRun) error {
	for {
		d, err := s.c.DescribeWorkflowExecution(ctx, run.WorkflowID, "")
		if err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING &&
			d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW {
			err := s.c.GetWorkflow(ctx, run.WorkflowID, run.RunID).Get(ctx, nil)
			if err != nil {
				return drainError(err, run.Name)
			}
			return nil
		}
		if err == nil {
			if r, err := s.drainProgress(ctx, run); err == nil && r.Phase != "preflight" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the drain %s has not got past its pre-flight: is the orchestrator worker running? (%w)", run.Name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitDrain follows a drain (into its later runs) to its end and returns its report;
// onProgress, if set, sees the report whenever it changes. It rides out Temporal
// being away for a while (an orchestrator restart): it keeps asking until ctx ends.
func (s *Starter) WaitDrain(ctx context.Context, run DrainRun, onProgress func(workflows.DrainReport)) (*workflows.DrainReport, error) {
	var last string
	for {
		st, err := s.DrainStatus(ctx, run.Name)
		switch {
		case err == nil && st.Status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED.String():
			if onProgress != nil {
				onProgress(*st.Report)
			}
			return st.Report, nil
		case err == nil && st.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING.String() &&
			st.Status != enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW.String():
			return nil, fmt.Errorf("drain %s ended %s: %s", run.Name, st.Status, st.Error)
		case err == nil && st.Report != nil && onProgress != nil:
			if key := drainKey(st.Report); key != last {
				last = key
				onProgress(*st.Report)
			}
		case errors.Is(err, ErrNoDrain):
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func drainKey(r *workflows.DrainReport) string {
	var b strings.Builder
	for _, n := range r.Nodes {
		fmt.Fprintf(&b, "%s=%s/%s;", n.Node, n.State, n.Outcome)
	}
	fmt.Fprintf(&b, "%s|%s|%s|%s|%d", r.Paused, r.Aborted, r.Stopped, r.Waiting, r.MaxParallel)
	return b.String()
}
