package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/agent"
	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

// built is a program of this module built once per test binary.
type built struct {
	once sync.Once
	path string
	err  error
}

var hostApp, farewellNode built

// buildDirs are the folders programs were built into: TestMain removes them.
var buildDirs sync.Map

// build builds the package pkg (relative to this folder) once, into a folder that
// outlives any one test.
func (b *built) build(t testing.TB, pkg string) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "farewell-build-")
		if err != nil {
			b.err = err
			return
		}
		buildDirs.Store(dir, true)
		b.path = filepath.Join(dir, filepath.Base(pkg))
		out, err := exec.Command("go", "build", "-o", b.path, pkg).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// buildHostApp builds examples/hostapp.
func buildHostApp(t testing.TB) string { return hostApp.build(t, "../examples/hostapp") }

// farewell-node, the binary without the server, is the node command: it joins a
// `farewell node`, serves, and on SIGTERM (no Temporal: the local plan) leaves and
// exits 0.
func TestFarewellNodeBinary(t *testing.T) {
	bin := farewellNode.build(t, "../cmd/farewell-node")
	peer := startProcess(t, nil, "node", "--offline", "--name", "peer-1", "--bind", "127.0.0.1:0")
	seed := field(peer.waitLine("ready ", time.Minute), "cluster")
	p := startExecutable(t, bin, nil, "--offline", "--name", "slim-1", "--bind", "127.0.0.1:0", "--join", seed)
	p.waitLine("ready node=slim-1 ", time.Minute)
	eventually(t, 30*time.Second, "slim-1 alive for its peer", func() bool { return members(t, seed)["slim-1"].State == "alive" })
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("farewell-node exited %d after SIGTERM\nstderr:\n%s", code, p.stderr.String())
	}
	eventually(t, 30*time.Second, "slim-1 left for its peer", func() bool { return members(t, seed)["slim-1"].State == "left" })

	code, _, stderr := runExecutable(t, bin, "dev")
	if code != 2 || !strings.Contains(stderr, `unknown command "dev" for "farewell-node"`) || !strings.Contains(stderr, "Run 'farewell-node --help'") {
		t.Errorf("farewell-node dev: exit %d, %s; want a usage error", code, stderr)
	}
}

// runExecutable runs path with args to its end and returns its exit code and output.
func runExecutable(t testing.TB, path string, args ...string) (int, string, string) {
	t.Helper()
	p := startExecutable(t, path, nil, args...)
	code := p.wait(time.Minute)
	return code, p.stdout.String(), p.stderr.String()
}

// The example host app, a real process against the embedded stack: SIGTERM while
// requests are in flight runs the durable shutdown with the app's own step; every
// request completes, the report is graceful, and the process exits 0.
func TestHostAppShutsDownGracefully(t *testing.T) {
	bin := buildHostApp(t)
	s := newStack(t, testConfig(), 0)
	cfg := filepath.Join(t.TempDir(), "farewell.yaml")
	yaml := fmt.Sprintf(`cluster:
  name: host-1
  bind: 127.0.0.1:0
  join: [%q]
  profile: local
  heartbeat_interval: 100ms
  heartbeat_expiration: 1s
shutdown:
  steps:
    drain-connections:
      max_attempts: 3
`, s.observer.Addr())
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	app := startExecutable(t, bin, []string{"TEMPORAL_ADDRESS=" + s.srv.Address()}, "--config", cfg, "--http", "127.0.0.1:0")
	addr := field(app.waitLine("ready ", 30*time.Second), "http")
	eventually(t, 30*time.Second, "the host's worker to serve", func() bool {
		return strings.Contains(app.stderr.String(), "node worker serving")
	})

	const requests = 8
	type result struct {
		body string
		err  error
	}
	results := make(chan result, requests)
	for range requests {
		go func() {
			resp, err := http.Get("http://" + addr + "/work?d=1500ms")
			if err != nil {
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			results <- result{body: string(b), err: err}
		}()
	}
	eventually(t, 10*time.Second, "every request in flight", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), fmt.Sprintf("in_flight=%d ", requests))
	})
	app.signal(syscall.SIGTERM)
	for range requests {
		r := <-results
		if r.err != nil || !strings.HasPrefix(r.body, "done") {
			t.Errorf("a request in flight at SIGTERM did not complete: %q %v", r.body, r.err)
		}
	}
	if code := app.wait(60 * time.Second); code != 0 {
		t.Fatalf("host app exited %d, want 0\nstderr:\n%s", code, app.stderr.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var r workflows.ShutdownReport
	if err := s.client.GetWorkflow(ctx, workflows.WorkflowID("host-1"), "").Get(ctx, &r); err != nil {
		t.Fatal(err)
	}
	if r.Outcome != plan.Graceful {
		t.Fatalf("outcome %s: %+v", r.Outcome, r.Steps)
	}
	var names []string
	for _, st := range r.Steps {
		names = append(names, st.Name+"="+string(st.Status))
	}
	want := "set-gracefully-left=succeeded drain-connections=succeeded stop-heartbeat=succeeded deregister=succeeded stop-services=succeeded"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("steps %s\nwant  %s", got, want)
	}
}

