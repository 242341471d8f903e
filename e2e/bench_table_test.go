package e2e

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// benchTableEnv names the file `make bench` collects its table's rows in.
const benchTableEnv = "FAREWELL_BENCH_TABLE"

var benchTableMu sync.Mutex

// benchRow records one row of `make bench`'s table — what was measured, against what,
// the result and the target, and the command that reproduces it — in the file
// FAREWELL_BENCH_TABLE names, when set. A benchmark runs once with b.N = 1 before the
// run asked for: a later row of the same id replaces an earlier one.
func benchRow(id, what, result, target, command string) {
	row := fmt.Sprintf("| %s | %s | %s | %s | `%s` |", id, what, result, target, command)
	file := os.Getenv(benchTableEnv)
	if file == "" {
		return
	}
	benchTableMu.Lock()
	defer benchTableMu.Unlock()
	old, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		fmt.Fprintf(os.Stderr, "bench table: %v\n", err)
		return
	}
	var rows []string
	for _, line := range strings.Split(strings.TrimSpace(string(old)), "\n") {
		if line != "" && !strings.HasPrefix(line, "| "+id+" |") {
			rows = append(rows, line)
		}
	}
	rows = append(rows, row)
	if err := os.WriteFile(file, []byte(strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "bench table: %v\n", err)
	}
}

// BenchmarkHostAppCost (P5) measures what the agent costs the example host app: its
// resident memory and idle CPU with the agent (a member of a 2-member loopback cluster,
// its worker polling the embedded server) against the same app without Farewell
// (--without-farewell), over the same idle window, in one run.
//
//	go test ./e2e -run '^$' -bench HostAppCost -benchtime 1x
func BenchmarkHostAppCost(b *testing.B) {
	const window = 20 * time.Second
	bin := buildHostApp(b)
	for range b.N {
		s := newStack(b, testConfig(), 0)
		cfg := writeHostConfig(b, s.observer.Addr(), "cost-1")
		with := startExecutable(b, bin, []string{"TEMPORAL_ADDRESS=" + s.srv.Address()}, "--config", cfg, "--http", "127.0.0.1:0")
		with.waitLine("ready ", 30*time.Second)
		eventually(b, 30*time.Second, "the host's worker to serve", func() bool {
			return strings.Contains(with.stderr.String(), "node worker serving")
		})
		without := startExecutable(b, bin, nil, "--without-farewell", "--http", "127.0.0.1:0")
		without.waitLine("ready ", 30*time.Second)

		pw, po := with.cmd.Process.Pid, without.cmd.Process.Pid
		cw0, co0 := procCPU(b, pw), procCPU(b, po)
		time.Sleep(window) // the measurement window itself
		cw, co := procCPU(b, pw)-cw0, procCPU(b, po)-co0
		rw, ro := procRSSKiB(b, pw), procRSSKiB(b, po)
		addedMiB := float64(rw-ro) / 1024
		addedCPU := 100 * (cw - co).Seconds() / window.Seconds()
		b.ReportMetric(addedMiB, "added-MiB")
		b.ReportMetric(addedCPU, "added-%CPU")
		fmt.Printf("P5 host app idle over %s: with the agent RSS %.1f MiB, CPU %.2f%%; without RSS %.1f MiB, CPU %.2f%%; the agent adds %.1f MiB and %.2f%% of a core (target ≤ 25 MiB, ≤ 1%%)\n",
			window, float64(rw)/1024, 100*cw.Seconds()/window.Seconds(), float64(ro)/1024, 100*co.Seconds()/window.Seconds(), addedMiB, addedCPU)
		benchRow("P5", "host app idle: with the agent vs without", fmt.Sprintf("+%.1f MiB RSS (%.1f vs %.1f), +%.2f%% of a core", addedMiB, float64(rw)/1024, float64(ro)/1024, addedCPU),
			"≤ 25 MiB, ≤ 1%", "go test ./e2e -run '^$' -bench HostAppCost -benchtime 1x")
	}
}

// writeHostConfig writes a host app's farewell.yaml joining the cluster through join.
func writeHostConfig(t testing.TB, join, name string) string {
	t.Helper()
	cfg := fmt.Sprintf("cluster:\n  name: %s\n  bind: 127.0.0.1:0\n  join: [%q]\n  profile: local\n", name, join)
	file := t.TempDir() + "/farewell.yaml"
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// BenchmarkDevStartup measures `farewell dev` (SQLite in a fresh file, the UI, the
// orchestrator worker, 3 demo nodes) from its start to its ready line, and its RSS then.
//
//	go test ./e2e -run '^$' -bench DevStartup -benchtime 3x
func BenchmarkDevStartup(b *testing.B) {
	var took []time.Duration
	var rss int
	for range b.N {
		dir := b.TempDir()
		start := time.Now()
		p := startProcess(b, nil, "dev", "--port", fmt.Sprint(freePort(b)), "--ui-port", fmt.Sprint(freePort(b)),
			"--cluster-port", fmt.Sprint(freePort(b)), "--db", dir+"/temporal.db")
		p.waitLine("ready ", 2*time.Minute)
		took = append(took, time.Since(start))
		rss = max(rss, procRSSKiB(b, p.cmd.Process.Pid))
		p.signal(syscall.SIGINT)
		p.wait(time.Minute)
	}
	m := median(took)
	b.ReportMetric(m.Seconds(), "ready-s")
	b.ReportMetric(float64(rss)/1024, "MiB-RSS")
	fmt.Printf("farewell dev start-up, n=%d: ready after %s (median of %v); RSS at ready %.0f MiB\n", b.N, m.Round(time.Millisecond), roundAll(took), float64(rss)/1024)
	benchRow("start-up", "`farewell dev` (server, UI, worker, 3 nodes, new SQLite file) to ready", fmt.Sprintf("%s (median), RSS %.0f MiB", m.Round(time.Millisecond), float64(rss)/1024),
		"—", "go test ./e2e -run '^$' -bench DevStartup -benchtime 3x")
}
