package e2e

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/farewell-project/farewell/cli"
	"github.com/farewell-project/farewell/devserver"
)

// execEnv, when set to 1, makes the test binary behave as the farewell command: tests
// start it as a subprocess (to send it real signals) without building another 200 MB
// binary.
const execEnv = "FAREWELL_E2E_EXEC"

func TestMain(m *testing.M) {
	if os.Getenv(execEnv) == "tool" {
		os.Exit(runTool(os.Args[1:]))
	}
	if os.Getenv(execEnv) == "1" {
		// What cmd/farewell/main.go does.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Execute(ctx, cli.Options{Args: os.Args[1:], Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Server: devserver.Embedded})
		stop()
		os.Exit(code)
	}
	code := m.Run()
	buildDirs.Range(func(dir, _ any) bool {
		_ = os.RemoveAll(dir.(string))
		return true
	})
	os.Exit(code)
}
