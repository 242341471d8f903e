package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/plan"
)

// registerHandlers sets up the progress query and the steering updates.
func (s *shutdown) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryProgress, func() (ShutdownReport, error) {
		return s.progress(), nil
	}, workflow.QueryHandlerOptions{Description: "The shutdown report so far: each step's status, attempts and timing."}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateForceNow, func(ctx workflow.Context, req ForceNowRequest) error {
		reason := "operator: force-now"
		if req.Reason != "" {
			reason += " (" + req.Reason + ")"
		}
		s.facts.ForceReason = reason
		s.log.Warn("force-now requested: skipping the remaining graceful steps", "reason", req.Reason)
		if s.cancelCurrent != nil {
			s.cancelCurrent()
		}
		return nil
	}, workflow.UpdateHandlerOptions{
		Description: "Skip the remaining graceful steps and force-evict the node now.",
		Validator: func(ctx workflow.Context, req ForceNowRequest) error {
			if err := plan.ValidateText(req.Reason); err != nil {
				return fmt.Errorf("reason: %w", err)
			}
			if s.done {
				return fmt.Errorf("the shutdown of %s already finished", s.req.Node)
			}
			if s.facts.ForceReason != "" {
				return fmt.Errorf("the shutdown of %s is already forcing (%s)", s.req.Node, s.facts.ForceReason)
			}
			return nil
		},
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateSkipStep, func(ctx workflow.Context, req SkipStepRequest) error {
		why := "skipped by the operator"
		if req.Reason != "" {
			why += ": " + req.Reason
		}
		s.skips[req.Step] = why
		return nil
	}, workflow.UpdateHandlerOptions{
		Description: "Skip a graceful step that has not started yet.",
		Validator: func(ctx workflow.Context, req SkipStepRequest) error {
			if err := plan.ValidateText(req.Reason); err != nil {
				return fmt.Errorf("reason: %w", err)
			}
			return s.pendingStep(req.Step)
		},
	}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateExtendTimeout, func(ctx workflow.Context, req ExtendTimeoutRequest) error {
		s.plan.Steps[s.plan.Index(req.Step)].StartToClose = req.StartToClose.Std()
		return nil
	}, workflow.UpdateHandlerOptions{
		Description: "Raise the StartToClose of a graceful step that has not started yet.",
		Validator: func(ctx workflow.Context, req ExtendTimeoutRequest) error {
			if err := s.pendingStep(req.Step); err != nil {
				return err
			}
			spec, _ := s.plan.Step(req.Step)
			if req.StartToClose.Std() <= spec.StartToClose {
				return fmt.Errorf("step %s: %s does not extend its start_to_close of %s", req.Step, req.StartToClose, spec.StartToClose)
			}
			if req.StartToClose.Std() > plan.MaxStartToClose {
				return fmt.Errorf("step %s: %s is more than the most a step may take (%s)", req.Step, req.StartToClose, plan.MaxStartToClose)
			}
			return nil
		},
	})
}

// pendingStep checks that step is in the plan and has not started.
func (s *shutdown) pendingStep(step string) error {
	if s.done {
		return fmt.Errorf("the shutdown of %s already finished", s.req.Node)
	}
	for _, r := range s.report.Steps {
		if r.Name == step {
			if r.Status != plan.StepPending {
				return fmt.Errorf("step %s is already %s", step, r.Status)
			}
			return nil
		}
	}
	return fmt.Errorf("unknown step %q (this plan has %s)", step, strings.Join(s.plan.Names(), ", "))
}

// progress is the report as the progress query returns it. A query is never replayed,
// so reading the clock here is safe; it keeps the running total current.
func (s *shutdown) progress() ShutdownReport {
	r := s.report
	r.Steps = slices.Clone(s.report.Steps)
	if r.Finished.IsZero() {
		//workflowcheck:ignore
		r.Total = plan.Millis(time.Since(r.Started))
	}
	return r
}
