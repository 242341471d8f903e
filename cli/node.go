package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/agent"
	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/demo"
	"github.com/farewell-project/farewell/telemetry"
	"github.com/farewell-project/farewell/workflows"
)

func (a *app) nodeCommand() *cobra.Command {
	def := config.DefaultConfig().Cluster
	var (
		httpAddr string
		faults   []string
		offline  bool
	)
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run one cluster node with demo services and its shutdown worker",
		Long: `Run one member of the memberlist cluster as a node, with two demo services (an HTTP
service on a loopback port that answers while the node serves, and a background ticker)
and its node worker against temporal.address. If Temporal cannot be reached at start,
the node still serves as a member and keeps retrying in the background.

SIGHUP reads the configuration again and applies cluster.secret_keys: the way to rotate
gossip keys without leaving (see the README).

On SIGINT or SIGTERM the node starts (or joins) its own shutdown workflow, with the
orchestrator's plan, and keeps its worker serving until its last step ran. If Temporal
cannot be reached it runs its own plan (shutdown.*) locally, with the same timeouts and
isolation, and says so. A second signal exits at once.

The process exits by itself once the node has nothing left to serve, whoever shut it
down (its own signal, "farewell shutdown", a drain) or when a peer evicted it: 0 when it
left on its own (graceful or degraded), 1 when it was forced out, saying who and why. A
shutdown that was aborted leaves it serving.

Prints "ready node=NAME cluster=HOST:PORT http=HOST:PORT instance=ID" once it serves.

Faults for trying things out (repeatable):
  --fault gossip=stall                 gossip stalls when the shutdown begins
  --fault set-gracefully-left=hang     a step hangs until its timeout
  --fault gossip=drop                  gossip is lost when the shutdown begins
  --fault heartbeat=stop               no heartbeat at all: peers see the node blocked
  --fault deregister=error             a step fails on every attempt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var spec faultSpec
			for _, f := range faults {
				var err error
				if spec, err = parseFault(spec, f); err != nil {
					return err
				}
			}
			steps := &activities.Faults{}
			for step, f := range spec.steps {
				steps.Set(step, f)
			}
			if cmd.Flags().Changed("secret-key") {
				a.logger.Warn("--secret-key puts the gossip key where every user of this machine can read it (ps, /proc); use FAREWELL_CLUSTER_SECRET_KEYS or the config file")
			}
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)

			ctx := cmd.Context()
			dopts, err := a.dialOptions()
			if err != nil {
				return err
			}
			ag, err := agent.Start(ctx, agent.Options{Config: a.cfg, Logger: a.logger, Offline: offline,
				GossipFault: spec.gossip, StepFaults: steps, Dial: dopts, Tracer: a.tel.Tracer()})
			if err != nil {
				return err
			}
			defer ag.Close()
			if err := telemetry.ObserveMembers(a.tel.Meter(), ag.Member()); err != nil {
				return err
			}
			name := ag.Member().Name()
			if spec.heartbeatStopped {
				ag.Member().StopHeartbeat()
				a.logger.Warn("heartbeat fault: this node publishes no heartbeat (its peers see it blocked)", "node", name)
			}
			svc, err := demo.Register(ag.Member(), httpAddr, a.logger.With("node", name))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ready node=%s cluster=%s http=%s instance=%s\n", name, ag.Member().Addr(), svc.HTTPAddr, ag.Member().Instance())
			return a.nodeLoop(cmd, ag, sigs)
		},
	}
	cmd.Flags().String("name", "", "this node's unique name (cluster.name; default: the host name)")
	cmd.Flags().String("bind", def.Bind, "memberlist host:port, port 0 for any free one (cluster.bind)")
	cmd.Flags().StringArray("join", nil, "host:port of a member to join through; repeatable (cluster.join)")
	cmd.Flags().String("secret-key", "", "gossip encryption key, base64 of 16, 24 or 32 bytes (cluster.secret_key; better in the environment or the config file)")
	cmd.Flags().String("profile", def.Profile, "memberlist timings: local, lan or wan (cluster.profile)")
	cmd.Flags().String("address", "", "Temporal frontend host:port (temporal.address)")
	cmd.Flags().StringVar(&httpAddr, "http", "127.0.0.1:0", "address of the demo HTTP service")
	cmd.Flags().BoolVar(&offline, "offline", false, "run without Temporal: shut down with the local plan")
	cmd.Flags().StringArrayVar(&faults, "fault", nil, "inject a fault: gossip=stall or STEP=hang|error (repeatable)")
	a.bind(cmd, "cluster.name", "name")
	a.bind(cmd, "cluster.bind", "bind")
	a.bind(cmd, "cluster.join", "join")
	a.bind(cmd, "cluster.secret_key", "secret-key")
	a.bind(cmd, "cluster.profile", "profile")
	a.bind(cmd, "temporal.address", "address")
	return cmd
}

// reloadKeys reads the configuration again and gives the member its gossip keys: the
// way to rotate them without leaving the cluster (SIGHUP).
func (a *app) reloadKeys(cmd *cobra.Command, m *cluster.Member) {
	if err := a.loadConfig(cmd, ""); err != nil {
		a.logger.Error("SIGHUP: configuration not reloaded", "error", err)
		return
	}
	keys, err := a.cfg.Cluster.GossipKeys()
	if err == nil {
		err = m.SetKeys(keys)
	}
	if err != nil {
		a.logger.Error("SIGHUP: gossip keys not changed", "error", err)
		return
	}
	a.logger.Info("SIGHUP: gossip keys reloaded", "keys", len(keys))
}

// sameSignalWait bounds the wait for the signal that ended the command's context to
// arrive on the node's own channel too.
const sameSignalWait = 200 * time.Millisecond

// nodeLoop is the node's life in one place: the first signal starts its durable
// shutdown, a second one exits at once; when the node is done — its shutdown ran,
// whoever started it, or a peer evicted it — the process exits, 0 when the node left on
// its own (graceful or degraded), 1 when it was forced out. An aborted shutdown leaves
// the node serving.
func (a *app) nodeLoop(cmd *cobra.Command, ag *agent.Agent, sigs <-chan os.Signal) error {
	name := ag.Member().Name()
	out := cmd.OutOrStdout()
	cancelled := cmd.Context().Done() // an in-process run ends with its context, as with a signal
	signals := 0
	var reports chan *workflows.ShutdownReport // the node's own shutdown, once started
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			a.reloadKeys(cmd, ag.Member())
			continue
		case <-sigs:
			cancelled = nil // the same signal also ends the command's context
		case <-cancelled:
			// The command's context ends with a signal (cmd/farewell) or, run in-process,
			// on its own; take in the signal that ended it, so that it counts once.
			cancelled = nil
			select {
			case <-sigs:
			case <-time.After(sameSignalWait):
			}
		case r := <-reports:
			reports = nil
			printReport(out, r)
			if !r.Outcome.Out() {
				a.logger.Warn("the shutdown did not take the node out: it serves on; a second signal exits at once",
					"node", name, "outcome", r.Outcome)
			}
			continue
		case <-ag.Done():
			e := ag.Exit()
			switch {
			case reports != nil:
				printReport(out, <-reports) // the node's own shutdown: its report comes next
			case signals == 0:
				fmt.Fprintf(out, "%s: done without a signal: %s\n", name, e.Why)
			}
			if !e.Clean() {
				return &exitError{code: ExitFailure, err: fmt.Errorf("node %s is out: %s", name, e.Why)}
			}
			a.logger.Info("node is out of the cluster", "node", name, "outcome", e.Outcome)
			return nil
		}
		if signals++; signals > 1 {
			return &exitError{code: ExitFailure, err: fmt.Errorf("second signal: exiting before the shutdown finished")}
		}
		a.logger.Info("signal received: shutting down; a second signal exits at once", "node", name)
		reports = make(chan *workflows.ShutdownReport, 1)
		go func(done chan<- *workflows.ShutdownReport) {
			sctx, span := a.tel.Tracer().Start(context.WithoutCancel(cmd.Context()), "sigterm shutdown",
				trace.WithAttributes(attribute.String("farewell.node", name)))
			r := ag.Shutdown(sctx, "signal", "sigterm@"+name)
			span.SetAttributes(attribute.String("farewell.outcome", string(r.Outcome)))
			span.End()
			done <- r
		}(reports)
	}
}
