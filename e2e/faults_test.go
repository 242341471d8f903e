package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/farewell-project/farewell/demo"
	"github.com/farewell-project/farewell/internal/testkit"
	"github.com/farewell-project/farewell/workflows"
)

// The fault matrix: each fault against real processes — `farewell dev` (server,
// orchestrator worker, observer) and `farewell node` subprocesses, so that SIGKILL,
// SIGSTOP and restarts are real — and, for each, whether the invariant held: the node
// ends out of the cluster or back in service, never in between, and no other process
// is touched. The rows marked ci run with every `go test`; `make faults` runs them all
// (FAREWELL_FAULTS=all) and prints the table.

// faultsEnv runs every row when set to "all".
const faultsEnv = "FAREWELL_FAULTS"

// matrixConfig is the configuration every process of the matrix reads: short timeouts,
// so that each row ends in seconds.
const matrixConfig = `
cluster:
  profile: local
  heartbeat_interval: 200ms
  heartbeat_expiration: 2s
shutdown:
  steps:
    set-gracefully-left: {start_to_close: 1s, schedule_to_start: 2s, max_attempts: 2, backoff: 100ms}
    stop-heartbeat: {start_to_close: 1s, schedule_to_start: 2s, max_attempts: 2, backoff: 100ms}
    deregister: {start_to_close: 2s, schedule_to_start: 2s, max_attempts: 2, backoff: 100ms}
    stop-services: {start_to_close: 3s, schedule_to_start: 2s, max_attempts: 2, backoff: 100ms}
  convergence_timeout: 5s
  heartbeat_timeout: 1s
  grace_period: 30s
watchdog:
  enabled: false
  blocked_after: 3s
  action: shutdown
`

// matrix is one run of the fault matrix: a dev stack, two bystander nodes, and the
// rows' results.
type matrix struct {
	t          *testing.T
	dir, cfg   string
	db         string
	port       int
	uiPort     int
	cluster    int
	dev        *process
	bystanders []*bystander
	results    []faultResult
	// env is every dev process's environment; metricsAddr where its metrics are
	// served, when env says so.
	env         []string
	metricsAddr string
}

// bystander is a node that no row shuts down: it must come out of every row untouched.
type bystander struct {
	name, instance, http, cluster string
	p                             *process
}

// faultResult is one row of the table.
type faultResult struct {
	fault     string
	outcome   string
	out       bool // the node's process is out of the cluster (or, aborted, back in service)
	untouched bool // every other process is as it was
	seconds   float64
	held      bool
	note      string
}

func newMatrix(t *testing.T) *matrix { return newMatrixWith(t, matrixConfig) }

// newMatrixWith starts the matrix's stack with the configuration cfg.
func newMatrixWith(t *testing.T, cfg string) *matrix { return newMatrixWithEnv(t, cfg, nil) }

