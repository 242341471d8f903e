package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/history"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

// historiesEnv names the folder TestWriteHistories writes to (make histories).
const historiesEnv = "FAREWELL_WRITE_HISTORIES"

// TestWriteHistories runs one shutdown of each outcome on a real server, cluster and
// workers, and writes their histories for the replay tests that run in CI. It runs only
// when FAREWELL_WRITE_HISTORIES names the folder: `make histories`.
func TestWriteHistories(t *testing.T) {
	dir := os.Getenv(historiesEnv)
	if dir == "" {
		t.Skip("set " + historiesEnv + " (make histories) to write the replay histories")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	s := newStack(t, cfg, 4)
	s.nodes["node-2"].faults.Set(plan.SetGracefullyLeft, activities.FaultHang)
	s.nodes["node-3"].member().Transport().Arm(stall())
	s.nodes["node-4"].faults.Set(plan.Deregister, activities.FaultError)
	abort := withPolicy(plan.Deregister, plan.Abort)
	for _, sc := range []struct {
		file string
		req  workflows.ShutdownRequest
		want plan.Outcome
	}{
		{"graceful.json", workflows.ShutdownRequest{Node: "node-1", Reason: "maintenance"}, plan.Graceful},
		{"degraded.json", workflows.ShutdownRequest{Node: "node-2", Reason: "set-gracefully-left hangs"}, plan.Degraded},
		{"forced.json", workflows.ShutdownRequest{Node: "node-3", Reason: "gossip stalls"}, plan.Forced},
		{"aborted.json", workflows.ShutdownRequest{Node: "node-4", Reason: "deregister fails, policy abort", Override: abort}, plan.Aborted},
		{"unknown-node.json", workflows.ShutdownRequest{Node: "node-9", Reason: "no such node"}, ""},
	} {
		run, r, err := s.run(sc.req)
		if sc.want != "" && (err != nil || r.Outcome != sc.want) {
			t.Fatalf("%s: %v %+v", sc.file, err, r)
		}
		h, err := history.Fetch(context.Background(), s.client, run.WorkflowID, run.RunID)
		if err != nil {
			t.Fatal(err)
		}
		b, err := history.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, sc.file), b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d events)", sc.file, len(h.GetEvents()))
	}
}
