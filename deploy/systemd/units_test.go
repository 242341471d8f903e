// Package systemd_test checks the shipped unit files: systemd itself verifies them, and
// their stop timeouts agree with what the processes need.
package systemd_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/worker"
)

var units = []string{"farewell-worker.service", "farewell-node.service"}

// TestUnitsVerify runs systemd-analyze verify over the units, installed in a root of
// their own with the system's units and the binaries they start: any complaint fails.
func TestUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if os.Getenv("FAREWELL_SYSTEMD") == "require" {
			t.Fatalf("systemd-analyze is required (FAREWELL_SYSTEMD=require): %v", err)
		}
		t.Skip("no systemd-analyze (apt-get install systemd)")
	}
	root := t.TempDir()
	copyDir(t, "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/system"))
	for _, bin := range []string{"farewell", "farewell-node"} {
		writeFile(t, filepath.Join(root, "usr/local/bin", bin), "#!/bin/sh\n", 0o755)
	}
	for _, env := range []string{"orchestrator.env", "node.env"} {
		writeFile(t, filepath.Join(root, "etc/farewell", env), "", 0o600)
	}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, "etc/systemd/system", u), string(b), 0o644)
	}
	verify := func(t *testing.T) string {
		out, err := exec.Command("systemd-analyze", append([]string{"verify", "--root=" + root}, units...)...).CombinedOutput()
		if err != nil {
			return "failed: " + err.Error() + "\n" + string(out)
		}
		return strings.TrimSpace(string(out))
	}
	if out := verify(t); out != "" {
		t.Fatalf("systemd-analyze verify: %s", out)
	}
	// The check can fail: a misspelt setting is reported.
	unit := filepath.Join(root, "etc/systemd/system/farewell-node.service")
	b, _ := os.ReadFile(unit)
	writeFile(t, unit, strings.Replace(string(b), "KillMode=mixed", "KillMode=mixd", 1), 0o644)
	if out := verify(t); !strings.Contains(out, "mixd") {
		t.Errorf("a bad KillMode went unreported: %q", out)
	}
}

// TestStopTimeouts: systemd waits for a node's shutdown as long as its plan may take
// (farewell config grace-period, for the plan the quick start uses: the default one),
// the node is told the same figure, and the worker is given as long as it lets its
// running activities finish.
func TestStopTimeouts(t *testing.T) {
	node := parse(t, "farewell-node.service")
	env := node.env()
	if unknown := config.UnknownEnv(env); len(unknown) > 0 {
		t.Errorf("farewell-node.service: %v", unknown)
	}
	cfg, _, err := config.Load(config.Source{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	grace := cfg.Shutdown.MustPlan().GracePeriod()
	if got := node.seconds(t, "TimeoutStopSec"); got != grace {
		t.Errorf("farewell-node.service: TimeoutStopSec=%s, but farewell config grace-period says %s", got, grace)
	}
	if cfg.Shutdown.GracePeriod != grace {
		t.Errorf("farewell-node.service tells the node its grace period is %s (shutdown.grace_period), but systemd gives it %s", cfg.Shutdown.GracePeriod, grace)
	}
	w := parse(t, "farewell-worker.service")
	if unknown := config.UnknownEnv(w.env()); len(unknown) > 0 {
		t.Errorf("farewell-worker.service: %v", unknown)
	}
	if got := w.seconds(t, "TimeoutStopSec"); got < worker.StopTimeout+5*time.Second {
		t.Errorf("farewell-worker.service: TimeoutStopSec=%s leaves the worker's %s stop (and its exit) no room", got, worker.StopTimeout)
	}
}

// TestUnitsSettings: what each unit must say, whatever else changes.
func TestUnitsSettings(t *testing.T) {
	common := map[string]string{
		"KillMode": "mixed", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"DynamicUser": "yes", "CapabilityBoundingSet": "", "Type": "exec",
	}
	want := map[string]map[string]string{
		"farewell-worker.service": {"Restart": "always", "EnvironmentFile": "/etc/farewell/orchestrator.env"},
		// A node that exits on its own was shut down: it must not come back by itself.
		"farewell-node.service": {"Restart": "on-abnormal", "EnvironmentFile": "/etc/farewell/node.env"},
	}
	for _, u := range units {
		got := parse(t, u)
		for _, m := range []map[string]string{common, want[u]} {
			for k, v := range m {
				if vals, ok := got[k]; !ok || vals[len(vals)-1] != v {
					t.Errorf("%s: %s=%v, want %q", u, k, vals, v)
				}
			}
		}
		if exec := got["ExecStart"]; len(exec) != 1 || !strings.Contains(exec[0], "--config /etc/farewell/farewell.yaml") {
			t.Errorf("%s: ExecStart=%v, want one that reads /etc/farewell/farewell.yaml", u, exec)
		}
	}
}

// unit is a unit file's [Service] settings: every value of each key, in order.
type unit map[string][]string

func parse(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u, section := unit{}, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not a setting: %q", path, line)
			}
			u[k] = append(u[k], v)
		}
	}
	return u
}

// env is what Environment= lines set (no quoting: the units use none).
func (u unit) env() []string {
	var out []string
	for _, line := range u["Environment"] {
		out = append(out, strings.Fields(line)...)
	}
	return out
}

func (u unit) seconds(t *testing.T, key string) time.Duration {
	t.Helper()
	v := u[key]
	if len(v) == 0 {
		t.Fatalf("no %s", key)
	}
	n, err := strconv.Atoi(v[len(v)-1])
	if err != nil {
		t.Fatalf("%s=%q: want whole seconds", key, v[len(v)-1])
	}
	return time.Duration(n) * time.Second
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("mkdir", "-p", filepath.Dir(to)).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v: %s", from, err, out)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
