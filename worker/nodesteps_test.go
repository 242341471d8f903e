package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/internal/testkit"
	"github.com/farewell-project/farewell/plan"
)

// pair starts two real members on loopback: the node under test and a peer that
// confirms its broadcasts.
func pair(t *testing.T) (*activities.NodeActivities, *cluster.Member) {
	t.Helper()
	member := func(name string) *cluster.Member {
		m, err := cluster.New(cluster.Options{Name: name, BindAddr: "127.0.0.1", Profile: cluster.ProfileLocal,
			HeartbeatInterval: 50 * time.Millisecond, HeartbeatExpiration: time.Second, Logger: testkit.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		return m
	}
	node, peer := member("node-1"), member("peer")
	if err := peer.Join(context.Background(), []string{node.Addr()}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the members to see each other", func() bool {
		return len(node.Members()) == 2 && len(peer.Members()) == 2
	})
	node.StartHeartbeat()
	return &activities.NodeActivities{Member: NodeMember(node), Faults: &activities.Faults{}, Logger: testkit.Logger(t)}, peer
}

func in(a *activities.NodeActivities, step string) activities.StepInput {
	return activities.StepInput{Node: a.Member.Name(), Instance: a.Member.Instance(), Step: step}
}

func ctxWithin(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

func TestStepsRefuseAnotherNodeOrProcess(t *testing.T) {
	a, _ := pair(t)
	for name, tt := range map[string]struct {
		in   activities.StepInput
		want string
	}{
		"other node":    {activities.StepInput{Node: "node-2", Instance: "x", Step: plan.StopHeartbeat}, activities.ErrTypeWrongNode},
		"no process":    {activities.StepInput{Node: "node-1", Step: plan.StopHeartbeat}, activities.ErrTypeWrongNode},
		"older process": {activities.StepInput{Node: "node-1", Instance: "an-older-one", Step: plan.StopHeartbeat}, activities.ErrTypeProcessGone},
	} {
		_, err := a.StopHeartbeat(context.Background(), tt.in)
		if errType(err) != tt.want {
			t.Errorf("%s: %v, want a %s error", name, err, tt.want)
		}
	}
	if !a.Member.HeartbeatRunning() {
		t.Error("a refused step stopped the heartbeat")
	}
}

func TestEveryStepTwiceIsOnce(t *testing.T) {
	a, peer := pair(t)
	var stops atomic.Int32
	a.Member.(nodeMember).m.Services().Register("svc", func(context.Context) error { stops.Add(1); return nil }, time.Second)
	steps := []struct {
		name string
		run  func(context.Context, activities.StepInput) (activities.StepOutput, error)
	}{
		{plan.SetGracefullyLeft, a.SetGracefullyLeft},
		{plan.StopHeartbeat, a.StopHeartbeat},
		{plan.Deregister, a.Deregister},
		{plan.StopServices, a.StopServices},
	}
	for _, s := range steps {
		first, err := s.run(ctxWithin(t, 5*time.Second), in(a, s.name))
		if err != nil || first.AlreadyDone {
			t.Fatalf("%s: %v %+v", s.name, err, first)
		}
		second, err := s.run(ctxWithin(t, 5*time.Second), in(a, s.name))
		if err != nil || (!second.AlreadyDone && s.name != plan.SetGracefullyLeft) {
			t.Errorf("%s again: %v %+v, want already done", s.name, err, second)
		}
	}
	if stops.Load() != 1 {
		t.Errorf("the service was stopped %d times", stops.Load())
	}
	if info, _ := peer.Member("node-1"); info.State != cluster.StateLeft {
		t.Errorf("peer sees node-1 %s", info.State)
	}
}

func TestRollback(t *testing.T) {
	t.Run("puts the node back", func(t *testing.T) {
		a, peer := pair(t)
		if _, err := a.SetGracefullyLeft(ctxWithin(t, 5*time.Second), in(a, plan.SetGracefullyLeft)); err != nil {
			t.Fatal(err)
		}
		a.StopHeartbeat(context.Background(), in(a, plan.StopHeartbeat))
		if _, err := a.Rollback(ctxWithin(t, 5*time.Second), in(a, plan.Rollback)); err != nil {
			t.Fatal(err)
		}
		if info, _ := peer.Member("node-1"); info.State != cluster.StateAlive || !a.Member.HeartbeatRunning() {
			t.Errorf("after rollback: peer sees %s, heartbeat %v", info.State, a.Member.HeartbeatRunning())
		}
	})
	t.Run("refuses once a service was stopped", func(t *testing.T) {
		a, _ := pair(t)
		a.Member.(nodeMember).m.Services().Register("svc", func(context.Context) error { return nil }, time.Second)
		a.StopServices(ctxWithin(t, 5*time.Second), in(a, plan.StopServices))
		_, err := a.Rollback(ctxWithin(t, 5*time.Second), in(a, plan.Rollback))
		if errType(err) != activities.ErrTypeCannotRollBack || !strings.Contains(err.Error(), "services") {
			t.Errorf("rollback with a stopped service: %v", err)
		}
	})
	t.Run("refuses after the node left", func(t *testing.T) {
		a, _ := pair(t)
		if _, err := a.Deregister(ctxWithin(t, 5*time.Second), in(a, plan.Deregister)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Rollback(ctxWithin(t, 5*time.Second), in(a, plan.Rollback)); errType(err) != activities.ErrTypeCannotRollBack {
			t.Errorf("rollback after leaving: %v", err)
		}
	})
}

func TestDeregisterAfterACrashIsNotAlreadyDone(t *testing.T) {
	a, _ := pair(t)
	a.Member.(nodeMember).m.Shutdown()
	_, err := a.Deregister(ctxWithin(t, 5*time.Second), in(a, plan.Deregister))
	if errType(err) != activities.ErrTypeLeaveFailed {
		t.Errorf("deregister after a shutdown without leave: %v, want %s", err, activities.ErrTypeLeaveFailed)
	}
}

func TestStopServicesResumes(t *testing.T) {
	a, _ := pair(t)
	var fail atomic.Bool
	fail.Store(true)
	var calls [2]atomic.Int32
	for i := range calls {
		a.Member.(nodeMember).m.Services().Register(fmt.Sprint("svc-", i), func(context.Context) error {
			calls[i].Add(1)
			if i == 0 && fail.Load() {
				return errors.New("busy")
			}
			return nil
		}, time.Second)
	}
	if _, err := a.StopServices(ctxWithin(t, 5*time.Second), in(a, plan.StopServices)); err == nil {
		t.Fatal("a failing service did not fail the step")
	}
	fail.Store(false)
	out, err := a.StopServices(ctxWithin(t, 5*time.Second), in(a, plan.StopServices))
	if err != nil {
		t.Fatal(err)
	}
	if calls[0].Load() != 2 || calls[1].Load() != 1 {
		t.Errorf("stop calls %d and %d: the retry did not resume", calls[0].Load(), calls[1].Load())
	}
	if len(out.Services) != 2 || !out.Services[0].AlreadyStopped {
		t.Errorf("services %+v", out.Services)
	}
}

func TestInjectedFaults(t *testing.T) {
	a, _ := pair(t)
	a.Faults.Set(plan.StopHeartbeat, activities.FaultError)
	if _, err := a.StopHeartbeat(context.Background(), in(a, plan.StopHeartbeat)); errType(err) != activities.ErrTypeInjected {
		t.Errorf("error fault: %v", err)
	}
	a.Faults.Set(plan.StopHeartbeat, activities.FaultHang)
	start := time.Now()
	_, err := a.StopHeartbeat(ctxWithin(t, 100*time.Millisecond), in(a, plan.StopHeartbeat))
	if err == nil || time.Since(start) < 100*time.Millisecond {
		t.Errorf("hang fault returned %v after %s", err, time.Since(start))
	}
	if _, _, err := activities.ParseStepFault("deregister=explode"); err == nil {
		t.Error("bad fault mode accepted")
	}
	if _, _, err := activities.ParseStepFault("say-goodbye=hang"); err == nil || !strings.Contains(err.Error(), "say-goodbye") {
		t.Errorf("unknown step: %v", err)
	}
}
