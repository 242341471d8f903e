package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/farewell-project/farewell/agent"
	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/demo"
)

// nodeFaults are the faults a demo node can be told to inject.
type nodeFaults struct {
	gossip *cluster.Fault
}

// parseNodeFaults reads --fault values: gossip=stall|drop|delay:D.
func parseNodeFaults(values []string) (nodeFaults, error) {
	var f nodeFaults
	for _, v := range values {
		target, mode, ok := strings.Cut(v, "=")
		if !ok {
			return f, usageError("--fault %q: want TARGET=MODE, like gossip=stall", v)
		}
		switch target {
		case "gossip":
			fault, err := cluster.ParseFaultMode(mode)
			if err != nil {
				return f, usageError("--fault %q: %v", v, err)
			}
			f.gossip = &fault
		default:
			return f, usageError("--fault %q: unknown target %q (want gossip)", v, target)
		}
	}
	return f, nil
}

func (a *app) nodeCommand() *cobra.Command {
	def := config.DefaultConfig().Cluster
	var (
		httpAddr string
		faults   []string
	)
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run one cluster node with demo services",
		Long: `Run one member of the memberlist cluster as a node, with two demo services: an
HTTP service on a loopback port that answers while the node serves, and a background
ticker. Membership changes are logged. On SIGINT or SIGTERM the node shuts down: it
announces that it is leaving, stops its heartbeat, leaves the cluster and stops its
services, each step under its shutdown.steps timeout; a second signal exits at once.

Prints "ready node=NAME cluster=HOST:PORT http=HOST:PORT" once it serves.

--fault gossip=stall arms a stall of the node's gossip: the node joins and serves
normally, and the stall switches on when its shutdown begins, as in the original
zombie bug (also drop and delay:DURATION).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseNodeFaults(faults)
			if err != nil {
				return err
			}
			// Count signals ourselves: the first ends ctx (cmd/farewell), the second
			// must end the process without waiting for the shutdown.
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)

			ctx := cmd.Context()
			ag, err := agent.Start(ctx, agent.Options{Config: a.cfg, Logger: a.logger, GossipFault: f.gossip})
			if err != nil {
				return err
			}
			svc, err := demo.Register(ag.Member(), httpAddr, a.logger.With("node", ag.Member().Name()))
			if err != nil {
				ag.Close()
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ready node=%s cluster=%s http=%s\n", ag.Member().Name(), ag.Member().Addr(), svc.HTTPAddr)

			<-ctx.Done()
			a.logger.Info("shutting down; a second signal exits at once", "node", ag.Member().Name())
			done := make(chan []agent.StepOutcome, 1)
			go func() { done <- ag.ShutdownLocal(context.WithoutCancel(ctx)) }()
			select {
			case outcomes := <-done:
				if err := agent.Failed(outcomes); err != nil {
					a.logger.Warn("node is out of the cluster, but not every step succeeded", "error", err)
				}
				a.logger.Info("node is out of the cluster", "node", ag.Member().Name())
				return nil
			case <-waitSecondSignal(sigs):
				return &exitError{code: ExitFailure, err: fmt.Errorf("second signal: exiting before the shutdown finished")}
			}
		},
	}
	cmd.Flags().String("name", "", "this node's unique name (cluster.name; default: the host name)")
	cmd.Flags().String("bind", def.Bind, "memberlist host:port, port 0 for any free one (cluster.bind)")
	cmd.Flags().StringArray("join", nil, "host:port of a member to join through; repeatable (cluster.join)")
	cmd.Flags().String("secret-key", "", "gossip encryption key, base64 of 16, 24 or 32 bytes (cluster.secret_key)")
	cmd.Flags().String("profile", def.Profile, "memberlist timings: local, lan or wan (cluster.profile)")
	cmd.Flags().StringVar(&httpAddr, "http", "127.0.0.1:0", "address of the demo HTTP service")
	cmd.Flags().StringArrayVar(&faults, "fault", nil, "inject a fault: gossip=stall|drop|delay:D (armed; on when shutdown begins)")
	a.bind(cmd, "cluster.name", "name")
	a.bind(cmd, "cluster.bind", "bind")
	a.bind(cmd, "cluster.join", "join")
	a.bind(cmd, "cluster.secret_key", "secret-key")
	a.bind(cmd, "cluster.profile", "profile")
	return cmd
}

// waitSecondSignal returns a channel that is closed on the second signal received on
// sigs (the first one is the one that started the shutdown).
func waitSecondSignal(sigs <-chan os.Signal) <-chan struct{} {
	second := make(chan struct{})
	go func() {
		<-sigs
		<-sigs
		close(second)
	}()
	return second
}
