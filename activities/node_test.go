package activities

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/plan"
)

// fakeMember records what the steps ask of it; its zero value is an alive member with
// its heartbeat running and nothing registered.
type fakeMember struct {
	mu           sync.Mutex
	state        string
	heartbeatOff bool
	left         bool
	leaveTimeout time.Duration
	setStateErr  error
}

var _ Member = (*fakeMember)(nil)

func (f *fakeMember) Name() string     { return "node-1" }
func (f *fakeMember) Instance() string { return "p1" }
func (f *fakeMember) State() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state == "" {
		return StateAlive
	}
	return f.state
}
func (f *fakeMember) SetState(_ context.Context, s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.setStateErr != nil {
		return f.setStateErr
	}
	f.state = s
	return nil
}
func (f *fakeMember) HeartbeatRunning() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.heartbeatOff
}
func (f *fakeMember) StartHeartbeat() { f.mu.Lock(); defer f.mu.Unlock(); f.heartbeatOff = false }
func (f *fakeMember) StopHeartbeat()  { f.mu.Lock(); defer f.mu.Unlock(); f.heartbeatOff = true }
func (f *fakeMember) Leave(d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.left, f.leaveTimeout = true, d
	return nil
}
func (f *fakeMember) Left() (bool, error)                       { f.mu.Lock(); defer f.mu.Unlock(); return f.left, nil }
func (f *fakeMember) Evicted() (string, string, bool)           { return "", "", false }
func (f *fakeMember) Services() []string                        { return nil }
func (f *fakeMember) RunningServices() []string                 { return nil }
func (f *fakeMember) Terminate(context.Context) []ServiceResult { return nil }
func (f *fakeMember) StopServices(context.Context, func(ServiceResult)) []ServiceResult {
	return nil
}

func stepIn(step string) StepInput { return StepInput{Node: "node-1", Instance: "p1", Step: step} }

func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

func TestDeregisterWithoutDeadlineUsesThePlan(t *testing.T) {
	m := &fakeMember{}
	p := plan.Default()
	p.Steps[p.Index(plan.Deregister)].StartToClose = 7 * time.Second
	a := &NodeActivities{Member: m, Plan: p}
	if _, err := a.Deregister(context.Background(), stepIn(plan.Deregister)); err != nil {
		t.Fatal(err)
	}
	if m.leaveTimeout != 7*time.Second {
		t.Errorf("leave bounded by %s, want the plan's 7s", m.leaveTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m.left = false
	if _, err := a.Deregister(ctx, stepIn(plan.Deregister)); err != nil {
		t.Fatal(err)
	}
	if m.leaveTimeout > 2*time.Second || m.leaveTimeout <= 0 {
		t.Errorf("leave bounded by %s, want its context's 2s", m.leaveTimeout)
	}
}

func TestStepsCheckNodeAndProcess(t *testing.T) {
	a := &NodeActivities{Member: &fakeMember{}}
	for name, tt := range map[string]struct {
		in   StepInput
		want string
	}{
		"other node":    {StepInput{Node: "node-2", Instance: "p1", Step: plan.StopHeartbeat}, ErrTypeWrongNode},
		"other process": {StepInput{Node: "node-1", Instance: "p0", Step: plan.StopHeartbeat}, ErrTypeProcessGone},
		"no process":    {StepInput{Node: "node-1", Step: plan.StopHeartbeat}, ErrTypeWrongNode},
	} {
		if _, err := a.StopHeartbeat(context.Background(), tt.in); errType(err) != tt.want {
			t.Errorf("%s: %v, want %s", name, err, tt.want)
		}
	}
	if !a.Member.HeartbeatRunning() {
		t.Error("a refused step acted")
	}
}

func TestSetStateFailuresAreClassified(t *testing.T) {
	for name, tt := range map[string]struct {
		err  error
		want string
	}{
		"evicted":  {ErrEvicted, ErrTypeEvicted},
		"departed": {ErrDeparted, ErrTypeCannotRollBack},
		"passing":  {errors.New("broadcast timed out"), "StepFailed"},
	} {
		a := &NodeActivities{Member: &fakeMember{setStateErr: tt.err}}
		if _, err := a.SetGracefullyLeft(context.Background(), stepIn(plan.SetGracefullyLeft)); errType(err) != tt.want {
			t.Errorf("%s: %v, want %s", name, err, tt.want)
		}
	}
}