// hostStepsNode adds a node whose host runs two steps of its own: drain-connections
// after set-gracefully-left, and flush-state before stop-services, whose failure forces
// the node out. ran records the steps that ran, in order.
func hostStepsNode(s *e2eStack, name string, ran *[]string, mu *sync.Mutex) *testNode {
	record := func(step string) func(context.Context) error {
		return func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			*ran = append(*ran, step)
			return nil
		}
	}
	return s.addNodeWith(name, func(o *agent.Options) {
		o.Steps = []agent.Step{
			{Name: "drain-connections", After: plan.SetGracefullyLeft, Run: record("drain-connections"), StartToClose: time.Second},
			{Name: "flush-state", Before: plan.StopServices, Run: record("flush-state"), StartToClose: time.Second, MaxAttempts: 1, OnFailure: plan.Force},
		}
	})
}

// A host's own steps run in the workflow on a real stack: in their places, and under
// their policy when one fails. Here flush-state, after deregister, fails with policy
// force: the node already left, so it is terminated (its services stopped) rather than
// left serving outside the cluster.
func TestHostStepsRunUnderTheWorkflowsRules(t *testing.T) {
	s := newStack(t, testConfig(), 2)
	var mu sync.Mutex
	var ran []string
	good := hostStepsNode(s, "host-1", &ran, &mu)
	failing := hostStepsNode(s, "host-2", &ran, &mu)
	s.waitMembers()
	eventually(t, 10*time.Second, "the observer to see both hosts' steps", func() bool {
		a, _ := s.observer.Member("host-1")
		b, _ := s.observer.Member("host-2")
		return a.Steps == 2 && b.Steps == 2
	})

	_, r, err := s.run(t, workflows.ShutdownRequest{Node: "host-1"})
	if err != nil || r.Outcome != plan.Graceful {
		t.Fatalf("host-1: %v %+v", err, r)
	}
	var names []string
	for _, st := range r.Steps {
		names = append(names, st.Name+"="+string(st.Status))
	}
	want := "set-gracefully-left=succeeded drain-connections=succeeded stop-heartbeat=succeeded deregister=succeeded flush-state=succeeded stop-services=succeeded"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("steps %s\nwant  %s", got, want)
	}
	if left, _ := good.member().Left(); !left {
		t.Error("host-1 did not leave")
	}
	mu.Lock()
	if got := strings.Join(ran, " "); got != "drain-connections flush-state" {
		t.Errorf("host-1 ran %s", got)
	}
	mu.Unlock()

	failing.faults.Set("flush-state", activities.FaultError)
	_, r, err = s.run(t, workflows.ShutdownRequest{Node: "host-2"})
	if err != nil || r.Outcome != plan.Forced || !strings.Contains(r.ForceReason, "flush-state") || !r.Terminated {
		t.Fatalf("host-2: %v %+v", err, r)
	}
	if running := failing.member().Services().Running(); len(running) > 0 {
		t.Errorf("host-2 is out of the cluster but still serves %v", running)
	}
	if m, _ := s.observer.Member("host-2"); m.State != cluster.StateLeft && m.State != cluster.StateEvicted {
		t.Errorf("host-2 is %s for the observer", m.State)
	}
}
