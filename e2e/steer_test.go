package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

func TestSteerAndCancelFromTheCLI(t *testing.T) {
	s := newStack(t, testConfig(), 2)
	env := []string{"TEMPORAL_ADDRESS=" + s.srv.Address()}
	ctx := context.Background()

	// A long step gives time to steer: set-gracefully-left hangs (2 × 1 s).
	s.nodes["node-1"].faults.Set(plan.SetGracefullyLeft, activities.FaultHang)
	run, err := s.starter.Shutdown(ctx, workflows.ShutdownRequest{Node: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"signal", "node-1", "skip-step", "say-goodbye"}, 2, `unknown step "say-goodbye"`},
		{[]string{"signal", "node-1", "extend-timeout", "deregister", "soon"}, 2, `"soon"`},
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
	if r.Outcome != plan.Forced || !strings.Contains(r.ForceReason, "force-now") || hb.Status != plan.StepSkipped {
		t.Errorf("after force-now: outcome %s, reason %q, stop-heartbeat %s", r.Outcome, r.ForceReason, hb.Status)
	}
	s.assertInvariant("node-1", r)

	// Cancel before deregister rolls back.
	s.nodes["node-2"].faults.Set(plan.SetGracefullyLeft, activities.FaultHang)
	run, err = s.starter.Shutdown(ctx, workflows.ShutdownRequest{Node: "node-2"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "set-gracefully-left to run", func() bool {
		st, err := s.starter.Status(ctx, "node-2")
		return err == nil && st.Report != nil && st.Report.CurrentStep() == plan.SetGracefullyLeft
	})
	if code, stdout, stderr := runCLI(t, env, "cancel", "node-2"); code != 0 || !strings.Contains(stdout, "cancel requested") {
		t.Fatalf("cancel: exit %d\n%s%s", code, stdout, stderr)
	}
	r, err = s.starter.Wait(ctx, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != plan.Aborted || !r.RolledBack {
		t.Fatalf("after cancel: %s, rolled back %v", r.Outcome, r.RolledBack)
	}
	s.nodes["node-2"].faults.Set(plan.SetGracefullyLeft, "")
	s.assertInvariant("node-2", r)
	if code, _, stderr := runCLI(t, env, "cancel", "node-2"); code != 2 || !strings.Contains(stderr, "not running") {
		t.Errorf("cancel of a finished shutdown: exit %d: %s", code, stderr)
	}
}
