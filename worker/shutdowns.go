package worker

import (
	"context"
	"errors"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/workflows"
)

// shutdowns lets the watchdog look up and start shutdowns through a Temporal client.
type shutdowns struct{ st *starter.Starter }

var _ activities.Shutdowns = shutdowns{}

func (s shutdowns) Running(ctx context.Context, node string) (bool, error) {
	st, err := s.st.Status(ctx, node)
	if errors.Is(err, starter.ErrNoShutdown) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return st.Status == "Running", nil
}

func (s shutdowns) Start(ctx context.Context, in activities.StartShutdownInput) (activities.StartShutdownOutput, error) {
	run, err := s.st.Shutdown(ctx, workflows.ShutdownRequest{Node: in.Node, Reason: in.Reason, RequestedBy: in.RequestedBy, Force: in.Force})
	return activities.StartShutdownOutput{WorkflowID: run.WorkflowID, RunID: run.RunID, Joined: run.Joined}, err
}
