package agent

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
)

func TestRunLocal(t *testing.T) {
	spec := plan.StepSpec{Name: plan.StopHeartbeat, StartToClose: 50 * time.Millisecond, MaxAttempts: 3, Backoff: time.Millisecond}
	var calls atomic.Int32
	count := func(err error) func(context.Context, activities.StepInput) (activities.StepOutput, error) {
		return func(context.Context, activities.StepInput) (activities.StepOutput, error) {
			calls.Add(1)
			return activities.StepOutput{}, err
		}
	}
	tests := []struct {
		name     string
		spec     plan.StepSpec
		step     func(context.Context, activities.StepInput) (activities.StepOutput, error)
		attempts int
		ok       bool
	}{
		{"succeeds at once", spec, count(nil), 1, true},
		{"retries a passing failure", spec, count(errors.New("busy")), 3, false},
		{"stops at a permanent failure", spec, count(temporal.NewNonRetryableApplicationError("evicted", activities.ErrTypeEvicted, nil)), 1, false},
		{"never succeeds without an attempt", plan.StepSpec{Name: plan.StopHeartbeat, StartToClose: time.Second}, count(nil), 0, false},
		{"an attempt that ignores its context is cut at its timeout", spec,
			func(context.Context, activities.StepInput) (activities.StepOutput, error) {
				calls.Add(1)
				select {} // never returns
			}, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls.Store(0)
			_, attempts, err := runLocal(context.Background(), tt.spec, activities.StepInput{}, tt.step)
			if attempts != tt.attempts || int(calls.Load()) != tt.attempts || (err == nil) != tt.ok {
				t.Errorf("%d attempts (%d calls), err %v; want %d, ok %v", attempts, calls.Load(), err, tt.attempts, tt.ok)
			}
		})
	}
}