// newMatrixWithEnv is newMatrixWith with env in every dev process's environment.
func newMatrixWithEnv(t *testing.T, cfg string, env []string) *matrix {
	dir := t.TempDir()
	m := &matrix{t: t, dir: dir, cfg: filepath.Join(dir, "farewell.yaml"), db: filepath.Join(dir, "temporal.db"),
		port: freePort(t), uiPort: freePort(t), cluster: freePort(t), env: env}
	for _, e := range env {
		if port, ok := strings.CutPrefix(e, "OTEL_EXPORTER_PROMETHEUS_PORT="); ok {
			m.metricsAddr = "127.0.0.1:" + port
		}
	}
	if err := os.WriteFile(m.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	m.dev = m.startDev(t, nil)
	for _, name := range []string{"bystander-1", "bystander-2"} {
		p := m.startNode(t, name, nil)
		line := p.waitLine("ready ", time.Minute)
		m.bystanders = append(m.bystanders, &bystander{name: name, instance: field(line, "instance"), http: field(line, "http"),
			cluster: field(line, "cluster"), p: p})
	}
	m.waitAlive(t, "bystander-1", "bystander-2")
	return m
}

func (m *matrix) temporal() string { return fmt.Sprintf("127.0.0.1:%d", m.port) }
func (m *matrix) observer() string { return fmt.Sprintf("127.0.0.1:%d", m.cluster) }

// startDev starts `farewell dev` with no demo nodes on the matrix's ports and database.
func (m *matrix) startDev(t testing.TB, env []string, extra ...string) *process {
	t.Helper()
	args := append([]string{"dev", "--config", m.cfg, "--port", itoa(m.port), "--ui-port", itoa(m.uiPort),
		"--cluster-port", itoa(m.cluster), "--db", m.db, "--nodes", "0"}, extra...)
	p := startProcess(t, append(slices.Clone(m.env), env...), args...)
	p.waitLine("ready ", 2*time.Minute)
	return p
}

// startNode starts `farewell node NAME` joining the observer, with extra arguments.
func (m *matrix) startNode(t testing.TB, name string, env []string, extra ...string) *process {
	t.Helper()
	args := append([]string{"node", "--config", m.cfg, "--name", name, "--bind", "127.0.0.1:0", "--join", m.observer(),
		"--address", m.temporal()}, extra...)
	return startProcess(t, env, args...)
}

// node starts a target node and waits until it serves, its worker included.
func (m *matrix) node(t testing.TB, name string, extra ...string) (*process, string) {
	t.Helper()
	p := m.startNode(t, name, nil, extra...)
	line := p.waitLine("ready ", time.Minute)
	if !strings.Contains(strings.Join(extra, " "), "--offline") && !strings.Contains(strings.Join(extra, " "), "127.0.0.1:1") {
		eventually(t, 30*time.Second, name+"'s worker to serve", func() bool { return strings.Contains(p.stderr.String(), "node worker serving") })
	}
	m.waitAlive(t, name)
	return p, field(line, "instance")
}

// view is the cluster as a bystander sees it.
func (m *matrix) view() (map[string]memberRow, error) {
	code, stdout, stderr := runCLI(m.t, nil, "members", "--join", m.bystanders[0].cluster, "--output", "json", "--timeout", "5s")
	if code != 0 {
		return nil, fmt.Errorf("members: exit %d: %s", code, stderr)
	}
	var rows []memberRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		return nil, err
	}
	out := map[string]memberRow{}
	for _, r := range rows {
		out[r.Name] = r
	}
	return out, nil
}

func (m *matrix) waitAlive(t testing.TB, names ...string) {
	t.Helper()
	eventually(t, 30*time.Second, strings.Join(names, ", ")+" alive for the cluster", func() bool {
		v, err := m.view()
		if err != nil {
			return false
		}
		for _, n := range names {
			if v[n].State != "alive" {
				return false
			}
		}
		return true
	})
}

// untouched checks that every bystander is the process it was, alive, serving.
func (m *matrix) untouched() (bool, string) {
	v, err := m.view()
	if err != nil {
		return false, err.Error()
	}
	for _, b := range m.bystanders {
		switch {
		case b.p.exited():
			return false, b.name + " exited"
		case v[b.name].State != "alive" || v[b.name].Instance != b.instance:
			return false, fmt.Sprintf("%s is %s (%s)", b.name, v[b.name].State, v[b.name].Instance)
		case !demo.Serving(context.Background(), b.http):
			return false, b.name + " does not serve"
		}
	}
	return true, ""
}

// outOf waits until node's process is out: its process exited (or is stopped) and the
// cluster sees that process out.
func (m *matrix) outOf(t testing.TB, node, instance string, p *process, limit time.Duration) (bool, string) {
	ok := testkit.Within(limit, func() bool {
		if !p.exited() {
			return false
		}
		v, err := m.view()
		if err != nil {
			return false
		}
		r, known := v[node]
		return !known || r.Instance != instance || r.State == "left" || r.State == "evicted" || r.State == "dead"
	})
	if !ok {
		v, _ := m.view()
		return false, fmt.Sprintf("after %s: process exited %v, seen %+v", limit, p.exited(), v[node])
	}
	return true, ""
}

// inService checks that node's process serves again: running, alive for the cluster.
func (m *matrix) inService(node, instance string, p *process) (bool, string) {
	v, err := m.view()
	switch {
	case err != nil:
		return false, err.Error()
	case p.exited():
		return false, "the process exited"
	case v[node].State != "alive" || v[node].Instance != instance:
		return false, fmt.Sprintf("seen %+v", v[node])
	}
	return true, ""
}

