// Command farewell runs and steers graceful shutdowns of memberlist cluster nodes as
// durable Temporal workflows. See `farewell --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/farewell-project/farewell/cli"
	"github.com/farewell-project/farewell/devserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, cli.Options{Args: os.Args[1:], Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Server: devserver.Embedded})
	stop()
	os.Exit(code)
}
