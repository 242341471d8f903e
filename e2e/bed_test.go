package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/farewell-project/farewell/internal/netbed"
	"github.com/farewell-project/farewell/internal/testkit"
)

// The production testbed: Farewell run the way production fails. Every host is a Linux
// network namespace on private networks that exist only inside the namespaces the test
// made — "cluster" (memberlist), "temporal" (gRPC and PostgreSQL) and "mgmt" (the
// checker's own way to every process, never cut) — so that a node can lose Temporal
// and keep its peers, or the reverse, and a switch port can die for real. Temporal is
// the pinned server on PostgreSQL with its services apart (frontend, matching, worker,
// two history hosts); two orchestrators (`farewell worker`) share the task queue; the
// nodes are `farewell-node` processes (and the example host app); every member is off
// loopback, so the gossip key and the eviction keys are required and used.

// bedEnv set to "require" makes a missing testbed (no root, no namespaces) a failure
// instead of a skip: CI sets it.
const bedEnv = "FAREWELL_NETBED"

// The bed's nets: 10.213.<octet>.0/24 each.
var (
	netCluster  = netbed.Net{Name: "cluster", Octet: 1}
	netTemporal = netbed.Net{Name: "temporal", Octet: 2}
	netMgmt     = netbed.Net{Name: "mgmt", Octet: 3}
)

const (
	clusterPort = 7946
	statusPort  = 8080
)

// bedConfig is what every Farewell process on the bed reads, besides its keys: short
// step timeouts, so that each row ends in seconds.
const bedConfig = `
cluster:
  profile: local
  heartbeat_interval: 200ms
  heartbeat_expiration: 2s
shutdown:
  steps:
    set-gracefully-left: {start_to_close: 1s, schedule_to_start: 3s, max_attempts: 2, backoff: 100ms}
    stop-heartbeat: {start_to_close: 1s, schedule_to_start: 3s, max_attempts: 2, backoff: 100ms}
    deregister: {start_to_close: 2s, schedule_to_start: 3s, max_attempts: 2, backoff: 100ms}
    stop-services: {start_to_close: 3s, schedule_to_start: 3s, max_attempts: 2, backoff: 100ms}
  convergence_timeout: 5s
  heartbeat_timeout: 1s
  grace_period: 30s
watchdog:
  enabled: false
`

// bedOptions shape a bed.
type bedOptions struct {
	nodes   int  // farewell-node processes: node-1 … node-N
	hostApp bool // and the example host app, as "app-1"
	config  string
}

// bedProc is one Farewell process on the bed.
type bedProc struct {
	name, role string // role: node, orchestrator, hostapp
	host       *netbed.Host
	p          *netbed.Proc
	instance   string
	args       []string
	env        []string
	path       string
}

// mgmt is the process's status address on the management net.
func (bp *bedProc) mgmt() string { return fmt.Sprintf("%s:%d", bp.host.Addr("mgmt"), statusPort) }

// clusterAddr is its memberlist address.
func (bp *bedProc) clusterAddr() string {
	return fmt.Sprintf("%s:%d", bp.host.Addr("cluster"), clusterPort)
}

// prodBed is a running production testbed.
type prodBed struct {
	t        testing.TB
	bed      *netbed.Bed
	temporal *netbed.Temporal
	dir      string // configurations
	logs     string // every process's log
	nodeCfg  string
	orchCfg  string
	opsHost  *netbed.Host
	orchs    []*bedProc
	nodes    []*bedProc // node-1 … and the host app
	checker  *checkerProc
	nodeBin  string
	appBin   string
	opsRuns  int // names the ops commands' logs
}

var (
	openBeds   sync.Map // *netbed.Bed → struct{}
	bedSignals sync.Once
)

// closeOnInterrupt removes every bed when the test binary is interrupted (Ctrl-C,
// SIGTERM): what is killed harder than that, the next run's Sweep removes.
func closeOnInterrupt() {
	bedSignals.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		go func() {
			sig := <-ch
			fmt.Fprintf(os.Stderr, "\n%s: removing the testbed before exiting\n", sig)
			openBeds.Range(func(k, _ any) bool {
				_ = k.(*netbed.Bed).Close()
				return true
			})
			os.Exit(130)
		}()
	})
}

