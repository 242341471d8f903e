package e2e

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/farewell-project/farewell/demo"
)

type memberRow struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Role     string `json:"role"`
	Instance string `json:"instance"`
	Blocked  bool   `json:"blocked"`
}

func members(t *testing.T, join string) map[string]memberRow {
	t.Helper()
	code, stdout, stderr := runCLI(t, nil, "members", "--join", join, "--output", "json")
	if code != 0 {
		t.Fatalf("members exited %d: %s", code, stderr)
	}
	var rows []memberRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("members output is not JSON: %v\n%s", err, stdout)
	}
	out := map[string]memberRow{}
	for _, r := range rows {
		out[r.Name] = r
	}
	return out
}

func TestNodeProcessesAndMembers(t *testing.T) {
	first := startProcess(t, nil, "node", "--name", "node-1", "--bind", "127.0.0.1:0")
	ready := first.waitLine("ready ", time.Minute)
	seed := field(ready, "cluster")
	nodes := map[string]*process{"node-1": first}
	https := map[string]string{"node-1": field(ready, "http")}
	for _, name := range []string{"node-2", "node-3"} {
		p := startProcess(t, nil, "node", "--name", name, "--bind", "127.0.0.1:0", "--join", seed)
		line := p.waitLine("ready ", time.Minute)
		nodes[name], https[name] = p, field(line, "http")
	}
	for name, addr := range https {
		if !demo.Serving(t.Context(), addr) {
			t.Errorf("%s's demo HTTP service at %s does not answer", name, addr)
		}
	}

	var view map[string]memberRow
	eventually(t, 30*time.Second, "members to list three alive nodes", func() bool {
		view = members(t, seed)
		alive := 0
		for _, r := range view {
			if r.Role == "node" && r.State == "alive" {
				alive++
			}
		}
		return alive == 3
	})

	nodes["node-2"].signal(syscall.SIGTERM)
	if code := nodes["node-2"].wait(30 * time.Second); code != 0 {
		t.Fatalf("node-2 exited %d after SIGTERM\nstderr:\n%s", code, nodes["node-2"].stderr.String())
	}
	if demo.Serving(t.Context(), https["node-2"]) {
		t.Error("node-2 still serves after its shutdown")
	}
	eventually(t, 30*time.Second, "the others to see node-2 left", func() bool {
		view = members(t, seed)
		return view["node-2"].State == "left" && view["node-1"].State == "alive" && view["node-3"].State == "alive"
	})
	if !strings.Contains(nodes["node-2"].stderr.String(), "node is out of the cluster") {
		t.Errorf("node-2 did not log its way out:\n%s", nodes["node-2"].stderr.String())
	}
}

func TestMembersUnreachableJoinExits1(t *testing.T) {
	code, _, stderr := runCLI(t, nil, "members", "--join", "127.0.0.1:1", "--timeout", "5s")
	if code != 1 || !strings.Contains(stderr, "127.0.0.1:1") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	// Off loopback, gossip must be encrypted: refused before anything is reached.
	code, _, stderr = runCLI(t, nil, "members", "--join", "no-such-host.invalid:7946", "--timeout", "5s")
	if code != 2 || !strings.Contains(stderr, "cluster.secret_key") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	code, _, stderr = runCLI(t, []string{"FAREWELL_CLUSTER_INSECURE=true"}, "members", "--join", "no-such-host.invalid:7946", "--timeout", "5s")
	if code != 1 || !strings.Contains(stderr, "no-such-host.invalid") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	code, _, stderr = runCLI(t, nil, "members")
	if code != 2 || !strings.Contains(stderr, "--join") {
		t.Fatalf("members without --join: exit %d, stderr:\n%s", code, stderr)
	}
}

// A node process whose shutdown someone else started (the CLI, a drain) has nothing
// left to serve: it exits by itself, 0 when it left on its own, 1 when it was forced
// out, saying who and why.
func TestNodeProcessExitsWhenShutDownFromOutside(t *testing.T) {
	s := newStack(t, testConfig(), 0)
	env := []string{"TEMPORAL_ADDRESS=" + s.srv.Address()}
	start := func(name string) *process {
		p := startProcess(t, nil, "node", "--name", name, "--bind", "127.0.0.1:0", "--join", s.observer.Addr(), "--address", s.srv.Address())
		p.waitLine("ready ", time.Minute)
		eventually(t, 30*time.Second, name+"'s worker to serve", func() bool { return strings.Contains(p.stderr.String(), "node worker serving") })
		eventually(t, 10*time.Second, "the observer to see "+name, func() bool { return stateOf(s.observer, name) == "alive" })
		return p
	}
	t.Run("graceful: exits 0", func(t *testing.T) {
		p := start("ext-1")
		if code, stdout, stderr := runCLI(t, env, "shutdown", "ext-1", "--wait"); code != 0 {
			t.Fatalf("shutdown: exit %d\n%s%s", code, stdout, stderr)
		}
		if code := p.wait(30 * time.Second); code != 0 || !strings.Contains(p.stdout.String(), "done without a signal") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, p.stdout.String(), p.stderr.String())
		}
	})
	t.Run("forced: exits 1 and says by whom", func(t *testing.T) {
		p := start("ext-2")
		if code, stdout, stderr := runCLI(t, env, "shutdown", "ext-2", "--wait", "--force", "--reason", "wedged"); code != 3 {
			t.Fatalf("shutdown --force: exit %d\n%s%s", code, stdout, stderr)
		}
		code := p.wait(30 * time.Second)
		if code != 1 || !strings.Contains(p.stderr.String(), "node ext-2 is out") ||
			!(strings.Contains(p.stderr.String(), "evicted by observer") || strings.Contains(p.stderr.String(), "forced")) {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, p.stdout.String(), p.stderr.String())
		}
	})
}
