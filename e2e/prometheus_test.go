package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/farewell-project/farewell/internal/testkit"
)

// prometheusConfig is the orchestrators' and nodes' configuration for the Prometheus
// check: the fault matrix's short timeouts, a shutdown past a second counted slow, a
// cluster budget (so that leases are taken and requests wait), a watchdog that finds a
// blocked node in seconds.
var prometheusConfig = strings.Replace(matrixConfig, "shutdown:\n", "shutdown:\n  slow_threshold: 1s\n", 1) + `
budget:
  max_parallel: 1
`

// A real Prometheus (started by the test on free loopback ports, a throwaway data
// folder) scrapes `farewell dev`, `farewell worker` and a node with the shipped alerting
// rules; after a graceful, a degraded and a forced shutdown, a drain, and a blocked
// member the watchdog finds, the Prometheus HTTP API shows the series every panel of the
// Grafana dashboard (deploy/grafana/farewell.json) asks for, and the alerts firing.
func TestPrometheusScrapesAndAlerts(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("FAREWELL_PROMETHEUS") == "require" {
			t.Fatalf("prometheus is required (FAREWELL_PROMETHEUS=require): %v", err)
		}
		t.Skip("prometheus is not installed (apt-get install -y prometheus)")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	dash := loadDashboard(t)
	m := newMatrixWithEnv(t, prometheusConfig, metricsEnv(t, "dev"))
	devMetrics := m.metricsAddr
	workerMetrics := freeAddr(t)
	w := startProcess(t, []string{"OTEL_METRICS_EXPORTER=prometheus", "OTEL_EXPORTER_PROMETHEUS_HOST=127.0.0.1",
		"OTEL_EXPORTER_PROMETHEUS_PORT=" + portOf(workerMetrics)},
		"worker", "--config", m.cfg, "--name", "orch-2", "--bind", "127.0.0.1:0", "--join", m.observer(), "--address", m.temporal())
	w.waitLine("ready worker=", time.Minute)
	nodeMetrics := freeAddr(t)
	graceful := m.startNode(t, "p-graceful", []string{"OTEL_METRICS_EXPORTER=prometheus", "OTEL_EXPORTER_PROMETHEUS_HOST=127.0.0.1",
		"OTEL_EXPORTER_PROMETHEUS_PORT=" + portOf(nodeMetrics)})
	graceful.waitLine("ready ", time.Minute)
	eventually(t, 30*time.Second, "p-graceful's worker", func() bool { return strings.Contains(graceful.stderr.String(), "node worker serving") })

	// Prometheus, scraping the three every second, evaluating the shipped rules.
	dir := t.TempDir()
	rules, err := filepath.Abs("../deploy/prometheus/farewell-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: farewell
    static_configs:
      - targets: [%q, %q, %q]
`, rules, devMetrics, workerMetrics, nodeMetrics)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	promAddr := freeAddr(t)
	prom := startExecutable(t, promBin, nil, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)
	eventually(t, time.Minute, "Prometheus to be ready", func() bool {
		resp, err := http.Get("http://" + promAddr + "/-/ready")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	_ = prom

	// The run: graceful, degraded, forced, a drain of two, a blocked member found.
	for _, tc := range []struct{ node, fault, want string }{
		{"p-degraded", "set-gracefully-left=error", "degraded"},
		{"p-forced", "deregister=error", "forced"},
	} {
		m.node(t, tc.node, "--fault", tc.fault)
		if got, r := m.shutdown(t, tc.node); got != tc.want {
			t.Fatalf("%s: %s (%s), want %s", tc.node, got, r.Error, tc.want)
		}
	}
	// A drain and a shutdown at once under budget.max_parallel 1: one of them waits.
	for _, n := range []string{"p-drain-1", "p-drain-2"} {
		m.node(t, n)
	}
	lone := m.runShutdown(t, "p-graceful")
	code, stdout, stderr := runCLI(t, []string{"TEMPORAL_ADDRESS=" + m.temporal()}, "drain", "p-drain-1", "p-drain-2", "--max-parallel", "1", "--wait")
	if code != 0 {
		t.Fatalf("drain: exit %d\n%s%s", code, stdout, stderr)
	}
	lone.wait(t, time.Minute)
	if got := reportOf(lone); got != "graceful" {
		t.Fatalf("p-graceful: %s", got)
	}
	blocked, _ := m.node(t, "p-blocked", "--fault", "heartbeat=stop")
	defer func() { _ = blocked.cmd.Process.Signal(syscall.SIGKILL) }()
	eventually(t, time.Minute, "the watchdog to find p-blocked", func() bool {
		code, stdout, _ := runCLI(t, []string{"TEMPORAL_ADDRESS=" + m.temporal(), "FAREWELL_WATCHDOG_ACTION=report"}, "watchdog", "run-once",
			"--config", m.cfg, "-o", "json")
		return code == 0 && strings.Contains(stdout, `"node": "p-blocked"`)
	})

	// Every panel's every query answers with a series.
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			q := strings.NewReplacer("$__range", "1h", "$__rate_interval", "1m").Replace(target.Expr)
			var n int
			if !testkit.Within(90*time.Second, func() bool { n = seriesOf(t, promAddr, q); return n > 0 }) {
				t.Errorf("panel %q: %s returns no series", p.Title, q)
			}
		}
	}
	// The alerts the run should fire: forced shutdowns at once; a member blocked is
	// pending at first (it must last two minutes), then firing.
	want := map[string][]string{"FarewellShutdownForced": {"firing"}, "FarewellMemberBlocked": {"pending", "firing"}}
	for alert, states := range want {
		var got string
		if !testkit.Within(90*time.Second, func() bool { got = alertState(t, promAddr, alert); return contains(states, got) }) {
			t.Errorf("alert %s is %q, want %v; the series:\n%s", alert, got, states, rawQuery(promAddr, "farewell_shutdowns_total[5m]"))
		}
	}
	if got := alertState(t, promAddr, "FarewellShutdownFailed"); got != "" {
		t.Errorf("FarewellShutdownFailed is %s: no shutdown failed", got)
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// dashboard is what the test reads of the Grafana dashboard model.
type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		GridPos struct {
			W, H int
		} `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// loadDashboard reads deploy/grafana/farewell.json as a dashboard model and checks what
// Grafana needs of one: a title and uid, panels with unique ids, a size, and queries.
func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("../deploy/grafana/farewell.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) < 8 {
		t.Fatalf("dashboard %q (uid %q) with %d panels", d.Title, d.UID, len(d.Panels))
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] || p.Type == "" || p.GridPos.W == 0 || p.GridPos.H == 0 || len(p.Targets) == 0 {
			t.Errorf("panel %d %q: a duplicate id, no type, no size or no query", p.ID, p.Title)
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" {
				t.Errorf("panel %q: a query without expr or refId", p.Title)
			}
		}
	}
	return d
}

