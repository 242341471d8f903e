package activities

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/plan"
)

// The one table of steps covers the built-in steps, in their order, and names each
// step's activity by the method the worker registers.
func TestStepsTableCoversTheBuiltinSteps(t *testing.T) {
	var names []string
	for _, s := range Steps {
		names = append(names, s.Name)
		m, ok := reflect.TypeOf(&NodeActivities{}).MethodByName(s.Activity)
		if !ok || reflect.ValueOf(s.Run).Pointer() != m.Func.Pointer() {
			t.Errorf("step %s: activity %q is not the method it runs", s.Name, s.Activity)
		}
	}
	if !slices.Equal(names, plan.Builtin()) {
		t.Errorf("steps %v; the built-in steps are %v", names, plan.Builtin())
	}
	if s, ok := StepNamed("drain-connections"); !ok || s.Activity != "RunHostStep" || s.Name != "drain-connections" {
		t.Errorf("a host's step: %+v %v", s, ok)
	}
	if _, ok := StepNamed("Not A Step"); ok {
		t.Error("a name no step may have has a step")
	}
}

func TestClassify(t *testing.T) {
	for typ, want := range map[string]plan.Failure{
		ErrTypeEvicted: plan.FailEvicted, ErrTypeProcessGone: plan.FailProcessGone, ErrTypeLeaveFailed: plan.FailLeaveUnconfirmed,
		ErrTypeInjected: plan.FailStep,
	} {
		err := temporal.NewNonRetryableApplicationError("x", typ, nil)
		if got := Classify(err); got != want {
			t.Errorf("%s: %s, want %s", typ, got, want)
		}
	}
	if got := Classify(errors.New("plain")); got != plan.FailStep {
		t.Errorf("a plain error: %s", got)
	}
}
