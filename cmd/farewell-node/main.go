// Command farewell-node runs one node of a memberlist cluster with its Farewell agent:
// `farewell node` without the embedded Temporal server, for the machines that run nodes.
// See `farewell-node --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/farewell-project/farewell/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, cli.Options{Args: os.Args[1:], Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, NodeOnly: true})
	stop()
	os.Exit(code)
}
