package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/history"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/workflows"
)

// longHang is an override that gives a hung step a minute: time enough to steer the
// shutdown while it hangs, whatever the load on this machine. Tests end the hang
// themselves (force-now, cancel, clearing the fault).
func longHang(step string) *plan.Override {
	minute, one := plan.Duration(time.Minute), 1
	return &plan.Override{Steps: map[string]plan.StepOverride{step: {StartToClose: &minute, MaxAttempts: &one}}}
}

// startHung starts node's shutdown with step hanging, and returns once it runs.
func (s *e2eStack) startHung(t testing.TB, node, step string) starter.Run {
	t.Helper()
	s.nodes[node].faults.Set(step, activities.FaultHang)
	run, err := s.starter.Shutdown(context.Background(), workflows.ShutdownRequest{Node: node, Override: longHang(step)})
	if err != nil {
		t.Fatal(err)
	}
	s.waitStep(t, node, step, plan.StepRunning)
	return run
}

// waitStep waits until node's running shutdown shows step in status.
func (s *e2eStack) waitStep(t testing.TB, node, step string, status plan.StepStatus) {
	t.Helper()
	eventually(t, 30*time.Second, node+"'s "+step+" to be "+string(status), func() bool {
		st, err := s.starter.Status(context.Background(), node)
		if err != nil || st.Report == nil {
			return false
		}
		r, _ := st.Report.Step(step)
		return r.Status == status
	})
}

func TestSteerAndCancelFromTheCLI(t *testing.T) {
	s := newStack(t, testConfig(), 3)
	env := []string{"TEMPORAL_ADDRESS=" + s.srv.Address()}
	ctx := context.Background()

	t.Run("refusals, skip-step and extend-timeout while a step hangs, then force-now", func(t *testing.T) {
		run := s.startHung(t, "node-1", plan.SetGracefullyLeft)
		for _, tt := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"signal", "node-1", "skip-step", "say-goodbye"}, 2, `unknown step "say-goodbye"`},
			{[]string{"signal", "node-1", "skip-step", "set-gracefully-left"}, 2, "already running"},
			{[]string{"signal", "node-1", "extend-timeout", "deregister", "soon"}, 2, `"soon"`},
			{[]string{"signal", "node-1", "extend-timeout", "deregister", "1s"}, 2, "does not extend"},
			{[]string{"signal", "node-1", "extend-timeout", "deregister", "30s"}, 0, "applied"},
			{[]string{"signal", "node-1", "skip-step", "stop-heartbeat", "--reason", "test"}, 0, "applied"},
			{[]string{"signal", "node-1", "force-now"}, 0, "applied"},
			{[]string{"signal", "node-1", "force-now"}, 2, "already forcing"},
			{[]string{"signal", "node-7", "force-now"}, 2, "node-7"},
		} {
			code, stdout, stderr := runCLI(t, env, tt.args...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("%v: exit %d, want %d and %q:\n%s%s", tt.args, code, tt.code, tt.want, stdout, stderr)
			}
		}
		r, err := s.starter.Wait(ctx, run, nil)
		if err != nil {
			t.Fatal(err)
		}
		hb, _ := r.Step(plan.StopHeartbeat)
		if r.Outcome != plan.Forced || !strings.Contains(r.ForceReason, "force-now") || hb.Status != plan.StepSkipped ||
			!strings.Contains(hb.Note, "skipped by the operator: test") {
			t.Errorf("after force-now: outcome %s, reason %q, stop-heartbeat %+v", r.Outcome, r.ForceReason, hb)
		}
		s.assertInvariant(t, "node-1", r)
	})

	t.Run("skip-step and extend-timeout take effect", func(t *testing.T) {
		run := s.startHung(t, "node-2", plan.SetGracefullyLeft)
		for _, args := range [][]string{{"signal", "node-2", "skip-step", "stop-heartbeat"}, {"signal", "node-2", "extend-timeout", "deregister", "45s"}} {
			if code, stdout, stderr := runCLI(t, env, args...); code != 0 {
				t.Fatalf("%v: exit %d\n%s%s", args, code, stdout, stderr)
			}
		}
		s.nodes["node-2"].faults.Set(plan.SetGracefullyLeft, "") // the hung step goes on
		r, err := s.starter.Wait(ctx, run, nil)
		if err != nil {
			t.Fatal(err)
		}
		hb, _ := r.Step(plan.StopHeartbeat)
		if hb.Status != plan.StepSkipped || hb.Attempts != 0 || r.Outcome != plan.Degraded {
			t.Errorf("skipped step %+v, outcome %s", hb, r.Outcome)
		}
		if got := scheduledTimeout(t, s, run, "Deregister"); got != 45*time.Second {
			t.Errorf("deregister was scheduled with start-to-close %s, want the extended 45s", got)
		}
		s.assertInvariant(t, "node-2", r)
	})

	t.Run("cancel before deregister rolls back; a finished shutdown cannot be cancelled", func(t *testing.T) {
		run := s.startHung(t, "node-3", plan.SetGracefullyLeft)
		if code, stdout, stderr := runCLI(t, env, "cancel", "node-3"); code != 0 || !strings.Contains(stdout, "cancel requested") {
			t.Fatalf("cancel: exit %d\n%s%s", code, stdout, stderr)
		}
		r, err := s.starter.Wait(ctx, run, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Outcome != plan.Aborted || !r.RolledBack {
			t.Fatalf("after cancel: %s, rolled back %v", r.Outcome, r.RolledBack)
		}
		s.nodes["node-3"].faults.Set(plan.SetGracefullyLeft, "")
		s.assertInvariant(t, "node-3", r)
		if code, _, stderr := runCLI(t, env, "cancel", "node-3"); code != 2 || !strings.Contains(stderr, "not running") {
			t.Errorf("cancel of a finished shutdown: exit %d: %s", code, stderr)
		}
	})
}

// scheduledTimeout is the start-to-close an activity was scheduled with in a run, as
// its history records it.
func scheduledTimeout(t *testing.T, s *e2eStack, run starter.Run, activity string) time.Duration {
	t.Helper()
	h, err := history.Fetch(context.Background(), s.client, run.WorkflowID, run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range h.GetEvents() {
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == activity {
			return a.GetStartToCloseTimeout().AsDuration()
		}
	}
	t.Fatalf("no %s scheduled in run %s", activity, run.RunID)
	return 0
}