// seriesOf runs an instant query and counts the series it returns.
func seriesOf(t *testing.T, prom, q string) int {
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if !getJSON(t, "http://"+prom+"/api/v1/query?query="+url.QueryEscape(q), &r) || r.Status != "success" {
		return 0
	}
	return len(r.Data.Result)
}

// alertState is the state of an alert in Prometheus ("" when it is not active).
func alertState(t *testing.T, prom, name string) string {
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if !getJSON(t, "http://"+prom+"/api/v1/alerts", &r) {
		return ""
	}
	state := ""
	for _, a := range r.Data.Alerts {
		if a.Labels["alertname"] == name && (state == "" || a.State == "firing") {
			state = a.State
		}
	}
	return state
}

func getJSON(t *testing.T, u string, into any) bool {
	resp, err := http.Get(u)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && json.Unmarshal(b, into) == nil
}

func freeAddr(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }

func portOf(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }

// metricsEnv is the environment that makes a process serve Prometheus metrics on a free
// port; it returns the variables (the port is the last one's value).
func metricsEnv(t *testing.T, _ string) []string {
	return []string{"OTEL_METRICS_EXPORTER=prometheus", "OTEL_EXPORTER_PROMETHEUS_HOST=127.0.0.1",
		"OTEL_EXPORTER_PROMETHEUS_PORT=" + fmt.Sprint(freePort(t))}
}

// rawQuery is what Prometheus answers to q, as it says it.
func rawQuery(prom, q string) string {
	resp, err := http.Get("http://" + prom + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
