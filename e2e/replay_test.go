package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/cli"
	"github.com/farewell-project/farewell/devserver"
	"github.com/farewell-project/farewell/history"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

// runCLIWith runs farewell in-process with extra options.
func runCLIWith(t *testing.T, opts cli.Options, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	opts.Env = append([]string{noTemporal}, opts.Env...)
	opts.Args, opts.Stdout, opts.Stderr, opts.Stdin = args, &stdout, &stderr, strings.NewReader("")
	opts.ConfigDirs, opts.Server = []string{t.TempDir()}, devserver.Embedded
	code := cli.Execute(context.Background(), opts)
	return code, stdout.String(), stderr.String()
}

// unguardedChange is GracefulShutdown with a step added in front without
// workflow.GetVersion: histories of the old code cannot replay on it.
func unguardedChange(ctx workflow.Context, req workflows.ShutdownRequest) (*workflows.ShutdownReport, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Second})
	_ = workflow.ExecuteActivity(ctx, "AnnounceShutdown", req.Node).Get(ctx, nil)
	return workflows.GracefulShutdown(ctx, req)
}

func TestExportReplayRetry(t *testing.T) {
	cfg := testConfig()
	s := newStack(t, cfg, 6)
	env := []string{"TEMPORAL_ADDRESS=" + s.srv.Address()}
	dir := t.TempDir()

	// One run of each outcome, and a refused one.
	s.nodes["node-2"].faults.Set(plan.SetGracefullyLeft, activities.FaultHang)
	s.nodes["node-3"].agent.StopWorker()
	s.nodes["node-4"].faults.Set(plan.Deregister, activities.FaultError)
	abortPlan := withPolicy(plan.Deregister, plan.Abort)
	outcomes := map[string]plan.Outcome{}
	for node, req := range map[string]workflows.ShutdownRequest{
		"node-1": {Node: "node-1"},
		"node-2": {Node: "node-2"},
		"node-3": {Node: "node-3"},
		"node-4": {Node: "node-4", Override: abortPlan},
	} {
		_, r, err := s.run(t, req)
		if err != nil {
			t.Fatal(err)
		}
		outcomes[node] = r.Outcome
	}
	want := map[string]plan.Outcome{"node-1": plan.Graceful, "node-2": plan.Degraded,
		"node-3": plan.Forced, "node-4": plan.Aborted}
	for node, o := range want {
		if outcomes[node] != o {
			t.Fatalf("%s ended %s, want %s", node, outcomes[node], o)
		}
	}
	if code, _, _ := runCLI(t, env, "shutdown", "node-9", "--wait"); code != 2 {
		t.Fatalf("unknown node: exit %d", code)
	}
	// Every subtest below reads these files: each can run alone.
	for _, node := range []string{"node-1", "node-2", "node-3", "node-4", "node-9"} {
		file := filepath.Join(dir, node+".json")
		if code, _, stderr := runCLI(t, env, "history", "export", node, "-o", file); code != 0 {
			t.Fatalf("export %s: exit %d: %s", node, code, stderr)
		}
		if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("exported history %s: %v, mode %v, want 0600", file, err, st.Mode().Perm())
		}
	}

	t.Run("export and replay each outcome", func(t *testing.T) {
		for node, outcome := range map[string]string{"node-1": "GRACEFUL", "node-2": "DEGRADED", "node-3": "FORCED", "node-4": "ABORTED", "node-9": ""} {
			file := filepath.Join(dir, node+".json")
			code, stdout, stderr := runCLI(t, nil, "replay", "--file", file)
			if code != 0 || !strings.Contains(stdout, "deterministic") {
				t.Fatalf("replay %s: exit %d\n%s\n%s", node, code, stdout, stderr)
			}
			if outcome != "" && !strings.Contains(stdout, "outcome "+outcome) {
				t.Errorf("replay of %s does not tell the outcome %s:\n%s", node, outcome, stdout)
			}
			t.Logf("replay of %s:\n%s", node, stdout)
		}
		// What the replay reconstructs matches the run.
		code, stdout, _ := runCLI(t, nil, "replay", "--file", filepath.Join(dir, "node-2.json"), "--output", "json")
		var j history.Journal
		if code != 0 || json.Unmarshal([]byte(stdout), &j) != nil {
			t.Fatalf("replay json: exit %d\n%s", code, stdout)
		}
		if j.Steps[0].Name != plan.SetGracefullyLeft || j.Steps[0].Status != plan.StepTimedOut || j.Steps[0].Attempts != 2 ||
			len(j.Convergence) != 1 || !j.Convergence[0].Converged || j.Outcome != plan.Degraded {
			t.Errorf("journal of node-2: %+v", j)
		}
		code, stdout, _ = runCLI(t, nil, "replay", "--file", filepath.Join(dir, "node-3.json"), "--output", "json")
		j = history.Journal{}
		if code != 0 || json.Unmarshal([]byte(stdout), &j) != nil || !j.Evicted || len(j.Convergence) == 0 {
			t.Errorf("journal of node-3 (forced): %+v", j)
		}
		code, stdout, _ = runCLI(t, nil, "replay", "--file", filepath.Join(dir, "node-9.json"))
		if code != 0 || !strings.Contains(stdout, `unknown node "node-9"`) {
			t.Errorf("replay of the unknown node's run: exit %d\n%s", code, stdout)
		}
		// From the server directly, by node name.
		if code, stdout, _ := runCLI(t, env, "replay", "node-1"); code != 0 || !strings.Contains(stdout, "GRACEFUL") {
			t.Errorf("replay node-1 from the server: exit %d\n%s", code, stdout)
		}
	})

	t.Run("a changed workflow is reported not deterministic", func(t *testing.T) {
		code, stdout, stderr := runCLIWith(t, cli.Options{ReplayWorkflow: unguardedChange}, "replay", "--file", filepath.Join(dir, "node-1.json"))
		if code != 3 {
			t.Fatalf("exit %d, want 3\n%s\n%s", code, stdout, stderr)
		}
		t.Logf("replay of changed code:\n%s", stdout)
		if !strings.Contains(stdout, "not deterministic") || !strings.Contains(stdout, "AnnounceShutdown") {
			t.Errorf("no plain explanation:\n%s\n%s", stdout, stderr)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		malformed := filepath.Join(dir, "malformed.json")
		os.WriteFile(malformed, []byte(`{"events": [ {"eventId": "1", `), 0o644)
		empty := filepath.Join(dir, "empty.json")
		os.WriteFile(empty, nil, 0o644)
		foreign := filepath.Join(dir, "foreign.json")
		writeForeignHistory(t, s, foreign)
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"replay", "--file", malformed}, "not a Temporal history"},
			{[]string{"replay", "--file", empty}, "empty"},
			{[]string{"replay", "--file", foreign}, `workflow type "echoWorkflow"`},
			{[]string{"replay", "--file", filepath.Join(dir, "nope.json")}, "nope.json"},
			{[]string{"replay", "farewell-shutdown-nobody"}, "farewell-shutdown-nobody"},
			{[]string{"replay"}, "WORKFLOW_ID or NODE"},
			{[]string{"history", "export", "nobody", "-o", filepath.Join(dir, "x.json")}, "nobody"},
		} {
			code, _, stderr := runCLI(t, env, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("%v: exit %d, want 2 and %q in:\n%s", tt.args, code, tt.want, stderr)
			}
		}
	})

	t.Run("retry an aborted shutdown once the fault is cleared", func(t *testing.T) {
		s.nodes["node-4"].faults.Set(plan.Deregister, "")
		code, stdout, stderr := runCLI(t, env, "retry", "node-4", "--wait", "--output", "json")
		if code != 0 {
			t.Fatalf("retry: exit %d\n%s\n%s", code, stdout, stderr)
		}
		var r workflows.ShutdownReport
		if err := json.Unmarshal([]byte(stdout), &r); err != nil || r.Outcome != plan.Graceful {
			t.Fatalf("retry report: %v %+v", err, r)
		}
		for _, st := range r.Steps {
			if st.Status != plan.StepSucceeded || st.Attempts == 0 {
				t.Errorf("after an abort every step runs again: %s %s (%d attempts)", st.Name, st.Status, st.Attempts)
			}
		}
		s.assertInvariant(t, "node-4", &r)
	})

	t.Run("retry runs what did not succeed; done work says so", func(t *testing.T) {
		s.nodes["node-2"].faults.Set(plan.SetGracefullyLeft, "")
		code, stdout, stderr := runCLI(t, env, "retry", "node-2", "--wait", "--output", "json")
		if code != 0 {
			t.Fatalf("retry: exit %d\n%s\n%s", code, stdout, stderr)
		}
		var r workflows.ShutdownReport
		if err := json.Unmarshal([]byte(stdout), &r); err != nil || r.Outcome != plan.Graceful {
			t.Fatalf("retry report: %v %+v", err, r)
		}
		first, _ := r.Step(plan.SetGracefullyLeft)
		if first.Status != plan.StepSucceeded || first.Attempts != 1 || !strings.Contains(first.Note, "already") {
			t.Errorf("the step that timed out before: %+v", first)
		}
		for _, st := range r.Steps[1:] {
			if st.Status != plan.StepSucceeded || st.Attempts != 0 || !strings.Contains(st.Note, "earlier run") {
				t.Errorf("a step that succeeded before ran again: %+v", st)
			}
		}
	})

	t.Run("retry of a graceful shutdown is refused", func(t *testing.T) {
		code, _, stderr := runCLI(t, env, "retry", "node-1")
		if code != 2 || !strings.Contains(stderr, "graceful") {
			t.Errorf("exit %d: %s", code, stderr)
		}
	})

	t.Run("retry of a running shutdown joins it", func(t *testing.T) {
		s.nodes["node-5"].faults.Set(plan.SetGracefullyLeft, activities.FaultHang)
		run, err := s.starter.Shutdown(context.Background(), workflows.ShutdownRequest{Node: "node-5"})
		if err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runCLI(t, env, "retry", "node-5", "--output", "json")
		var got struct {
			RunID  string `json:"run_id"`
			Joined bool   `json:"joined"`
		}
		if code != 0 || json.Unmarshal([]byte(stdout), &got) != nil || got.RunID != run.RunID || !got.Joined {
			t.Fatalf("retry of a running shutdown: exit %d %+v (run %s)\n%s", code, got, run.RunID, stderr)
		}
		if _, err := s.starter.Wait(context.Background(), run, nil); err != nil {
			t.Fatal(err)
		}
	})
}

// writeForeignHistory runs another workflow type and exports its history.
func writeForeignHistory(t *testing.T, s *e2eStack, file string) {
	t.Helper()
	ctx := context.Background()
	w := newEchoWorker(t, s.client, "foreign")
	defer w.Stop()
	run, err := s.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "foreign"}, echoWorkflow, "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	h, err := history.Fetch(ctx, s.client, run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	b, err := history.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
