package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/internal/testlog"
)

// pair starts two real members on loopback: the node under test and a peer that
// confirms its broadcasts.
func pair(t *testing.T) (*NodeActivities, *cluster.Member) {
	t.Helper()
	member := func(name string) *cluster.Member {
		m, err := cluster.New(cluster.Options{Cluster: config.Cluster{Name: name, Bind: "127.0.0.1:0", Profile: config.ProfileLocal,
			HeartbeatInterval: 50 * time.Millisecond, HeartbeatExpiration: time.Second}, Logger: testlog.New(t)})
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
	deadline := time.Now().Add(10 * time.Second)
	for len(node.Members()) < 2 || len(peer.Members()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("members did not see each other")
		}
		time.Sleep(5 * time.Millisecond)
	}
	node.StartHeartbeat()
	return &NodeActivities{Member: node, Faults: &Faults{}, Logger: testlog.New(t)}, peer
}

func in(a *NodeActivities, step string) StepInput {
	return StepInput{Node: a.Member.Name(), Instance: a.Member.Instance(), Step: step}
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
	for name, input := range map[string]StepInput{
		"other node":    {Node: "node-2", Step: config.StepStopHeartbeat},
		"newer process": {Node: "node-1", Instance: "an-older-one", Step: config.StepStopHeartbeat},
	} {
		_, err := a.StopHeartbeat(context.Background(), input)
		if errType(err) != ErrTypeWrongNode {
			t.Errorf("%s: %v, want a %s error", name, err, ErrTypeWrongNode)
		}
	}
	if !a.Member.HeartbeatRunning() {
		t.Error("a refused step stopped the heartbeat")
	}
}

func TestEveryStepTwiceIsOnce(t *testing.T) {
	a, peer := pair(t)
	var stops atomic.Int32
	a.Member.Services().Register("svc", func(context.Context) error { stops.Add(1); return nil }, time.Second)
	steps := []struct {
		name string
		run  func(context.Context, StepInput) (StepOutput, error)
	}{
		{config.StepSetGracefullyLeft, a.SetGracefullyLeft},
		{config.StepStopHeartbeat, a.StopHeartbeat},
		{config.StepDeregister, a.Deregister},
		{config.StepStopServices, a.StopServices},
	}
	for _, s := range steps {
		first, err := s.run(ctxWithin(t, 5*time.Second), in(a, s.name))
		if err != nil || first.AlreadyDone {
			t.Fatalf("%s: %v %+v", s.name, err, first)
		}
		second, err := s.run(ctxWithin(t, 5*time.Second), in(a, s.name))
		if err != nil || (!second.AlreadyDone && s.name != config.StepSetGracefullyLeft) {
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
		if _, err := a.SetGracefullyLeft(ctxWithin(t, 5*time.Second), in(a, config.StepSetGracefullyLeft)); err != nil {
			t.Fatal(err)
		}
		a.StopHeartbeat(context.Background(), in(a, config.StepStopHeartbeat))
		if _, err := a.Rollback(ctxWithin(t, 5*time.Second), in(a, StepRollback)); err != nil {
			t.Fatal(err)
		}
		if info, _ := peer.Member("node-1"); info.State != cluster.StateAlive || !a.Member.HeartbeatRunning() {
			t.Errorf("after rollback: peer sees %s, heartbeat %v", info.State, a.Member.HeartbeatRunning())
		}
	})
	t.Run("refuses once a service was stopped", func(t *testing.T) {
		a, _ := pair(t)
		a.Member.Services().Register("svc", func(context.Context) error { return nil }, time.Second)
		a.StopServices(ctxWithin(t, 5*time.Second), in(a, config.StepStopServices))
		_, err := a.Rollback(ctxWithin(t, 5*time.Second), in(a, StepRollback))
		if errType(err) != ErrTypeCannotRollBack || !strings.Contains(err.Error(), "services") {
			t.Errorf("rollback with a stopped service: %v", err)
		}
	})
	t.Run("refuses after the node left", func(t *testing.T) {
		a, _ := pair(t)
		if _, err := a.Deregister(ctxWithin(t, 5*time.Second), in(a, config.StepDeregister)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Rollback(ctxWithin(t, 5*time.Second), in(a, StepRollback)); errType(err) != ErrTypeCannotRollBack {
			t.Errorf("rollback after leaving: %v", err)
		}
	})
}

func TestDeregisterAfterACrashIsNotAlreadyDone(t *testing.T) {
	a, _ := pair(t)
	a.Member.Shutdown()
	_, err := a.Deregister(ctxWithin(t, 5*time.Second), in(a, config.StepDeregister))
	if errType(err) != ErrTypeLeaveFailed {
		t.Errorf("deregister after a shutdown without leave: %v, want %s", err, ErrTypeLeaveFailed)
	}
}

func TestStopServicesResumes(t *testing.T) {
	a, _ := pair(t)
	var fail atomic.Bool
	fail.Store(true)
	var calls [2]atomic.Int32
	for i := range calls {
		a.Member.Services().Register(fmt.Sprint("svc-", i), func(context.Context) error {
			calls[i].Add(1)
			if i == 0 && fail.Load() {
				return errors.New("busy")
			}
			return nil
		}, time.Second)
	}
	if _, err := a.StopServices(ctxWithin(t, 5*time.Second), in(a, config.StepStopServices)); err == nil {
		t.Fatal("a failing service did not fail the step")
	}
	fail.Store(false)
	out, err := a.StopServices(ctxWithin(t, 5*time.Second), in(a, config.StepStopServices))
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
	a.Faults.Set(config.StepStopHeartbeat, FaultError)
	if _, err := a.StopHeartbeat(context.Background(), in(a, config.StepStopHeartbeat)); errType(err) != ErrTypeInjected {
		t.Errorf("error fault: %v", err)
	}
	a.Faults.Set(config.StepStopHeartbeat, FaultHang)
	start := time.Now()
	_, err := a.StopHeartbeat(ctxWithin(t, 100*time.Millisecond), in(a, config.StepStopHeartbeat))
	if err == nil || time.Since(start) < 100*time.Millisecond {
		t.Errorf("hang fault returned %v after %s", err, time.Since(start))
	}
	if _, _, err := ParseStepFault("deregister=explode"); err == nil {
		t.Error("bad fault mode accepted")
	}
	if _, _, err := ParseStepFault("say-goodbye=hang"); err == nil || !strings.Contains(err.Error(), "say-goodbye") {
		t.Errorf("unknown step: %v", err)
	}
}
