package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/farewell-project/farewell/internal/netbed"
)

// quickstartDoc is the production quick start this test runs, command for command.
const quickstartDoc = "../docs/production-quickstart.md"

// A quickstart block is one shell block of the document and where it runs (the
// <!-- quickstart: WHERE --> comment before it).
type quickstartBlock struct {
	where, script string
	line          int
}

func readQuickstart(t *testing.T) []quickstartBlock {
	t.Helper()
	f, err := os.Open(quickstartDoc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks []quickstartBlock
		where  string
		cur    *quickstartBlock
		n      int
	)
	tag := regexp.MustCompile(`^<!-- quickstart: (.+) -->$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.script += line + "\n"
		case tag.MatchString(line):
			where = tag.FindStringSubmatch(line)[1]
		case strings.HasPrefix(line, "```sh"):
			if where == "" {
				t.Fatalf("%s:%d: a shell block without <!-- quickstart: WHERE --> before it: say where it runs, so that the test runs it", quickstartDoc, n)
			}
			cur = &quickstartBlock{where: where, line: n}
			where = ""
		}
	}
	if len(blocks) == 0 {
		t.Fatalf("%s: no quickstart blocks", quickstartDoc)
	}
	return blocks
}

// qsHost is a host of the quick start: a network namespace of the bed with its own
// host name and its own /etc, /usr/local and /var (overlays on the machine's, held by a
// process that sleeps in that mount namespace); commands enter all three.
type qsHost struct {
	name   string
	host   *netbed.Host
	keeper *netbed.Proc
	home   string
	upper  string // the overlays' upper dirs: what the quick start wrote on this host
}

func (h *qsHost) addr(net string) string { return h.host.Addr(net) }

