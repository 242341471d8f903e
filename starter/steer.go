package starter

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// ErrRejected: a running shutdown refused an update (unknown step, step already
// started, shutdown finished, …); the message says why.
var ErrRejected = errors.New("refused by the shutdown")

// running returns the run of node's shutdown if it is running.
func (s *Starter) running(ctx context.Context, node string) (Run, error) {
	st, err := s.Status(ctx, node)
	if err != nil {
		return Run{}, err
	}
	if st.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING.String() {
		return Run{}, fmt.Errorf("%w: the last shutdown of %s is %s, not running", ErrRejected, node, st.Status)
	}
	return st.Run, nil
}

// Steer sends one of the steering updates (workflows.UpdateForceNow, UpdateSkipStep,
// UpdateExtendTimeout) to node's running shutdown and waits until it was applied. A
// refusal matches ErrRejected.
func (s *Starter) Steer(ctx context.Context, node, update string, arg any) error {
	run, err := s.running(ctx, node)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h, err := s.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.WorkflowID, RunID: run.RunID, UpdateName: update, Args: []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	if err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			return fmt.Errorf("%w: %s", ErrRejected, appErr.Message())
		}
		return fmt.Errorf("%s on the shutdown of %s: %w", update, node, err)
	}
	return nil
}

// Cancel asks node's running shutdown to stop. Before deregister it rolls the node back
// (the report says aborted); after, the shutdown refuses and runs to its end.
func (s *Starter) Cancel(ctx context.Context, node string) (Run, error) {
	run, err := s.running(ctx, node)
	if err != nil {
		return Run{}, err
	}
	if err := s.c.CancelWorkflow(ctx, run.WorkflowID, run.RunID); err != nil {
		return run, fmt.Errorf("cancel the shutdown of %s: %w", node, err)
	}
	return run, nil
}
