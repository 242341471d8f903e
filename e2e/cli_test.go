package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCLIDevStartsAndStops(t *testing.T) {
	db := filepath.Join(t.TempDir(), "dev.db")
	port, uiPort := freePort(t), freePort(t)
	run := startCLI(t, nil, "dev", "--port", strconv.Itoa(port), "--ui-port", strconv.Itoa(uiPort), "--db", db,
		"--cluster-port", strconv.Itoa(freePort(t)), "--nodes", "1")
	eventually(t, time.Minute, "the ready line", func() bool {
		return strings.Contains(run.Stdout.String(), "ready ")
	})
	line := run.Stdout.String()
	for _, want := range []string{
		"ui=http://127.0.0.1:" + strconv.Itoa(uiPort),
		"grpc=127.0.0.1:" + strconv.Itoa(port),
		"db=" + db,
	} {
		if !strings.Contains(line, want) {
			t.Errorf("ready line %q lacks %q", line, want)
		}
	}
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(uiPort) + "/")
	if err != nil {
		t.Fatalf("UI: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("UI answered %d", resp.StatusCode)
	}
	run.cancel() // what SIGINT does in cmd/farewell
	if code := run.wait(t, time.Minute); code != 0 {
		t.Fatalf("dev exited %d after cancel\nstderr:\n%s", code, run.Stderr.String())
	}
	if st, err := os.Stat(db); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("database file: %v, mode %v, want 0600 (it holds every shutdown's history)", err, st.Mode().Perm())
	}
}

func TestCLIDevPortTakenExits1(t *testing.T) {
	port := freePort(t)
	first := startCLI(t, nil, "dev", "--port", strconv.Itoa(port), "--ui-port", strconv.Itoa(freePort(t)), "--db", "",
		"--cluster-port", strconv.Itoa(freePort(t)), "--nodes", "0")
	eventually(t, time.Minute, "the first dev server", func() bool { return strings.Contains(first.Stdout.String(), "ready ") })

	code, _, stderr := runCLI(t, nil, "dev", "--port", strconv.Itoa(port), "--ui-port", strconv.Itoa(freePort(t)), "--db", "",
		"--cluster-port", strconv.Itoa(freePort(t)), "--nodes", "0")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "127.0.0.1:"+strconv.Itoa(port)) || !strings.Contains(stderr, "in use") {
		t.Fatalf("stderr does not name the taken port:\n%s", stderr)
	}
}

func TestCLIUsageErrorsExit2(t *testing.T) {
	badFile := filepath.Join(t.TempDir(), "farewell.yaml")
	if err := os.WriteFile(badFile, []byte("shutdown:\n  steps:\n    deregister:\n      start_to_close: forever\n  convergence_timout: 5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	goodFile := filepath.Join(t.TempDir(), "farewell.yaml")
	if err := os.WriteFile(goodFile, []byte("dev:\n  nodes: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      []string
		args     []string
		code     int
		inStderr []string
		inStdout []string
	}{
		{name: "bad flag", args: []string{"dev", "--no-such-flag"}, code: 2, inStderr: []string{"--no-such-flag"}},
		{name: "bad flag value", args: []string{"dev", "--port", "seven"}, code: 2, inStderr: []string{"seven"}},
		{name: "unknown command", args: []string{"explode"}, code: 2, inStderr: []string{"explode"}},
		{name: "config validate bad file", args: []string{"config", "validate", badFile}, code: 2,
			inStderr: []string{"shutdown.steps.deregister.start_to_close", `"forever"`, "did you mean shutdown.convergence_timeout?"}},
		{name: "config validate good file", args: []string{"config", "validate", goodFile}, code: 0, inStdout: []string{"valid"}},
		{name: "config validate missing file", args: []string{"config", "validate", "/nonexistent/farewell.yaml"}, code: 2,
			inStderr: []string{"/nonexistent/farewell.yaml"}},
		{name: "bad env", env: []string{"FAREWELL_DEV_PORT=0"}, args: []string{"dev"}, code: 2, inStderr: []string{"dev.port"}},
		{name: "dev with bad --config", args: []string{"--config", badFile, "dev"}, code: 2, inStderr: []string{"start_to_close"}},
		{name: "config print redacts", env: []string{"TEMPORAL_API_KEY=topsecret"}, args: []string{"config", "print"}, code: 0,
			inStdout: []string{"api_key: <redacted>", "deregister:"}},
		{name: "version", args: []string{"version"}, code: 0, inStdout: []string{"farewell "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.env, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			for _, w := range tt.inStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, w := range tt.inStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if strings.Contains(stdout+stderr, "topsecret") {
				t.Error("secret printed")
			}
		})
	}
}

// In-process commands never reach a Temporal the test did not name: with no address
// given they dial a closed port and say so, rather than the default 127.0.0.1:7233.
func TestInProcessCommandsDialNothingByDefault(t *testing.T) {
	code, _, stderr := runCLI(t, nil, "status", "node-1")
	if code != 1 || !strings.Contains(stderr, "127.0.0.1:1") {
		t.Fatalf("status with no address: exit %d\n%s", code, stderr)
	}
}