// TestProductionQuickstart runs docs/production-quickstart.md on the testbed: every
// block on the hosts it names, as written, with the site's variables set to the bed's;
// then checks what the document promises.
func TestProductionQuickstart(t *testing.T) {
	needBed(t)
	closeOnInterrupt()
	for _, tool := range []string{"unshare", "systemd-analyze", "promtool", "prometheus", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (apt-get install -y prometheus systemd curl util-linux): %v", tool, err)
		}
	}
	blocks := readQuickstart(t)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	release := buildRelease(t, filepath.Join(dir, "release"))

	bed := openBed(t, logs, nil)
	temporal := bedTemporal(t, bed, logs)
	ops, err := bed.AddHost("ops", "temporal")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := ops.Start(netbed.Spec{Name: "register-namespace", Path: os.Args[0], Args: []string{"register-namespace", temporal.Frontend(), "farewell"},
		Env: []string{execEnv + "=tool", "HOME=" + dir, "PATH=" + os.Getenv("PATH")}, LogDir: logs})
	if err != nil {
		t.Fatal(err)
	}
	if code := reg.WaitFor(3 * time.Minute); code != 0 {
		t.Fatalf("register the namespace farewell: exit %d\n%s", code, reg.Log())
	}

	hosts := map[string]*qsHost{}
	for _, name := range []string{"orch", "node-1", "node-2", "node-3", "prom"} {
		nets := []string{"cluster", "temporal", "mgmt"}
		if name == "prom" {
			nets = []string{"mgmt"}
		}
		hosts[name] = newQSHost(t, bed, name, filepath.Join(dir, "hosts", name), logs, nets...)
	}
	var targets []string
	for _, name := range []string{"orch", "node-1", "node-2", "node-3"} {
		targets = append(targets, hosts[name].addr("mgmt")+":9464")
	}
	site := func(h *qsHost) map[string]string {
		v := map[string]string{
			"TEMPORAL":  temporal.Frontend(),
			"NAMESPACE": "farewell",
			"SEEDS":     hosts["node-1"].addr("cluster") + ":7946, " + hosts["node-2"].addr("cluster") + ":7946",
			"RELEASE":   release,
			"ARCH":      runtime.GOARCH,
			"TARGETS":   strings.Join(targets, ", "),
			"ADDR":      "",
		}
		if h != nil {
			v["ADDR"] = h.addr("cluster")
		}
		return v
	}
	workstation := filepath.Join(dir, "workstation")
	if err := os.MkdirAll(workstation, 0o700); err != nil {
		t.Fatal(err)
	}

	// The document's own site block names the variables this test sets, no more, no fewer.
	if blocks[0].where != "site" {
		t.Fatalf("%s: the first block must be the site's variables (<!-- quickstart: site -->)", quickstartDoc)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^([A-Z_]+)=`).FindAllStringSubmatch(blocks[0].script, -1) {
		names = append(names, m[1])
	}
	var want []string
	for k := range site(nil) {
		want = append(want, k)
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("%s: the site block sets %v; the test sets %v", quickstartDoc, names, want)
	}

	nodes := []string{"node-1", "node-2", "node-3"}
	where := map[string][]string{
		"every host": {"orch", "node-1", "node-2", "node-3"}, "node": nodes, "orchestrator": {"orch"},
		"prometheus": {"prom"}, "node-2": {"node-2"},
	}
	outputs := map[string]string{}
	var stopTook time.Duration
	for _, b := range blocks[1:] {
		if b.where == "workstation" {
			out := runLocal(t, workstation, site(nil), b)
			outputs[fmt.Sprintf("workstation:%d", b.line)] = out
			if strings.Contains(b.script, "keys files") {
				// The secrets' trip to the hosts (the reader's secret store, here a copy):
				// the orchestrator's file to its host, the nodes' to theirs.
				for name, file := range map[string]string{"orch": "orchestrator.env", "node-1": "node.env", "node-2": "node.env", "node-3": "node.env"} {
					dst := filepath.Join(hosts[name].home, "farewell-keys")
					if out, err := exec.Command("install", "-D", "-m", "0600", filepath.Join(workstation, "farewell-keys", file), filepath.Join(dst, file)).CombinedOutput(); err != nil {
						t.Fatalf("copy %s to %s: %v: %s", file, name, err, out)
					}
				}
			}
			continue
		}
		on, ok := where[b.where]
		if !ok {
			t.Fatalf("%s:%d: <!-- quickstart: %s --> is no host of the test's (%v)", quickstartDoc, b.line, b.where, where)
		}
		for _, name := range on {
			h := hosts[name]
			start := time.Now()
			outputs[fmt.Sprintf("%s:%d", name, b.line)] = h.run(t, site(h), b, logs)
			if strings.Contains(b.script, "systemctl stop farewell-node") {
				stopTook = time.Since(start)
			}
		}
	}

	// node-3, shut down from the orchestrator host: graceful, its process exited 0.
	shutdown := outputs[fmt.Sprintf("orch:%d", lineOf(t, blocks, "farewell shutdown node-3"))]
	if !regexp.MustCompile(`(?m)^node-3: GRACEFUL in `).MatchString(shutdown) {
		t.Errorf("farewell shutdown node-3 did not end graceful:\n%s", shutdown)
	}
	if st := hosts["node-3"].unitStatus(); st != "0" {
		t.Errorf("node-3's farewell-node exited %q after its shutdown, want 0", st)
	}
	// node-2, stopped by systemctl: out, exit 0, within TimeoutStopSec.
	if st := hosts["node-2"].unitStatus(); st != "0" {
		t.Errorf("node-2's farewell-node: exit %q after systemctl stop, want 0", st)
	}
	if limit := 136 * time.Second; stopTook >= limit {
		t.Errorf("systemctl stop farewell-node took %s, the unit's TimeoutStopSec is %s", stopTook, limit)
	}
	list := outputs[fmt.Sprintf("orch:%d", lineOf(t, blocks, "farewell list"))]
	for _, n := range []string{"node-2", "node-3"} {
		if !regexp.MustCompile(`(?m)^` + n + `\s+Completed\s+graceful\s`).MatchString(list) {
			t.Errorf("farewell list does not show %s's shutdown completed graceful:\n%s", n, list)
		}
	}
	// The bystanders serve on.
	for _, name := range []string{"node-1", "orch"} {
		unit := map[string]string{"node-1": "farewell-node", "orch": "farewell-worker"}[name]
		out := hosts[name].run(t, nil, quickstartBlock{where: name, script: "systemctl is-active " + unit + "\n"}, logs)
		if strings.TrimSpace(out) != "active" {
			t.Errorf("%s: %s is %q after the shutdowns of others", name, unit, out)
		}
	}
	t.Logf("node-2 out by systemctl stop in %s", stopTook.Round(100*time.Millisecond))

	// Prometheus scraped every target and holds both shutdowns.
	prom := hosts["prom"]
	query := func(q string) string {
		return prom.run(t, nil, quickstartBlock{where: "prom", script: "curl -sf --get --data-urlencode 'query=" + q + "' http://127.0.0.1:9090/api/v1/query\n"}, logs)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		up := query(`max_over_time(up{job="farewell"}[10m]) == 1`)
		total := query(`sum(farewell_shutdowns_total{outcome="graceful"})`)
		n := strings.Count(up, `"instance"`)
		v := regexp.MustCompile(`"value":\[[0-9.]+,"([0-9.]+)"\]`).FindStringSubmatch(total)
		got := 0.0
		if v != nil {
			got, _ = strconv.ParseFloat(v[1], 64)
		}
		if n == len(targets) && got >= 2 {
			t.Logf("Prometheus: %d targets scraped, %v graceful shutdowns counted", n, got)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus after 2m: %d of %d targets up once (%s), graceful shutdowns %v (%s)", n, len(targets), up, got, total)
		}
		time.Sleep(2 * time.Second) // poll: Prometheus scrapes every 15s
	}
}

// lineOf is the line of the block that holds s.
func lineOf(t *testing.T, blocks []quickstartBlock, s string) int {
	t.Helper()
	for _, b := range blocks {
		if strings.Contains(b.script, s) {
			return b.line
		}
	}
	t.Fatalf("%s has no block with %q", quickstartDoc, s)
	return 0
}

// buildRelease runs make release for this machine's platform into dir.
func buildRelease(t *testing.T, dir string) string {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("make", "-s", "-C", "..", "release", "RELEASE_DIR="+dir, "PLATFORMS=linux/"+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
	t.Logf("make release (linux/%s) in %s", runtime.GOARCH, time.Since(start).Round(time.Second))
	return dir
}

// newQSHost makes a host of the quick start: its namespace on nets, and a keeper
// holding its mount and UTS namespaces (the overlays, the host name), with the
// systemctl stand-in installed.
func newQSHost(t *testing.T, bed *netbed.Bed, name, dir, logs string, nets ...string) *qsHost {
	t.Helper()
	h := &qsHost{name: name, home: filepath.Join(dir, "home"), upper: filepath.Join(dir, "upper")}
	var err error
	if h.host, err = bed.AddHost(name, nets...); err != nil {
		t.Fatal(err)
	}
	var mounts strings.Builder
	for _, d := range []string{"etc", "usr/local", "var"} {
		key := strings.ReplaceAll(d, "/", "-")
		up, work := filepath.Join(h.upper, key), filepath.Join(dir, "work", key)
		for _, p := range []string{up, work} {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprintf(&mounts, "mount -t overlay overlay -o lowerdir=/%s,upperdir=%s,workdir=%s /%s\n", d, up, work, d)
	}
	if err := os.MkdirAll(h.home, 0o700); err != nil {
		t.Fatal(err)
	}
	script := "set -e\n" + mounts.String() + "hostname " + name + "\necho ready\nexec sleep infinity\n"
	h.keeper, err = h.host.Start(netbed.Spec{Name: name + "-root", Path: "unshare",
		Args: []string{"--mount", "--uts", "--propagation", "private", "bash", "-c", script}, LogDir: logs})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := h.keeper.Line("ready"); ok {
			break
		}
		if h.keeper.Exited() || time.Now().After(deadline) {
			t.Fatalf("%s: the overlays did not mount:\n%s", name, h.keeper.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// What the units printed on this host (the stand-in's journal).
		logs, _ := filepath.Glob(filepath.Join(h.upper, "var", "log", "units", "*.log"))
		for _, f := range logs {
			b, _ := os.ReadFile(f)
			t.Logf("--- %s: %s (last 3000 bytes):\n%s", name, filepath.Base(f), tailOf(string(b), 3000))
		}
	})
	shim, err := filepath.Abs("testdata/quickstart/systemctl")
	if err != nil {
		t.Fatal(err)
	}
	h.run(t, nil, quickstartBlock{where: name, script: "install -D -m 0755 " + shim + " /usr/local/sbin/systemctl\n"}, logs)
	return h
}

// run runs block's script on the host as root, in its namespaces, with vars set and
// sudo a no-op, and returns its stdout; a failing command fails the test.
func (h *qsHost) run(t *testing.T, vars map[string]string, b quickstartBlock, logs string) string {
	t.Helper()
	var pre strings.Builder
	pre.WriteString("set -euo pipefail\nsudo() { \"$@\"; }\ncd \"$HOME\"\n")
	for _, k := range sortedKeys(vars) {
		fmt.Fprintf(&pre, "%s=%q\n", k, vars[k])
	}
	pre.WriteString("set -x\n")
	p, err := h.host.Start(netbed.Spec{Name: fmt.Sprintf("%s-doc-%d", h.name, b.line), Path: "nsenter",
		Args: []string{"--target", strconv.Itoa(h.keeper.PID()), "--mount", "--uts", "--", "bash", "-c", pre.String() + b.script},
		Env:  []string{"HOME=" + h.home, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, Dir: h.home, LogDir: logs})
	if err != nil {
		t.Fatal(err)
	}
	if code := p.WaitFor(4 * time.Minute); code != 0 {
		t.Fatalf("%s:%d on %s: exit %d\n%s", quickstartDoc, b.line, h.name, code, tailOf(p.Log(), 6000))
	}
	return p.Stdout()
}

// unitStatus is how farewell-node's last process ended, as the systemctl stand-in
// recorded it: its exit code, "killed", or "" while it runs.
func (h *qsHost) unitStatus() string {
	b, _ := os.ReadFile(filepath.Join(h.upper, "var", "lib", "units", "farewell-node.service.status"))
	return strings.TrimSpace(string(b))
}

// runLocal runs a workstation block on this machine, in dir.
func runLocal(t *testing.T, dir string, vars map[string]string, b quickstartBlock) string {
	t.Helper()
	var pre strings.Builder
	pre.WriteString("set -euo pipefail\n")
	for _, k := range sortedKeys(vars) {
		fmt.Fprintf(&pre, "%s=%q\n", k, vars[k])
	}
	cmd := exec.Command("bash", "-c", pre.String()+b.script)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s:%d on the workstation: %v\n%s", quickstartDoc, b.line, err, out)
	}
	return string(out)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
