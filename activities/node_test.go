package activities

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

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
	evictedBy    string // the member that evicted it, if one did
	terminated   int    // Terminate calls
	stopped      int    // StopServices calls
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
func (f *fakeMember) Left() (bool, error) { f.mu.Lock(); defer f.mu.Unlock(); return f.left, nil }
func (f *fakeMember) Evicted() (string, string, bool) {
	return f.evictedBy, "test", f.evictedBy != ""
}
func (f *fakeMember) Services() []string        { return nil }
func (f *fakeMember) RunningServices() []string { return nil }
func (f *fakeMember) Terminate(context.Context) []ServiceResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.terminated++
	return nil
}
func (f *fakeMember) StopServices(context.Context, func(ServiceResult)) []ServiceResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped++
	return nil
}

// untouched says what a refused step did to the member, if anything.
func (f *fakeMember) untouched() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.state != "" && f.state != StateAlive:
		return "set its state to " + f.state
	case f.heartbeatOff:
		return "stopped its heartbeat"
	case f.left:
		return "made it leave"
	case f.terminated > 0:
		return "terminated it"
	case f.stopped > 0:
		return "stopped its services"
	}
	return ""
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

// nodeSteps are the node's activities that act on its process, by step name.
func nodeSteps() map[string]func(*NodeActivities, context.Context, StepInput) (StepOutput, error) {
	return map[string]func(*NodeActivities, context.Context, StepInput) (StepOutput, error){
		plan.SetGracefullyLeft: (*NodeActivities).SetGracefullyLeft,
		plan.StopHeartbeat:     (*NodeActivities).StopHeartbeat,
		plan.Deregister:        (*NodeActivities).Deregister,
		plan.StopServices:      (*NodeActivities).StopServices,
		plan.Rollback:          (*NodeActivities).Rollback,
		plan.Terminate:         (*NodeActivities).Terminate,
		"host step":            (*NodeActivities).RunHostStep,
	}
}

// Every step — the termination and the rollback too — acts only on the process the run
// looked up: asked of another process under the node's name (a restart), it refuses and
// touches nothing.
func TestEveryStepRefusesAnotherProcess(t *testing.T) {
	for name, step := range nodeSteps() {
		for _, instance := range []string{"p0", ""} {
			m := &fakeMember{}
			a := &NodeActivities{Member: m}
			ran := false
			a.Host = map[string]HostStepFunc{"host step": func(context.Context) error { ran = true; return nil }}
			_, err := step(a, context.Background(), StepInput{Node: "node-1", Instance: instance, Step: name})
			want := ErrTypeProcessGone
			if instance == "" {
				want = ErrTypeWrongNode
			}
			if errType(err) != want {
				t.Errorf("%s of process %q: %v, want %s", name, instance, err, want)
			}
			if did := m.untouched(); did != "" || ran {
				t.Errorf("%s of process %q refused, yet it %s (host step ran: %v)", name, instance, did, ran)
			}
		}
	}
	if _, err := (&NodeActivities{Member: &fakeMember{}}).HostSteps(context.Background(), StepInput{Node: "node-1", Instance: "p0"}); errType(err) != ErrTypeProcessGone {
		t.Errorf("HostSteps of another process: %v", err)
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

// An evicted node runs no step but its termination: the eviction is the cluster's
// word that it is out, and only the process's end is left to do.
func TestAnEvictedNodeRunsOnlyItsTermination(t *testing.T) {
	steps := nodeSteps()
	delete(steps, plan.Terminate)
	for name, step := range steps {
		m := &fakeMember{evictedBy: "orch-1"}
		ran := false
		a := &NodeActivities{Member: m, Host: map[string]HostStepFunc{"host step": func(context.Context) error { ran = true; return nil }}}
		if _, err := step(a, context.Background(), stepIn(name)); errType(err) != ErrTypeEvicted {
			t.Errorf("%s of an evicted node: %v, want %s", name, err, ErrTypeEvicted)
		}
		if did := m.untouched(); did != "" || ran {
			t.Errorf("%s of an evicted node refused, yet it %s (host step ran: %v)", name, did, ran)
		}
	}
	m := &fakeMember{evictedBy: "orch-1"}
	if _, err := (&NodeActivities{Member: m}).Terminate(context.Background(), stepIn(plan.Terminate)); err != nil || m.terminated != 1 {
		t.Errorf("terminate of an evicted node: %v, terminated %d times", err, m.terminated)
	}
}

// set-gracefully-left says when the node was leaving already, and only then.
func TestSetGracefullyLeftNotesALeaveAlreadyUnderWay(t *testing.T) {
	for state, note := range map[string]string{StateLeaving: "state was already leaving", StateAlive: ""} {
		out, err := (&NodeActivities{Member: &fakeMember{state: state}}).SetGracefullyLeft(context.Background(), stepIn(plan.SetGracefullyLeft))
		if err != nil || out.Note != note {
			t.Errorf("from %s: note %q, want %q (%v)", state, out.Note, note, err)
		}
	}
}

// A step's own deadline comes before its StartToClose, by a tenth of the time left and
// never more than 250 ms, so that it returns an explanation before the server times it out.
func TestAStepEndsBeforeItsDeadline(t *testing.T) {
	for left, margin := range map[time.Duration]time.Duration{
		time.Second: 100 * time.Millisecond, 2500 * time.Millisecond: 250 * time.Millisecond,
		time.Minute: 250 * time.Millisecond, 0: 0,
	} {
		if got := stepMargin(left); got != margin {
			t.Errorf("margin with %s left: %s, want %s", left, got, margin)
		}
	}
	var seen time.Time
	a := &NodeActivities{Member: &fakeMember{}, Host: map[string]HostStepFunc{"drain": func(ctx context.Context) error {
		seen, _ = ctx.Deadline()
		return nil
	}}}
	deadline := time.Now().Add(2 * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if _, err := a.RunHostStep(ctx, stepIn("drain")); err != nil {
		t.Fatal(err)
	}
	// A tenth of what was left when the step began: 200 ms, less on a machine so loaded
	// that the step began late — but always before the activity's own deadline.
	if early := deadline.Sub(seen); early <= 0 || early > 250*time.Millisecond {
		t.Errorf("the step's deadline is %s before the activity's, want up to 200 ms before it", early)
	}
}

// A step that runs past its heartbeat timeout heartbeats meanwhile, so that only a
// node that died mid-step is taken for one.
func TestAStepHeartbeatsWhileItRuns(t *testing.T) {
	a := &NodeActivities{Member: &fakeMember{}, Host: map[string]HostStepFunc{"drain": func(ctx context.Context) error {
		select {
		case <-time.After(2500 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	run := func(ctx workflow.Context) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second, HeartbeatTimeout: time.Second,
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
		return workflow.ExecuteActivity(ctx, a.RunHostStep, stepIn("drain")).Get(ctx, nil)
	}
	// As the node's own shutdown runs it.
	env.RegisterWorkflowWithOptions(run, workflow.RegisterOptions{Name: ShutdownWorkflowType})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ShutdownWorkflowIDPrefix + "node-1"})
	env.ExecuteWorkflow(ShutdownWorkflowType)
	if err := env.GetWorkflowError(); err != nil {
		t.Errorf("a step of 2.5s under a heartbeat timeout of 1s: %v; want it done", err)
	}
}