// needBed skips (or, with FAREWELL_NETBED=require, fails) when the testbed cannot run.
func needBed(t testing.TB) {
	t.Helper()
	if err := netbed.Available(); err != nil {
		if os.Getenv(bedEnv) == "require" {
			t.Fatalf("the production testbed is required (%s=require) but cannot run: %v", bedEnv, err)
		}
		t.Skipf("no production testbed here: %v (set %s=require to make this a failure)", err, bedEnv)
	}
	if _, err := os.Stat("/usr/lib/postgresql"); err != nil {
		if os.Getenv(bedEnv) == "require" {
			t.Fatalf("PostgreSQL is not installed (apt-get install -y postgresql): %v", err)
		}
		t.Skipf("PostgreSQL is not installed (apt-get install -y postgresql)")
	}
}

// The pinned Temporal server and its SQL tool, built from deploy/temporal.
var temporalServer, temporalSQLTool built

// postgresBin is the folder of the newest PostgreSQL installed.
func postgresBin(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	if len(dirs) == 0 {
		t.Fatal("no PostgreSQL under /usr/lib/postgresql (apt-get install -y postgresql)")
	}
	slices.Sort(dirs)
	return dirs[len(dirs)-1]
}

// newProdBed starts the whole bed: Temporal on PostgreSQL, two orchestrators, the nodes
// and the checker.
func newProdBed(t testing.TB, o bedOptions) *prodBed {
	t.Helper()
	needBed(t)
	closeOnInterrupt()
	if o.config == "" {
		o.config = bedConfig
	}
	start := time.Now()
	b := &prodBed{t: t, dir: t.TempDir(), nodeBin: farewellNode.build(t, "../cmd/farewell-node")}
	if o.hostApp {
		b.appBin = buildHostApp(t)
	}
	b.logs = filepath.Join(b.dir, "logs")
	b.bed = openBed(t, b.logs, func() {
		if b.checker != nil {
			b.checker.stop()
		}
	})
	bed := b.bed
	b.temporal = bedTemporal(t, bed, b.logs)
	var err error
	if b.opsHost, err = bed.AddHost("ops", "temporal"); err != nil {
		t.Fatal(err)
	}
	if code, out := b.tool("register-namespace", b.temporal.Frontend(), "default"); code != 0 {
		t.Fatalf("register the namespace: exit %d\n%s", code, out)
	}
	t.Logf("Temporal (PostgreSQL, %v) ready at %s after %s", b.temporal.Services(), b.temporal.Frontend(), time.Since(start).Round(100*time.Millisecond))

	b.writeConfigs(o.config)
	// node-1 first (it seeds the cluster), then the orchestrators, then the others.
	names := make([]string, o.nodes)
	for i := range names {
		names[i] = fmt.Sprintf("node-%d", i+1)
	}
	b.addNode(names[0], "node")
	for _, name := range []string{"orch-1", "orch-2"} {
		b.addOrchestrator(name)
	}
	for _, name := range names[1:] {
		b.addNode(name, "node")
	}
	if o.hostApp {
		b.addNode("app-1", "hostapp")
	}
	b.startChecker()
	b.waitSettled(time.Minute)
	t.Logf("bed ready after %s: %d nodes, 2 orchestrators, Temporal with %d services", time.Since(start).Round(100*time.Millisecond), len(b.nodes), len(b.temporal.Services()))
	return b
}

// openBed makes a bed with the three nets, logs in logs (made here), removed when the
// test ends — after before, and with every log printed when the test failed (and kept
// in $FAREWELL_BED_LOGS when set).
func openBed(t testing.TB, logs string, before func()) *netbed.Bed {
	t.Helper()
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	bed, err := netbed.New(netCluster, netTemporal, netMgmt)
	if err != nil {
		t.Fatal(err)
	}
	openBeds.Store(bed, struct{}{})
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, logs)
		}
		if keep := os.Getenv("FAREWELL_BED_LOGS"); keep != "" {
			dst := filepath.Join(keep, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
			_ = os.MkdirAll(keep, 0o755)
			_ = os.RemoveAll(dst)
			_ = os.Rename(logs, dst)
		}
		if before != nil {
			before()
		}
		openBeds.Delete(bed)
		if err := bed.Close(); err != nil {
			t.Errorf("remove the testbed: %v", err)
		}
	})
	return bed
}

// bedTemporal starts the pinned Temporal server on the bed's temporal net: PostgreSQL,
// the schema, each service in a process (and host) of its own.
func bedTemporal(t testing.TB, bed *netbed.Bed, logs string) *netbed.Temporal {
	t.Helper()
	server := temporalServer.buildIn(t, "../deploy/temporal", "go.temporal.io/server/cmd/server", "temporal-server")
	sqlTool := temporalSQLTool.buildIn(t, "../deploy/temporal", "go.temporal.io/server/cmd/tools/sql", "temporal-sql-tool")
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tp, err := netbed.StartTemporal(bed, netbed.TemporalOptions{Net: "temporal", Server: server, SQLTool: sqlTool,
		Config: abs("../deploy/temporal/temporal.yaml"), DynamicConfig: abs("../deploy/temporal/dynamicconfig.yaml"),
		SchemaScript: abs("../deploy/temporal/setup-schema.sh"), PostgresBin: postgresBin(t), LogDir: logs})
	if err != nil {
		t.Fatalf("Temporal on the bed: %v", err)
	}
	return tp
}

