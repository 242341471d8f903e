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

// The local plan waits its backoff between two attempts, doubling it — and not after
// the last attempt, whose error is the step's answer.
func TestRunLocalBacksOffBetweenAttemptsOnly(t *testing.T) {
	var at []time.Time
	busy := func(context.Context, activities.StepInput) (activities.StepOutput, error) {
		at = append(at, time.Now())
		return activities.StepOutput{}, errors.New("busy")
	}
	spec := plan.StepSpec{Name: plan.StopHeartbeat, StartToClose: time.Second, MaxAttempts: 3, Backoff: 30 * time.Millisecond}
	if _, attempts, err := runLocal(context.Background(), spec, activities.StepInput{}, busy); attempts != 3 || err == nil || len(at) != 3 {
		t.Fatalf("%d attempts, err %v", attempts, err)
	}
	if gap1, gap2 := at[1].Sub(at[0]), at[2].Sub(at[1]); gap1 < 30*time.Millisecond || gap2 < 60*time.Millisecond {
		t.Errorf("attempts %s and %s apart; want at least the backoff, 30ms, then twice it", gap1, gap2)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	spec.MaxAttempts, spec.Backoff = 1, time.Hour
	if _, _, err := runLocal(ctx, spec, activities.StepInput{}, busy); err == nil || err.Error() != "busy" {
		t.Errorf("a single attempt that failed: %v; want its own error, not a wait for a backoff no attempt follows", err)
	}
}
