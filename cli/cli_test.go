package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/workflows"
)

// run runs the CLI in-process, with nothing of the machine's environment, against a
// Temporal nobody listens on.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Execute(context.Background(), Options{Args: args, Stdout: &out, Stderr: &errOut,
		Env: []string{"TEMPORAL_ADDRESS=127.0.0.1:1"}, ConfigDirs: []string{t.TempDir()}, DialRetry: 300 * time.Millisecond})
	return code, out.String(), errOut.String()
}

// The starter's refusals are bad input wherever they come from: exit 2. A failure of
// the machine is 1; an error before any command ran (a bad flag) is 2.
func TestExitCodes(t *testing.T) {
	for _, r := range refusals {
		if got := exitCode(fmt.Errorf("shutdown node-9: %w", r), true); got != ExitUsage {
			t.Errorf("%v: exit %d, want %d", r, got, ExitUsage)
		}
	}
	for err, want := range map[error]int{
		fmt.Errorf("load: %w", config.ErrInvalid):  ExitUsage,
		errors.New("connect to Temporal: refused"): ExitFailure,
		usageError("--output %q", "yaml"):          ExitUsage,
		&exitError{code: 3}:                        3,
	} {
		if got := exitCode(err, true); got != want {
			t.Errorf("%v: exit %d, want %d", err, got, want)
		}
	}
	if got := exitCode(errors.New("unknown flag: --x"), false); got != ExitUsage {
		t.Errorf("an error before a command ran: exit %d, want %d", got, ExitUsage)
	}
	if exitCode(starter.ErrDrainRefused, true) != ExitFailure {
		// A refused drain exits 2 where its plan is printed (DrainRefusedError), not here.
		t.Error("a bare ErrDrainRefused is not a refusal the code maps")
	}
}

func TestBadInputIsRefusedNamingIt(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "node-1", "-o", "yaml"}, `--output "yaml"`},
		{[]string{"shutdown", "bad name!"}, "bad name!"},
		{[]string{"shutdown", "node-1", "--set", "steps.deregister.start_to_close=soon"}, `"soon" is not a duration`},
		{[]string{"node", "--fault", "gossip=sometimes"}, "gossip=sometimes"},
		{[]string{"drain", "--all", "--max-parallel", "-1"}, "max-parallel"},
		{[]string{"config", "validate", "/nonexistent/farewell.yaml"}, "/nonexistent/farewell.yaml"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("farewell %s: exit %d, %q; want exit 2 naming %s", strings.Join(tc.args, " "), code, stderr, tc.want)
		}
	}
}

// A Temporal that refuses connections is tried again for a moment, saying so, then the
// command fails (exit 1) naming the address.
func TestUnreachableTemporalIsTriedAgainThenNamed(t *testing.T) {
	start := time.Now()
	code, _, stderr := run(t, "status", "node-1")
	if code != ExitFailure || !strings.Contains(stderr, "127.0.0.1:1") || !strings.Contains(stderr, "trying again for 300ms") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("gave up after %s; it tries for 300ms", took)
	}
}

