package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/plan"
)

// Step is a graceful step as both drivers run it — the workflow (an activity on the
// node's task queue) and the node's local plan (a direct call): its name in the plan,
// the name its activity is registered under, and the method that does the work.
type Step struct {
	Name     string
	Activity string
	Run      func(*NodeActivities, context.Context, StepInput) (StepOutput, error)
}

// Steps are the built-in graceful steps, in the order they run. A new step is a name
// in plan (names.go), a method of NodeActivities, and a row here.
var Steps = []Step{
	{plan.SetGracefullyLeft, "SetGracefullyLeft", (*NodeActivities).SetGracefullyLeft},
	{plan.StopHeartbeat, "StopHeartbeat", (*NodeActivities).StopHeartbeat},
	{plan.Deregister, "Deregister", (*NodeActivities).Deregister},
	{plan.StopServices, "StopServices", (*NodeActivities).StopServices},
}

// hostStep runs every step of a host's own (agent.Step).
var hostStep = Step{Activity: "RunHostStep", Run: (*NodeActivities).RunHostStep}

// StepNamed returns the step of that name: a built-in one, or, for a name a host's
// step may have, the host's (it runs through RunHostStep).
func StepNamed(name string) (Step, bool) {
	for _, s := range Steps {
		if s.Name == name {
			return s, true
		}
	}
	if plan.ValidateStepName(name) == nil {
		s := hostStep
		s.Name = name
		return s, true
	}
	return Step{}, false
}

// Classify tells, from a step's error, why it did not succeed as far as the step
// itself says (its error's type); a driver adds what only it can see (a cancel, a
// worker that never picked the step up).
func Classify(err error) plan.Failure {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case ErrTypeEvicted:
			return plan.FailEvicted
		case ErrTypeProcessGone:
			return plan.FailProcessGone
		case ErrTypeLeaveFailed:
			return plan.FailLeaveUnconfirmed
		}
	}
	return plan.FailStep
}
