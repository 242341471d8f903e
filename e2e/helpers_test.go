package e2e

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	sdklog "go.temporal.io/sdk/log"

	"github.com/farewell-project/farewell/cli"
	"github.com/farewell-project/farewell/devserver"
	"github.com/farewell-project/farewell/internal/testkit"
	"github.com/farewell-project/farewell/workflows"
)

// freePort returns a loopback TCP port that was free a moment ago (testkit.FreePort).
func freePort(t testing.TB) int {
	t.Helper()
	return testkit.FreePort(t)
}

// eventually polls cond until it holds or the deadline passes (testkit.Eventually).
func eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, limit, what, cond)
}

func testLogger(t testing.TB) *slog.Logger { return testkit.Logger(t) }

// startServer starts an embedded server on free ports; opts may set DBPath.
func startServer(t testing.TB, opts devserver.Options) *devserver.Server {
	t.Helper()
	if opts.Port == 0 {
		opts.Port = freePort(t)
	}
	if opts.UIPort == 0 {
		opts.NoUI = true
	}
	if opts.DBPath == "" {
		opts.InMemory = true
	}
	if opts.SearchAttributes == nil {
		opts.SearchAttributes = workflows.SearchAttributes()
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start dev server: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// syncBuffer is a bytes.Buffer safe for a command writing while a test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cliRun is one in-process run of the farewell command line.
type cliRun struct {
	Stdout, Stderr syncBuffer
	code           int
	done           chan struct{}
	cancel         context.CancelFunc
}

// noTemporal is where in-process commands look for Temporal unless a test says
// otherwise: a closed port, so that no test dials the default 127.0.0.1:7233 (another
// stack on this machine) by accident.
const noTemporal = "TEMPORAL_ADDRESS=127.0.0.1:1"

// startCLI runs farewell with args in-process, in the background, in the environment
// env alone (the machine's variables do not leak in).
func startCLI(t testing.TB, env []string, args ...string) *cliRun {
	t.Helper()
	env = append([]string{noTemporal}, env...)
	ctx, cancel := context.WithCancel(context.Background())
	r := &cliRun{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(r.done)
		r.code = cli.Execute(ctx, cli.Options{
			Args: args, Stdout: &r.Stdout, Stderr: &r.Stderr, Env: env,
			Stdin: strings.NewReader(""), ConfigDirs: []string{t.TempDir()}, Server: devserver.Embedded,
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// wait waits for the command to end and returns its exit code.
func (r *cliRun) wait(t testing.TB, limit time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(limit):
		t.Fatalf("command did not end within %s\nstdout:\n%s\nstderr:\n%s", limit, r.Stdout.String(), r.Stderr.String())
		return -1
	}
}

// runCLI runs farewell with args to completion.
func runCLI(t testing.TB, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	r := startCLI(t, env, args...)
	code = r.wait(t, 2*time.Minute)
	return code, r.Stdout.String(), r.Stderr.String()
}

func quietSDKLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(benchLogHandler()))
}
