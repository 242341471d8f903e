package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/history"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/workflows"
)

// historiesEnv names the folder TestWriteHistories writes to (make histories).
const historiesEnv = "FAREWELL_WRITE_HISTORIES"

// TestWriteHistories runs one shutdown of each outcome and of each way of steering one
// on a real server, cluster and workers, and writes their histories for the replay
// tests that run in CI. It runs only when FAREWELL_WRITE_HISTORIES names the folder:
// `make histories`.
func TestWriteHistories(t *testing.T) {
	dir := os.Getenv(historiesEnv)
	if dir == "" {
		t.Skip("set " + historiesEnv + " (make histories) to write the replay histories")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, testConfig(), 8)
	ctx := context.Background()
	write := func(file string, run starter.Run) {
		t.Helper()
		h, err := history.Fetch(ctx, s.client, run.WorkflowID, run.RunID)
		if err != nil {
			t.Fatal(err)
		}
		b, err := history.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d events)", file, len(h.GetEvents()))
	}
	expect := func(file string, run starter.Run, r *workflows.ShutdownReport, err error, want plan.Outcome) {
		t.Helper()
		if want != "" && (err != nil || r.Outcome != want) {
			t.Fatalf("%s: %v %+v, want %s", file, err, r, want)
		}
		write(file, run)
	}

	s.nodes["node-2"].faults.Set(plan.SetGracefullyLeft, activities.FaultHang)
	s.nodes["node-3"].member().Transport().Arm(stall())
	s.nodes["node-4"].faults.Set(plan.Deregister, activities.FaultError)
	for _, sc := range []struct {
		file string
		req  workflows.ShutdownRequest
		want plan.Outcome
	}{
		{"graceful.json", workflows.ShutdownRequest{Node: "node-1", Reason: "maintenance"}, plan.Graceful},
		{"degraded.json", workflows.ShutdownRequest{Node: "node-2", Reason: "set-gracefully-left hangs"}, plan.Degraded},
		{"forced.json", workflows.ShutdownRequest{Node: "node-3", Reason: "gossip stalls"}, plan.Forced},
		{"aborted.json", workflows.ShutdownRequest{Node: "node-4", Reason: "deregister fails, policy abort",
			Override: withPolicy(plan.Deregister, plan.Abort)}, plan.Aborted},
		{"unknown-node.json", workflows.ShutdownRequest{Node: "node-9", Reason: "no such node"}, ""},
	} {
		run, r, err := s.run(t, sc.req)
		expect(sc.file, run, r, err, sc.want)
	}

	// Steered while a step hangs: cancelled, forced now, a step skipped.
	run := s.startHung(t, "node-5", plan.SetGracefullyLeft)
	if _, err := s.starter.Cancel(ctx, "node-5"); err != nil {
		t.Fatal(err)
	}
	r, err := s.starter.Wait(ctx, run, nil)
	expect("cancelled.json", run, r, err, plan.Aborted)

	run = s.startHung(t, "node-6", plan.SetGracefullyLeft)
	if err := s.starter.Steer(ctx, "node-6", workflows.UpdateForceNow, workflows.ForceNowRequest{Reason: "wedged"}); err != nil {
		t.Fatal(err)
	}
	r, err = s.starter.Wait(ctx, run, nil)
	expect("force-now.json", run, r, err, plan.Forced)

	run = s.startHung(t, "node-7", plan.SetGracefullyLeft)
	if err := s.starter.Steer(ctx, "node-7", workflows.UpdateSkipStep, workflows.SkipStepRequest{Step: plan.StopHeartbeat}); err != nil {
		t.Fatal(err)
	}
	s.nodes["node-7"].faults.Set(plan.SetGracefullyLeft, "")
	r, err = s.starter.Wait(ctx, run, nil)
	expect("skip-step.json", run, r, err, plan.Degraded)

	// A retry of the degraded shutdown, once its fault is gone.
	s.nodes["node-2"].faults.Set(plan.SetGracefullyLeft, "")
	run, _, err = s.starter.Retry(ctx, "node-2")
	if err != nil {
		t.Fatal(err)
	}
	r, err = s.starter.Wait(ctx, run, nil)
	expect("retry.json", run, r, err, plan.Graceful)

	// A host with steps of its own, one of which fails after deregister, policy force.
	var mu sync.Mutex
	var ran []string
	host := hostStepsNode(s, "host-1", &ran, &mu)
	host.faults.Set("flush-state", activities.FaultError)
	eventually(t, 10*time.Second, "the observer to see host-1's steps", func() bool {
		m, _ := s.observer.Member("host-1")
		return m.Steps == 2
	})
	run, r, err = s.run(t, workflows.ShutdownRequest{Node: "host-1", Reason: "a host step fails after deregister, policy force"})
	expect("host-steps.json", run, r, err, plan.Forced)
}
