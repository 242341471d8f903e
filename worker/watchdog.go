package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/workflows"
)

// Watchdog is the schedule of the zombie sweep.
type Watchdog struct {
	// Enabled keeps the schedule; false deletes it.
	Enabled bool
	// Every is how often the sweep runs.
	Every time.Duration
	// Sweep is what each run looks for and does.
	Sweep workflows.SweepRequest
}

// EnsureWatchdog makes the farewell-watchdog Temporal Schedule (shown on the UI's
// Schedules page) run the sweep as w says: created when missing, updated when it
// differs, deleted when the watchdog is off. Every orchestrator worker does this at
// start; they share one schedule, so the last one started sets it.
func EnsureWatchdog(ctx context.Context, c client.Client, w Watchdog) error {
	sc := c.ScheduleClient()
	if !w.Enabled {
		err := sc.GetHandle(ctx, workflows.WatchdogScheduleID).Delete(ctx)
		var notFound *serviceerror.NotFound
		if err != nil && !errors.As(err, &notFound) {
			return fmt.Errorf("delete schedule %s: %w", workflows.WatchdogScheduleID, err)
		}
		return nil
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: w.Every}}}
	action := &client.ScheduleWorkflowAction{
		ID:        "farewell-watchdog-sweep",
		Workflow:  workflows.SweepWorkflowName,
		Args:      []any{w.Sweep},
		TaskQueue: workflows.TaskQueue,
		// The run's one line in the UI: what it is and what it does with what it finds.
		StaticSummary: fmt.Sprintf("watchdog sweep, every %s: %s", w.Every, w.Sweep.Describe()),
	}
	_, err := sc.Create(ctx, client.ScheduleOptions{
		ID: workflows.WatchdogScheduleID, Spec: spec, Action: action, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Note: "Farewell's zombie watchdog (watchdog.* settings of the orchestrator worker)",
	})
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		if err != nil {
			return fmt.Errorf("create schedule %s: %w", workflows.WatchdogScheduleID, err)
		}
		return nil
	}
	err = sc.GetHandle(ctx, workflows.WatchdogScheduleID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec, s.Action = &spec, action
			if s.Policy == nil {
				s.Policy = &client.SchedulePolicies{}
			}
			s.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update schedule %s: %w", workflows.WatchdogScheduleID, err)
	}
	return nil
}
