package history

import (
	"slices"
	"testing"

	failurepb "go.temporal.io/api/failure/v1"

	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

func TestKebab(t *testing.T) {
	for in, want := range map[string]string{
		"StartToClose": "start-to-close", "ScheduleToStart": "schedule-to-start", "Heartbeat": "heartbeat",
		"XAYZ": "x-a-y-z", "a@b[c": "a@b[c", "": "",
	} {
		if got := kebab(in); got != want {
			t.Errorf("kebab(%q) = %q, want %q", in, got, want)
		}
	}
}

// A failure's message and its causes, innermost last, a message repeated by its cause
// said once, a timeout by its kind.
func TestFailureMessage(t *testing.T) {
	f := &failurepb.Failure{Message: "activity error", Cause: &failurepb.Failure{Message: "activity error",
		Cause: &failurepb.Failure{Message: "boom"}}}
	if got := failureMessage(f); got != "activity error: boom" {
		t.Errorf("got %q", got)
	}
	to := &failurepb.Failure{Message: "activity error", Cause: &failurepb.Failure{Message: "x",
		FailureInfo: &failurepb.Failure_TimeoutFailureInfo{TimeoutFailureInfo: &failurepb.TimeoutFailureInfo{TimeoutType: 1}}}}
	if got := failureMessage(to); got != "activity error: timed out (start-to-close)" {
		t.Errorf("got %q", got)
	}
	if got := failureMessage(nil); got != "" {
		t.Errorf("nil failure: %q", got)
	}
}

// Steps sort in the run's order (its report's), steps the report does not name after
// them as they came, then rollback, then terminate.
func TestSortSteps(t *testing.T) {
	j := &Journal{
		Steps: []JournalStep{{Name: plan.Terminate}, {Name: plan.Rollback}, {Name: "extra-2"}, {Name: plan.Deregister},
			{Name: "extra-1"}, {Name: plan.SetGracefullyLeft}},
		Report: &workflows.ShutdownReport{Steps: []plan.StepResult{{Name: plan.SetGracefullyLeft}, {Name: plan.Deregister}}},
	}
	j.sortSteps()
	var got []string
	for _, s := range j.Steps {
		got = append(got, s.Name)
	}
	want := []string{plan.SetGracefullyLeft, plan.Deregister, "extra-2", "extra-1", plan.Rollback, plan.Terminate}
	if !slices.Equal(got, want) {
		t.Errorf("sorted %v, want %v", got, want)
	}
}
