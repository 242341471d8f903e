package starter

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/workflows"
)

// The cluster's disruption budget, as clients reach it: the Budget workflow, started
// by the first lease asked for (update-with-start), one per namespace.

// Acquire asks the budget for a lease, starting the budget when it does not run yet.
// It waits up to req.Wait inside the budget for a lease to free up.
func (s *Starter) Acquire(ctx context.Context, req activities.LeaseRequest) (activities.LeaseGrant, error) {
	if err := req.Validate(); err != nil {
		return activities.LeaseGrant{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	for range 3 {
		op := s.c.NewWithStartWorkflowOperation(budgetStart(), workflows.BudgetWorkflowName, workflows.BudgetState{})
		h, err := s.c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
			StartWorkflowOperation: op,
			UpdateOptions: client.UpdateWorkflowOptions{
				UpdateName: workflows.UpdateAcquire, Args: []any{req}, WaitForStage: client.WorkflowUpdateStageCompleted,
			},
		})
		if err != nil {
			return activities.LeaseGrant{}, fmt.Errorf("ask the budget: %w", err)
		}
		var g activities.LeaseGrant
		if err := h.Get(ctx, &g); err != nil {
			return g, fmt.Errorf("ask the budget: %w", err)
		}
		if !g.Retry {
			return g, nil
		}
	}
	return activities.LeaseGrant{Retry: true, Why: "the budget is moving to a new run"}, nil
}

// Ask sends a lease request to the budget as a signal, starting the budget when it does
// not run yet; the budget answers by signalling req.Notify. No update slot is taken,
// however many ask at once.
func (s *Starter) Ask(ctx context.Context, req activities.LeaseRequest) error {
	if err := req.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if req.Notify == "" {
		return fmt.Errorf("%w: a request by signal needs notify: whom to answer", ErrBadRequest)
	}
	_, err := s.c.SignalWithStartWorkflow(ctx, workflows.BudgetWorkflowID, workflows.SignalAcquire, req, budgetStart(), workflows.BudgetWorkflowName, workflows.BudgetState{})
	if err != nil {
		return fmt.Errorf("ask the budget: %w", err)
	}
	return nil
}

// budgetStart is how the budget is started by whoever asks first.
func budgetStart() client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       workflows.BudgetWorkflowID,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:            "the cluster's disruption budget: leases of every shutdown in flight",
	}
}

// Release gives a lease back. A budget that does not run holds nothing.
func (s *Starter) Release(ctx context.Context, ref activities.LeaseRef) error {
	h, err := s.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.BudgetWorkflowID, UpdateName: workflows.UpdateRelease, Args: []any{ref},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("give the lease of %s back: %w", ref.Holder, err)
	}
	return nil
}

// Closed returns the leases whose holder has no open run any more: the run named, or
// for a lease bound to no run, any run of the holder.
func (s *Starter) Closed(ctx context.Context, refs []activities.LeaseRef) ([]activities.LeaseRef, error) {
	var out []activities.LeaseRef
	for _, ref := range refs {
		d, err := s.c.DescribeWorkflowExecution(ctx, ref.Holder, ref.Run)
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound):
			out = append(out, ref)
		case err != nil:
			return out, fmt.Errorf("describe %s: %w", ref.Holder, err)
		case d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			out = append(out, ref)
		}
	}
	return out, nil
}

// Budget returns the budget's limits and leases. When the budget has not run yet it
// holds no lease and its limits are unknown (the orchestrator's budget.* settings).
func (s *Starter) Budget(ctx context.Context) (workflows.BudgetView, bool, error) {
	v, err := s.c.QueryWorkflow(ctx, workflows.BudgetWorkflowID, "", workflows.QueryBudget)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return workflows.BudgetView{}, false, nil
	}
	if err != nil {
		return workflows.BudgetView{}, false, fmt.Errorf("query the budget: %w", err)
	}
	var view workflows.BudgetView
	if err := v.Get(&view); err != nil {
		return view, false, fmt.Errorf("read the budget: %w", err)
	}
	return view, true, nil
}

// Leased lists the nodes whose shutdown holds a lease of the budget.
func (s *Starter) Leased(ctx context.Context) ([]string, error) {
	view, _, err := s.Budget(ctx)
	var nodes []string
	for _, l := range view.Leases {
		nodes = append(nodes, l.Node)
	}
	return nodes, err
}

// Running reports whether node's latest shutdown runs, and which run it is.
func (s *Starter) Running(ctx context.Context, node string) (activities.ShutdownInfo, error) {
	d, err := s.c.DescribeWorkflowExecution(ctx, workflows.WorkflowID(node), "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return activities.ShutdownInfo{}, nil
	}
	if err != nil {
		return activities.ShutdownInfo{}, fmt.Errorf("describe the shutdown of %s: %w", node, err)
	}
	info := d.GetWorkflowExecutionInfo()
	return activities.ShutdownInfo{RunID: info.GetExecution().GetRunId(),
		Running: info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING}, nil
}

// Latest reports node's latest shutdown, with its outcome once it closed.
func (s *Starter) Latest(ctx context.Context, node string) (activities.ShutdownInfo, error) {
	st, err := s.Status(ctx, node)
	if errors.Is(err, ErrNoShutdown) {
		return activities.ShutdownInfo{}, nil
	}
	if err != nil {
		return activities.ShutdownInfo{}, err
	}
	info := activities.ShutdownInfo{RunID: st.RunID, Running: st.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING.String(), Error: st.Error}
	if r := st.Report; r != nil && !info.Running {
		info.Outcome, info.Total, info.Instance, info.Converged = r.Outcome, r.Total, r.NodeInstance, r.Converged
		if info.Error == "" {
			info.Error = r.Error
		}
	}
	if !info.Running && info.Outcome == "" && info.Error == "" {
		info.Error = "the run ended " + st.Status
	}
	return info, nil
}

// Pollers counts the workers polling node's task queue for its steps.
func (s *Starter) Pollers(ctx context.Context, node string) (int, error) {
	resp, err := s.c.DescribeTaskQueue(ctx, workflows.NodeTaskQueue(node), enumspb.TASK_QUEUE_TYPE_ACTIVITY)
	if err != nil {
		return 0, fmt.Errorf("describe task queue %s: %w", workflows.NodeTaskQueue(node), err)
	}
	return len(resp.GetPollers()), nil
}

var (
	_ activities.Budget = (*Starter)(nil)
	_ activities.Fleet  = (*Starter)(nil)
)

// Tell signals the budget's answer to the workflow that asked; one that closed
// meanwhile is not an error (the budget reaps what it leaves).
func (s *Starter) Tell(ctx context.Context, notify string, g activities.LeaseGrant) error {
	err := s.c.SignalWorkflow(ctx, notify, "", workflows.SignalBudget, g)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	return err
}

// GiveBack gives a lease back by a signal to the budget; a budget that does not run
// holds no lease.
func (s *Starter) GiveBack(ctx context.Context, ref activities.LeaseRef) error {
	err := s.c.SignalWorkflow(ctx, workflows.BudgetWorkflowID, "", workflows.SignalRelease, ref)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	return err
}
