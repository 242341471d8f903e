package starter

import (
	"context"
	"errors"
	"fmt"

	"github.com/farewell-project/farewell/history"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

// ErrNothingToRetry: the last shutdown was graceful.
var ErrNothingToRetry = errors.New("nothing to retry")

// RetryPlan says what a retry does.
type RetryPlan struct {
	// Of is the run retried.
	Of Run `json:"of"`
	// Skip lists the steps that succeeded in it; the new run does not run them again.
	Skip []string `json:"skip,omitempty"`
	// Why the earlier run needs a retry: its outcome, or how the run ended.
	Why string `json:"why"`
}

// Retry runs a node's last shutdown again, so that only what did not succeed runs: a
// new run of the workflow that skips the steps that succeeded (reported "succeeded in an
// earlier run"), looks the node up afresh, and lets every other step find its work
// already done if it was. A running shutdown is joined; a graceful one is refused with
// ErrNothingToRetry. An aborted one was rolled back, so all of it runs again.
func (s *Starter) Retry(ctx context.Context, idOrNode string) (Run, RetryPlan, error) {
	id := workflows.IDFor(idOrNode)
	node, _ := workflows.NodeFromWorkflowID(id)
	st, err := s.Status(ctx, node)
	if err != nil {
		return Run{}, RetryPlan{}, err
	}
	rp := RetryPlan{Of: st.Run}
	switch {
	case st.Status == "Running":
		st.Run.Joined = true
		return st.Run, RetryPlan{Of: st.Run, Why: "still running: joined it"}, nil
	case st.Report != nil:
		switch st.Report.Outcome {
		case plan.Graceful:
			return Run{}, rp, fmt.Errorf("%w: the last shutdown of %s (run %s) was graceful", ErrNothingToRetry, node, st.RunID)
		case plan.Aborted:
			rp.Why = "aborted and rolled back: every step runs again"
		default:
			rp.Why = "ended " + string(st.Report.Outcome)
			for _, step := range st.Report.Steps {
				if step.Status == plan.StepSucceeded {
					rp.Skip = append(rp.Skip, step.Name)
				}
			}
		}
	default:
		// Failed, terminated, timed out or cancelled: what the history shows succeeded stands.
		rp.Why = "the run ended " + st.Status
		h, err := history.Fetch(ctx, s.c, id, st.RunID)
		if err != nil {
			return Run{}, rp, err
		}
		j, err := history.Reconstruct(h)
		if err != nil {
			return Run{}, rp, err
		}
		rp.Skip = j.Succeeded()
	}
	var reason, by, instance string
	if st.Report != nil {
		reason, by, instance = st.Report.Reason, st.Report.RequestedBy, st.Report.NodeInstance
	}
	run, err := s.Shutdown(ctx, workflows.ShutdownRequest{
		Node: node, Reason: "retry: " + reason, RequestedBy: by,
		SkipSucceeded: rp.Skip, RetryOf: st.RunID, RetryInstance: instance,
	})
	return run, rp, err
}