// buildIn builds pkg as a program named name, in the module at dir, once per test binary.
func (b *built) buildIn(t testing.TB, dir, pkg, name string) string {
	t.Helper()
	b.once.Do(func() {
		out, err := os.MkdirTemp("", "farewell-build-")
		if err != nil {
			b.err = err
			return
		}
		buildDirs.Store(out, true)
		b.path = filepath.Join(out, name)
		cmd := exec.Command("go", "build", "-o", b.path, pkg)
		cmd.Dir = dir
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s (in %s): %v\n%s", pkg, dir, err, msg)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// writeConfigs writes the orchestrators' and the nodes' configuration files (0600), with
// keys made by `farewell keys`, as the README's production setup says.
func (b *prodBed) writeConfigs(base string) {
	t := b.t
	code, gossip, stderr := runCLI(t, nil, "keys", "gossip")
	if code != 0 {
		t.Fatalf("keys gossip: %s", stderr)
	}
	code, evict, stderr := runCLI(t, nil, "keys", "evict")
	if code != 0 {
		t.Fatalf("keys evict: %s", stderr)
	}
	key := yamlValue(gossip, "- ")
	signing, verify := yamlValue(evict, "evict_signing_key: "), yamlValue(evict, "evict_verify_key: ")
	if key == "" || signing == "" || verify == "" {
		t.Fatalf("farewell keys printed no keys:\n%s\n%s", gossip, evict)
	}
	common := strings.Replace(base, "cluster:\n", "cluster:\n  secret_keys: ["+key+"]\n", 1)
	common += "temporal:\n  address: " + b.temporal.Frontend() + "\n  namespace: default\n"
	b.orchCfg = filepath.Join(b.dir, "orchestrator.yaml")
	b.nodeCfg = filepath.Join(b.dir, "node.yaml")
	write := func(path, extra string) {
		if err := os.WriteFile(path, []byte(strings.Replace(common, "cluster:\n", "cluster:\n"+extra, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(b.orchCfg, "  evict_signing_key: "+signing+"\n")
	write(b.nodeCfg, "  evict_verify_key: "+verify+"\n")
}

// yamlValue returns what follows prefix on the first line that has it (trimmed).
func yamlValue(doc, prefix string) string {
	for _, l := range strings.Split(doc, "\n") {
		if _, v, ok := strings.Cut(l, prefix); ok && !strings.HasPrefix(strings.TrimSpace(l), "#") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// env is the environment of a Farewell process on the bed.
func (b *prodBed) env(extra ...string) []string {
	home := filepath.Join(b.dir, "home")
	_ = os.MkdirAll(home, 0o700)
	return append([]string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "PATH=" + os.Getenv("PATH")}, extra...)
}

// joins are the cluster addresses a new member joins through: the orchestrators and
// the first node, or, for a process that starts again, every other one of them.
func (b *prodBed) joins(except ...string) []string {
	var out []string
	for _, bp := range append(slices.Clone(b.orchs), b.nodes...) {
		if len(out) == 6 {
			break
		}
		if !slices.Contains(except, bp.name) {
			out = append(out, "--join", bp.clusterAddr())
		}
	}
	return out
}

// withJoins replaces the --join arguments of args with joins.
func withJoins(args, joins []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--join" {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return append(out, joins...)
}

func (b *prodBed) addOrchestrator(name string) *bedProc {
	h, err := b.bed.AddHost(name, "cluster", "temporal", "mgmt")
	if err != nil {
		b.t.Fatal(err)
	}
	bp := &bedProc{name: name, role: "orchestrator", host: h, path: os.Args[0], env: b.env(execEnv + "=1")}
	bp.args = append([]string{"worker", "--config", b.orchCfg, "--name", name, "--bind", bp.clusterAddr(), "--http", bp.mgmt()}, b.joins()...)
	b.orchs = append(b.orchs, bp)
	b.start(bp, "ready worker=")
	return bp
}

// addNode starts a node (role node: farewell-node; hostapp: the example host app).
func (b *prodBed) addNode(name, role string, extra ...string) *bedProc {
	h, err := b.bed.AddHost(name, "cluster", "temporal", "mgmt")
	if err != nil {
		b.t.Fatal(err)
	}
	bp := &bedProc{name: name, role: role, host: h, path: b.nodeBin, env: b.env()}
	bp.args = append([]string{"--config", b.nodeCfg, "--name", name, "--bind", bp.clusterAddr(), "--http", bp.mgmt()}, b.joins()...)
	if role == "hostapp" {
		// The host app reads its membership from the configuration, as an integrator's
		// service does.
		var joins []string
		for i := 1; i < len(b.joins()); i += 2 {
			joins = append(joins, b.joins()[i])
		}
		bp.path, bp.args = b.appBin, []string{"--config", b.nodeCfg, "--http", bp.mgmt()}
		bp.env = b.env("FAREWELL_CLUSTER_NAME="+name, "FAREWELL_CLUSTER_BIND="+bp.clusterAddr(),
			"FAREWELL_CLUSTER_JOIN="+strings.Join(joins, ","))
	}
	bp.args = append(bp.args, extra...)
	b.nodes = append(b.nodes, bp)
	b.start(bp, "ready ")
	return bp
}

// start (re)starts a process and waits for its ready line and, for a node, its worker.
func (b *prodBed) start(bp *bedProc, ready string) {
	t := b.t
	p, err := bp.host.Start(netbed.Spec{Name: bp.name, Path: bp.path, Args: bp.args, Env: bp.env, Dir: b.dir, LogDir: b.logs})
	if err != nil {
		t.Fatal(err)
	}
	bp.p = p
	var line string
	testkit.Eventually(t, 2*time.Minute, bp.name+" to be ready", func() bool {
		if p.Exited() {
			t.Fatalf("%s ended before it was ready:\n%s", bp.name, tailOf(p.Log(), 4000))
		}
		var ok bool
		line, ok = p.Line(ready)
		return ok
	})
	bp.instance = field(line, "instance")
	if bp.role != "orchestrator" && !slices.Contains(bp.args, "--offline") {
		testkit.Eventually(t, time.Minute, bp.name+"'s node worker to serve", func() bool {
			return strings.Contains(p.Log(), "node worker serving")
		})
	}
	if b.checker != nil {
		b.checker.watch(b.watched())
	}
}

// restart starts a process of the bed again, a new instance under the same name,
// joining through the others.
func (b *prodBed) restart(bp *bedProc) {
	if bp.role == "hostapp" {
		var joins []string
		for i, a := range b.joins(bp.name) {
			if i%2 == 1 {
				joins = append(joins, a)
			}
		}
		bp.env = slices.DeleteFunc(bp.env, func(e string) bool { return strings.HasPrefix(e, "FAREWELL_CLUSTER_JOIN=") })
		bp.env = append(bp.env, "FAREWELL_CLUSTER_JOIN="+strings.Join(joins, ","))
	} else {
		bp.args = withJoins(bp.args, b.joins(bp.name))
	}
	ready := "ready "
	if bp.role == "orchestrator" {
		ready = "ready worker="
	}
	b.start(bp, ready)
}

// node returns the node process of that name.
func (b *prodBed) node(name string) *bedProc {
	for _, bp := range b.nodes {
		if bp.name == name {
			return bp
		}
	}
	b.t.Fatalf("no node %s on the bed", name)
	return nil
}

// watched lists every Farewell process for the checker.
func (b *prodBed) watched() []watched {
	var out []watched
	for _, bp := range append(slices.Clone(b.orchs), b.nodes...) {
		w := watched{Name: bp.name, Role: bp.role, PID: bp.p.PID(), Instance: bp.instance, HTTP: bp.mgmt(), NoView: bp.role == "hostapp"}
		if bp.role != "node" {
			w.Path = "/healthz"
		}
		out = append(out, w)
	}
	return out
}

// tool runs the test binary's tool mode on the ops host to its end.
func (b *prodBed) tool(args ...string) (int, string) {
	p, err := b.opsHost.Start(netbed.Spec{Name: "tool-" + args[0], Path: os.Args[0], Args: args, Env: b.env(execEnv + "=tool"), Dir: b.dir})
	if err != nil {
		b.t.Fatal(err)
	}
	code := p.WaitFor(3 * time.Minute)
	return code, p.Log()
}

// opsStart starts `farewell ARGS` on the ops host.
func (b *prodBed) opsStart(args ...string) *netbed.Proc {
	b.opsRuns++
	p, err := b.opsHost.Start(netbed.Spec{Name: fmt.Sprintf("ops-%03d-%s", b.opsRuns, args[0]), Path: os.Args[0], Args: args, LogDir: b.logs,
		Env: b.env(execEnv+"=1", "TEMPORAL_ADDRESS="+b.temporal.Frontend(), "TEMPORAL_NAMESPACE=default"), Dir: b.dir})
	if err != nil {
		b.t.Fatal(err)
	}
	return p
}

// dumpLogs prints the tail of every log in logs (a failed test's last word).
func dumpLogs(t testing.TB, logs string) {
	entries, _ := os.ReadDir(logs)
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(logs, e.Name()))
		t.Logf("--- %s (last 3000 bytes):\n%s", e.Name(), tailOf(string(data), 3000))
	}
}

func tailOf(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// waitSettled waits until every process serves and every member sees every other alive.
func (b *prodBed) waitSettled(limit time.Duration) {
	b.t.Helper()
	ans := b.checker.ask(checkerCommand{Op: "verdict", Settle: limit})
	if len(ans.Violations) > 0 {
		b.t.Fatalf("the bed did not settle within %s: %s", limit, strings.Join(ans.Violations, "; "))
	}
}

// checkerProc is the checker running on its host.
type checkerProc struct {
	t      testing.TB
	stdin  io.WriteCloser
	mu     sync.Mutex
	nextID int
	answer chan checkerAnswer
}

func (b *prodBed) startChecker() {
	t := b.t
	h, err := b.bed.AddHost("checker", "temporal", "mgmt")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--net="+filepath.Join("/run/netns", h.NS), "--", os.Args[0], "checker", b.temporal.Frontend(), "default")
	cmd.Env = b.env(execEnv + "=tool")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(b.logs, "checker.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ck := &checkerProc{t: t, stdin: stdin, answer: make(chan checkerAnswer, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var a checkerAnswer
			if json.Unmarshal(sc.Bytes(), &a) == nil {
				ck.answer <- a
			}
		}
		_ = cmd.Wait()
		logf.Close()
		close(ck.answer)
	}()
	select {
	case a, ok := <-ck.answer:
		if !ok || len(a.Notes) == 0 || a.Notes[0] != "ready" {
			t.Fatalf("the checker did not start: %+v", a)
		}
	case <-time.After(time.Minute):
		t.Fatal("the checker did not start within a minute")
	}
	b.checker = ck
	ck.watch(b.watched())
}

// ask sends a command and waits for its answer.
func (ck *checkerProc) ask(cmd checkerCommand) checkerAnswer {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	ck.nextID++
	cmd.ID = ck.nextID
	line, _ := json.Marshal(cmd)
	if _, err := ck.stdin.Write(append(line, '\n')); err != nil {
		ck.t.Fatalf("checker: %v", err)
	}
	for {
		select {
		case a, ok := <-ck.answer:
			if !ok {
				ck.t.Fatal(errCheckerGone)
			}
			if a.ID != cmd.ID {
				continue
			}
			if a.Error != "" {
				ck.t.Fatalf("checker: %s", a.Error)
			}
			return a
		case <-time.After(10 * time.Minute):
			ck.t.Fatalf("the checker did not answer %s within 10 minutes", cmd.Op)
		}
	}
}

func (ck *checkerProc) watch(procs []watched) { ck.ask(checkerCommand{Op: "procs", Procs: procs}) }

// stop ends the checker and returns what it saw all along (a process judged out
// that served again).
func (ck *checkerProc) stop() []string {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	ck.nextID++
	line, _ := json.Marshal(checkerCommand{ID: ck.nextID, Op: "stop"})
	if _, err := ck.stdin.Write(append(line, '\n')); err != nil {
		return nil
	}
	for {
		select {
		case a, ok := <-ck.answer:
			if !ok {
				return nil
			}
			if a.ID == ck.nextID {
				return a.Violations
			}
		case <-time.After(30 * time.Second):
			return nil
		}
	}
}

// toolRun is a tool-mode run on the checker's host.
type toolRun struct{ p *netbed.Proc }

// checkerTool starts the test binary's tool mode on the checker's host (on the
// management net: it reaches every process's status address).
func (b *prodBed) checkerTool(args ...string) toolRun {
	p, err := b.bed.Host("checker").Start(netbed.Spec{Name: "tool-" + args[0], Path: os.Args[0], Args: args,
		Env: b.env(execEnv + "=tool"), Dir: b.dir})
	if err != nil {
		b.t.Fatal(err)
	}
	return toolRun{p}
}

// result waits for the tool to end: its exit code and stdout.
func (r toolRun) result() (int, string) {
	code := r.p.WaitFor(2 * time.Minute)
	return code, r.p.Stdout()
}