// table renders the results.
func (m *matrix) table() string {
	var b strings.Builder
	yes := map[bool]string{true: "yes", false: "NO"}
	fmt.Fprintf(&b, "| fault | outcome | node out? | other processes untouched? | seconds | invariant held |\n|---|---|---|---|---|---|\n")
	for _, r := range m.results {
		note := ""
		if r.note != "" {
			note = " (" + r.note + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.1f | %s%s |\n", r.fault, r.outcome, yes[r.out], yes[r.untouched], r.seconds, yes[r.held], note)
	}
	return b.String()
}

var reportLine = regexp.MustCompile(`(?m)^\S+: (GRACEFUL|DEGRADED|FORCED|ABORTED|FAILED) in `)

// outcomeOf reads the outcome a node printed of its own shutdown.
func outcomeOf(p *process) string {
	if m := reportLine.FindStringSubmatch(p.stdout.String()); m != nil {
		return strings.ToLower(m[1])
	}
	return ""
}

// shutdown runs `farewell shutdown NODE --wait -o json` and returns the outcome.
func (m *matrix) shutdown(t testing.TB, node string, args ...string) (string, workflows.ShutdownReport) {
	t.Helper()
	code, stdout, stderr := runCLI(t, []string{"TEMPORAL_ADDRESS=" + m.temporal()}, append([]string{"shutdown", node, "--wait", "-o", "json"}, args...)...)
	var r workflows.ShutdownReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Errorf("shutdown %s: exit %d: %v\n%s%s", node, code, err, stdout, stderr)
	}
	return string(r.Outcome), r
}

// row is one fault of the matrix.
type row struct {
	fault string
	ci    bool
	// own runs the row on a stack of its own (it kills or cuts off the orchestrator).
	own bool
	run func(t *testing.T, m *matrix) faultResult
}