// keys files writes the orchestrators' and the nodes' environment files once: 0600,
// keys that load and pair up; a second run changes nothing.
func TestKeysFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	code, out, stderr := run(t, "keys", "files", dir)
	if code != 0 {
		t.Fatalf("keys files: exit %d: %s", code, stderr)
	}
	cfgs := map[string]config.Config{}
	contents := map[string]string{}
	for _, name := range []string{"orchestrator.env", "node.env"} {
		path := filepath.Join(dir, name)
		if !strings.Contains(out, "wrote "+path) {
			t.Errorf("output does not say it wrote %s:\n%s", path, out)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, st.Mode().Perm())
		}
		b, _ := os.ReadFile(path)
		contents[name] = string(b)
		var env []string
		for _, l := range strings.Split(string(b), "\n") {
			if l != "" && !strings.HasPrefix(l, "#") {
				env = append(env, l)
			}
		}
		cfg, _, err := config.Load(config.Source{Env: env, SearchDirs: []string{t.TempDir()}})
		if err != nil {
			t.Fatalf("%s does not load: %v", name, err)
		}
		cfgs[name] = cfg
	}
	orch, node := cfgs["orchestrator.env"].Cluster, cfgs["node.env"].Cluster
	if len(orch.SecretKeys) != 1 || !slices.Equal(orch.SecretKeys, node.SecretKeys) {
		t.Errorf("gossip keys differ or are missing: %v, %v", orch.SecretKeys, node.SecretKeys)
	}
	if orch.EvictVerifyKey != "" || node.EvictSigningKey != "" || orch.EvictSigningKey == "" || node.EvictVerifyKey == "" {
		t.Fatalf("the signing key is for orchestrators only, the verify key for nodes: %+v / %+v", orch, node)
	}
	signer, _ := config.EvictSigningKey(orch.EvictSigningKey)
	verifier, _ := config.EvictVerifyKey(node.EvictVerifyKey)
	if !verifier.Equal(signer.Public()) {
		t.Error("the verify key is not the signing key's")
	}

	code, _, stderr = run(t, "keys", "files", dir)
	if code != ExitUsage || !strings.Contains(stderr, "orchestrator.env exists") {
		t.Errorf("second run: exit %d, %s; want 2 naming the file that exists", code, stderr)
	}
	for name, was := range contents {
		if b, _ := os.ReadFile(filepath.Join(dir, name)); string(b) != was {
			t.Errorf("%s changed on the refused run", name)
		}
	}
}

// farewell-node's root command is the node: it exports metrics as `farewell node` does
// (the production quick start found it serving none).
func TestNodeOnlyRootIsTheNode(t *testing.T) {
	for _, nodeOnly := range []bool{true, false} {
		a := &app{opts: Options{NodeOnly: nodeOnly}, bindings: map[*cobra.Command]map[string]string{}}
		root := a.rootCommand()
		role := a.role(root)
		if nodeOnly && (role != "node" || !longRunning[role]) {
			t.Errorf("farewell-node's root: role %q (long running %v), want node", role, longRunning[role])
		}
		if !nodeOnly && role == "node" {
			t.Errorf("farewell's root is %q", role)
		}
		for _, sub := range root.Commands() {
			if got := a.role(sub); got != sub.Name() {
				t.Errorf("%s: role %q", sub.CommandPath(), got)
			}
		}
	}
}

// `farewell budget` lists the leases in flight, then the queue in the order it will
// be granted; a name that carries a terminal escape is shown harmless.
func TestBudgetShowsLeasesThenTheQueue(t *testing.T) {
	at := time.Date(2026, 12, 6, 20, 0, 0, 0, time.Local)
	view := workflows.BudgetView{
		Limits:  plan.Limits{MaxParallel: 1},
		Leases:  []workflows.Lease{{Node: "node-1", Run: "r1", Since: at}},
		Waiting: 2,
		Queue: []workflows.Waiter{{Node: "node-2", Drain: "d1", Since: at.Add(time.Second)},
			{Node: "node-3\x1b[2J", Run: "r3", Since: at.Add(2 * time.Second)}},
	}
	var out bytes.Buffer
	if err := writeBudget(&out, view, true); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	var lines []string
	for l := range strings.Lines(got) {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	want := []string{"budget: at most 1 at once, no floor on nodes in service; 1 in flight, 2 waiting",
		"NODE DRAIN SINCE RUN NOTE", "node-1 - 20:00:00 r1 -", "",
		"QUEUE NODE DRAIN WAITING SINCE RUN", "1 node-2 d1 20:00:01 -", `2 node-3\x1b[2J - 20:00:02 r3`}
	if !slices.Equal(lines, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if strings.ContainsRune(got, '\x1b') {
		t.Errorf("an escape let through:\n%s", got)
	}
	out.Reset()
	if err := writeBudget(&out, workflows.BudgetView{}, false); err != nil || !strings.Contains(out.String(), "no shutdown has asked the budget yet") {
		t.Errorf("%v: %s", err, out.String())
	}
}