func TestFaultMatrix(t *testing.T) {
	all := os.Getenv(faultsEnv) == "all"
	rows := faultRows()
	if !all && testing.Short() {
		t.Skip("-short")
	}
	var shared *matrix // the stack every row that does not need its own shares, until one fails
	var results []faultResult
	for _, r := range rows {
		if !all && !r.ci {
			continue
		}
		if !r.own && shared == nil {
			shared = newMatrix(t)
		}
		t.Run(r.fault, func(t *testing.T) {
			m := shared
			if r.own {
				m = newMatrix(t)
			}
			start := time.Now()
			res := r.run(t, m)
			res.fault = r.fault
			if res.seconds == 0 {
				res.seconds = time.Since(start).Seconds()
			}
			if res.untouched {
				res.untouched, res.note = m.untouchedNote(res.note)
			}
			res.held = res.out && res.untouched && res.outcome != "failed" && res.outcome != ""
			results = append(results, res)
			if !res.held {
				t.Errorf("invariant broken: %+v", res)
			}
			if t.Failed() && m == shared {
				// A row that failed may have left the shared stack in a state the next
				// row does not expect: the rows after it get a fresh one, so that one
				// bad row is not read as several.
				shared = nil
			}
		})
	}
	table := (&matrix{results: results}).table()
	t.Logf("fault matrix:\n%s", table)
	if file := os.Getenv("FAREWELL_FAULTS_TABLE"); file != "" {
		out := fmt.Sprintf("Fault matrix (%d rows, real processes):\n\n%s\n", len(results), table)
		if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// untouchedNote checks the bystanders and adds what is wrong to note.
func (m *matrix) untouchedNote(note string) (bool, string) {
	ok, why := m.untouched()
	if !ok {
		note = strings.TrimSpace(note + " " + why)
	}
	return ok, note
}

// stepRow is a node whose step has a fault, shut down from the CLI (with args).
func stepRow(fault, want string, args ...string) func(t *testing.T, m *matrix) faultResult {
	return func(t *testing.T, m *matrix) faultResult {
		clean := strings.NewReplacer("=", "-", ":", "-", ".", "-", "_", "-")
		name := "n-" + clean.Replace(fault)
		if len(args) > 0 {
			_, last, _ := strings.Cut(args[len(args)-1], "=")
			name += "-" + clean.Replace(last)
		}
		p, instance := m.node(t, name, "--fault", fault)
		start := time.Now()
		outcome, r := m.shutdown(t, name, args...)
		out, why := m.outOf(t, name, instance, p, 30*time.Second)
		res := faultResult{outcome: outcome, out: out, untouched: true, seconds: time.Since(start).Seconds(), note: why}
		if outcome != want {
			res.note = strings.TrimSpace(fmt.Sprintf("%s; want %s (%s)", res.note, want, r.Error))
			res.out = false
		}
		return res
	}
}

func faultRows() []row {
	rows := []row{}
	for _, step := range []struct{ name, hang, fail string }{
		{"set-gracefully-left", "degraded", "degraded"},
		{"stop-heartbeat", "degraded", "degraded"},
		{"deregister", "forced", "forced"},
		{"stop-services", "forced", "forced"},
	} {
		rows = append(rows,
			row{fault: step.name + " hangs", ci: step.name == "stop-services", run: stepRow(step.name+"=hang", step.hang)},
			row{fault: step.name + " errors", ci: step.name == "deregister", run: stepRow(step.name+"=error", step.fail)})
	}
	return append(rows,
		// After deregister: the node left already, so it is terminated, not left serving.
		row{fault: "stop-services errors, policy force", ci: true, run: stepRow("stop-services=error", "forced", "--set", "steps.stop-services.on_failure=force")},
		row{fault: "node worker gone before the run", ci: true, run: workerGone},
		row{fault: "node SIGKILL mid-step", run: nodeKilled},
		row{fault: "node SIGSTOP then SIGCONT", run: nodeFrozen},
		row{fault: "orchestrator SIGKILL and restart on the same database mid-step", own: true, run: orchestratorRestart},
		row{fault: "node restarted under the same name mid-run", ci: true, run: nodeReplaced},
		row{fault: "gossip stall", ci: true, run: stepRow("gossip=stall", "forced")},
		row{fault: "observer isolated from its peers", own: true, run: observerIsolated},
		row{fault: "double trigger", ci: true, run: doubleTrigger},
		row{fault: "trigger during a running shutdown", run: triggerWhileRunning},
		row{fault: "unknown node", ci: true, run: unknownNode},
		row{fault: "Temporal unreachable at SIGTERM", ci: true, run: sigtermAlone("", "", "graceful")},
		row{fault: "Temporal unreachable at SIGTERM, a step hangs", run: sigtermAlone("stop-heartbeat=hang", "", "degraded")},
		row{fault: "Temporal unreachable at SIGTERM, deregister fails, policy continue", run: sigtermAlone("deregister=error", "continue", "forced")},
		row{fault: "Temporal unreachable at SIGTERM, deregister fails, policy abort", run: sigtermAlone("deregister=error", "abort", "aborted")},
		row{fault: "Temporal unreachable at SIGTERM, deregister fails, policy force", run: sigtermAlone("deregister=error", "force", "forced")},
		row{fault: "Temporal lost in the middle of a SIGTERM shutdown", own: true, run: temporalLost},
		row{fault: "the watchdog finds a blocked node", run: watchdogBlocked},
	)
}

func workerGone(t *testing.T, m *matrix) faultResult {
	p, instance := m.node(t, "n-offline", "--offline")
	start := time.Now()
	outcome, _ := m.shutdown(t, "n-offline")
	out, why := m.outOf(t, "n-offline", instance, p, 30*time.Second)
	return faultResult{outcome: outcome, out: out && p.wait(time.Second) == 1, untouched: true, seconds: time.Since(start).Seconds(), note: why}
}

// runShutdown starts `farewell shutdown NODE --wait` in the background.
func (m *matrix) runShutdown(t testing.TB, node string, args ...string) *cliRun {
	return startCLI(t, []string{"TEMPORAL_ADDRESS=" + m.temporal()}, append([]string{"shutdown", node, "--wait", "-o", "json"}, args...)...)
}

func reportOf(r *cliRun) string {
	var rep workflows.ShutdownReport
	if json.Unmarshal([]byte(r.Stdout.String()), &rep) != nil {
		return ""
	}
	return string(rep.Outcome)
}

// longHangArgs gives a hung step a long timeout, so that a row acts while it hangs.
func longHangArgs(step string) []string {
	return []string{"--set", "steps." + step + ".start_to_close=30s", "--set", "steps." + step + ".max_attempts=1"}
}

func nodeKilled(t *testing.T, m *matrix) faultResult {
	p, instance := m.node(t, "n-killed", "--fault", "stop-heartbeat=hang")
	start := time.Now()
	run := m.runShutdown(t, "n-killed", longHangArgs("stop-heartbeat")...)
	eventually(t, 30*time.Second, "the hung step to run", func() bool { return strings.Contains(p.stderr.String(), "injected fault: step hangs") })
	_ = p.cmd.Process.Kill()
	run.wait(t, time.Minute)
	outcome := reportOf(run)
	out, why := m.outOf(t, "n-killed", instance, p, 30*time.Second)
	return faultResult{outcome: outcome, out: out && outcome == "forced", untouched: true, seconds: time.Since(start).Seconds(), note: why}
}

func nodeFrozen(t *testing.T, m *matrix) faultResult {
	p, instance := m.node(t, "n-frozen", "--fault", "stop-heartbeat=hang")
	start := time.Now()
	run := m.runShutdown(t, "n-frozen", longHangArgs("stop-heartbeat")...)
	eventually(t, 30*time.Second, "the hung step to run", func() bool { return strings.Contains(p.stderr.String(), "injected fault: step hangs") })
	p.signal(syscall.SIGSTOP)
	run.wait(t, time.Minute)
	outcome := reportOf(run)
	p.signal(syscall.SIGCONT)
	// Back from the freeze, the process learns it was evicted and ends itself.
	out, why := m.outOf(t, "n-frozen", instance, p, 30*time.Second)
	return faultResult{outcome: outcome, out: out && outcome == "forced", untouched: true, seconds: time.Since(start).Seconds(), note: why}
}

func orchestratorRestart(t *testing.T, m *matrix) faultResult {
	p, instance := m.node(t, "n-orch", "--fault", "stop-services=hang")
	start := time.Now()
	run := m.runShutdown(t, "n-orch", longHangArgs("stop-services")...)
	eventually(t, 30*time.Second, "stop-services to hang", func() bool { return strings.Contains(p.stderr.String(), "injected fault: step hangs") })
	_ = m.dev.cmd.Process.Kill()
	m.dev.wait(10 * time.Second)
	// The same database, ports and cluster, rejoined through a bystander.
	m.dev = m.startDev(t, nil, "--join", m.bystanders[0].cluster)
	run.wait(t, 2*time.Minute)
	outcome := reportOf(run)
	if outcome == "" {
		_, st := m.shutdownStatus(t, "n-orch")
		outcome = st
	}
	out, why := m.outOf(t, "n-orch", instance, p, 60*time.Second)
	return faultResult{outcome: outcome, out: out, untouched: true, seconds: time.Since(start).Seconds(), note: why}
}

// shutdownStatus waits for node's latest shutdown to end and returns its outcome.
func (m *matrix) shutdownStatus(t testing.TB, node string) (string, string) {
	var outcome string
	eventually(t, 2*time.Minute, node+"'s shutdown to end", func() bool {
		code, stdout, _ := runCLI(t, []string{"TEMPORAL_ADDRESS=" + m.temporal()}, "status", node, "-o", "json")
		var st struct {
			Status string                   `json:"status"`
			Report workflows.ShutdownReport `json:"report"`
		}
		if code != 0 || json.Unmarshal([]byte(stdout), &st) != nil {
			return false
		}
		outcome = string(st.Report.Outcome)
		return st.Status != "Running"
	})
	return node, outcome
}

func nodeReplaced(t *testing.T, m *matrix) faultResult {
	old, oldInstance := m.node(t, "n-reborn", "--fault", "set-gracefully-left=hang")
	start := time.Now()
	run := m.runShutdown(t, "n-reborn", longHangArgs("set-gracefully-left")...)
	eventually(t, 30*time.Second, "the hung step to run", func() bool { return strings.Contains(old.stderr.String(), "injected fault: step hangs") })
	_ = old.cmd.Process.Kill()
	old.wait(10 * time.Second)
	fresh, freshInstance := m.node(t, "n-reborn")
	run.wait(t, time.Minute)
	outcome := reportOf(run)
	res := faultResult{outcome: outcome, seconds: time.Since(start).Seconds()}
	// The old process is gone; the new one under its name is untouched and serves
	// (memberlist may call the name dead for a while: it takes the name over only once
	// the old process is agreed dead and DeadNodeReclaimTime has passed, and its
	// rejoin loop tries again — on a loaded machine that took longer than 30 s once in
	// ten runs).
	testkit.Within(time.Minute, func() bool {
		res.out, res.note = m.inService("n-reborn", freshInstance, fresh)
		return res.out
	})
	res.untouched = res.out && outcome == "degraded"
	if !res.untouched && res.note == "" {
		res.note = "outcome " + outcome + ", want degraded (the process is gone)"
	}
	_ = oldInstance
	return res
}

func observerIsolated(t *testing.T, m *matrix) faultResult {
	// This row's own dev: restart it with the observer's fault armed, then cut it off.
	_ = m.dev.cmd.Process.Kill()
	m.dev.wait(10 * time.Second)
	m.dev = m.startDev(t, nil, "--join", m.bystanders[0].cluster, "--fault", "observer:gossip=isolate")
	p, instance := m.node(t, "n-cutoff")
	m.dev.signal(syscall.SIGUSR1)
	eventually(t, 10*time.Second, "the observer to be cut off", func() bool {
		return strings.Contains(m.dev.stderr.String(), "observer gossip fault switched on")
	})
	start := time.Now()
	outcome, r := m.shutdown(t, "n-cutoff")
	out, why := m.outOf(t, "n-cutoff", instance, p, 30*time.Second)
	note := why
	if r.Convergence != "unverified" {
		note = strings.TrimSpace(note + " convergence " + string(r.Convergence) + ", want unverified")
		out = false
	}
	return faultResult{outcome: outcome + ", " + string(r.Convergence), out: out, untouched: true, seconds: time.Since(start).Seconds(), note: note}
}

func doubleTrigger(t *testing.T, m *matrix) faultResult {
	p, instance := m.node(t, "n-double")
	start := time.Now()
	a, b := m.runShutdown(t, "n-double"), m.runShutdown(t, "n-double")
	a.wait(t, time.Minute)
	b.wait(t, time.Minute)
	var ra, rb workflows.ShutdownReport
	_ = json.Unmarshal([]byte(a.Stdout.String()), &ra)
	_ = json.Unmarshal([]byte(b.Stdout.String()), &rb)
	out, why := m.outOf(t, "n-double", instance, p, 30*time.Second)
	if ra.RunID == "" || ra.RunID != rb.RunID {
		out, why = false, fmt.Sprintf("two runs: %q and %q", ra.RunID, rb.RunID)
	}
	return faultResult{outcome: string(ra.Outcome), out: out, untouched: true, seconds: time.Since(start).Seconds(), note: why}
}

func triggerWhileRunning(t *testing.T, m *matrix) faultResult {
	p, instance := m.node(t, "n-busy", "--fault", "set-gracefully-left=hang")
	start := time.Now()
	first := m.runShutdown(t, "n-busy")
	eventually(t, 30*time.Second, "the hung step to run", func() bool { return strings.Contains(p.stderr.String(), "injected fault: step hangs") })
	code, stdout, _ := runCLI(t, []string{"TEMPORAL_ADDRESS=" + m.temporal()}, "shutdown", "n-busy", "--force", "-o", "json")
	first.wait(t, time.Minute)
	outcome := reportOf(first)
	out, why := m.outOf(t, "n-busy", instance, p, 30*time.Second)
	if code != 0 || !strings.Contains(stdout, `"joined": true`) || !strings.Contains(stdout, `"force"`) || outcome != "degraded" {
		out, why = false, fmt.Sprintf("second trigger: exit %d %s; outcome %s (a joined --force must not force)", code, stdout, outcome)
	}
	return faultResult{outcome: outcome, out: out, untouched: true, seconds: time.Since(start).Seconds(), note: why}
}

func unknownNode(t *testing.T, m *matrix) faultResult {
	code, _, stderr := runCLI(t, []string{"TEMPORAL_ADDRESS=" + m.temporal()}, "shutdown", "ghost", "--wait")
	ok := code == 2 && strings.Contains(stderr, `unknown node "ghost"`)
	return faultResult{outcome: fmt.Sprintf("refused, exit %d", code), out: ok, untouched: true}
}

// sigtermAlone is a node that cannot reach Temporal getting SIGTERM: it runs its plan
// alone, under policy (the deregister step's on_failure) when set.
func sigtermAlone(fault, policy, want string) func(t *testing.T, m *matrix) faultResult {
	return func(t *testing.T, m *matrix) faultResult {
		name := "n-alone-" + strings.NewReplacer("=", "-").Replace(fault+policy)
		if fault == "" {
			name = "n-alone"
		}
		var env []string
		if policy != "" {
			env = append(env, "FAREWELL_SHUTDOWN_STEPS_DEREGISTER_ON_FAILURE="+policy)
		}
		args := []string{"node", "--config", m.cfg, "--name", name, "--bind", "127.0.0.1:0", "--join", m.observer(), "--address", "127.0.0.1:1"}
		if fault != "" {
			args = append(args, "--fault", fault)
		}
		p := startProcess(t, env, args...)
		instance := field(p.waitLine("ready ", time.Minute), "instance")
		m.waitAlive(t, name)
		start := time.Now()
		p.signal(syscall.SIGTERM)
		res := faultResult{untouched: true}
		if want == "aborted" {
			eventually(t, 30*time.Second, name+"'s report", func() bool { return outcomeOf(p) != "" })
			res.outcome = outcomeOf(p)
			res.seconds = time.Since(start).Seconds()
			res.out, res.note = m.inService(name, instance, p) // rolled back: serving again
			p.signal(syscall.SIGTERM)                          // a second signal ends it
			p.wait(10 * time.Second)
		} else {
			res.out, res.note = m.outOf(t, name, instance, p, 40*time.Second)
			res.outcome, res.seconds = outcomeOf(p), time.Since(start).Seconds()
		}
		if res.outcome != want {
			res.out, res.note = false, strings.TrimSpace(res.note+" outcome "+res.outcome+", want "+want)
		}
		return res
	}
}

// temporalLost is a node whose SIGTERM shutdown runs on Temporal when Temporal goes
// away: it must notice in seconds and finish alone within its grace period.
func temporalLost(t *testing.T, m *matrix) faultResult {
	// The orchestrator's plan gives stop-heartbeat 30 s, so that it hangs while the
	// server goes; the node's own plan (for alone) keeps 1 s.
	_ = m.dev.cmd.Process.Kill()
	m.dev.wait(10 * time.Second)
	m.dev = m.startDev(t, []string{"FAREWELL_SHUTDOWN_STEPS_STOP_HEARTBEAT_START_TO_CLOSE=30s"}, "--join", m.bystanders[0].cluster)
	p, instance := m.node(t, "n-lost", "--fault", "stop-heartbeat=hang")
	start := time.Now()
	p.signal(syscall.SIGTERM)
	eventually(t, 30*time.Second, "the hung step to run", func() bool { return strings.Contains(p.stderr.String(), "injected fault: step hangs") })
	_ = m.dev.cmd.Process.Kill()
	res := faultResult{untouched: true}
	res.out, res.note = m.outOf(t, "n-lost", instance, p, 30*time.Second) // seen by a bystander
	res.outcome, res.seconds = outcomeOf(p), time.Since(start).Seconds()
	if res.seconds > 30 {
		res.out, res.note = false, strings.TrimSpace(res.note+" longer than the 30 s grace period")
	}
	// Bring the stack back for the bystander checks.
	m.dev = m.startDev(t, nil, "--join", m.bystanders[0].cluster)
	return res
}

func watchdogBlocked(t *testing.T, m *matrix) faultResult {
	p, instance := m.node(t, "n-blocked", "--fault", "heartbeat=stop")
	start := time.Now()
	var stdout string
	eventually(t, 30*time.Second, "the watchdog to find n-blocked", func() bool {
		var code int
		code, stdout, _ = runCLI(t, []string{"TEMPORAL_ADDRESS=" + m.temporal()}, "watchdog", "run-once",
			"--config", m.cfg, "-o", "json")
		return code == 0 && strings.Contains(stdout, `"node": "n-blocked"`)
	})
	if !strings.Contains(stdout, "started a shutdown") && !strings.Contains(stdout, "joined the shutdown") {
		return faultResult{outcome: "no shutdown", untouched: true, note: stdout}
	}
	_, outcome := m.shutdownStatus(t, "n-blocked")
	out, why := m.outOf(t, "n-blocked", instance, p, 30*time.Second)
	return faultResult{outcome: "found blocked; " + outcome, out: out, untouched: true, seconds: time.Since(start).Seconds(), note: why}
}
