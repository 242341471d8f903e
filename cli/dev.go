package cli

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/farewell-project/farewell/config"
)

// defaultClusterPort is the observer's memberlist port in the embedded stack.
const defaultClusterPort = 7946

func (a *app) devCommand() *cobra.Command {
	def := config.DefaultConfig().Dev
	var (
		clusterPort int
		faults      []string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole stack in this process: Temporal, the UI, workers and a demo cluster",
		Long: `Run everything Farewell needs on this machine in one process: a Temporal server
persisting to a SQLite file (it survives restarts; --db "" keeps it in memory), the
Temporal UI, the orchestrator worker with its observer cluster member on
127.0.0.1:--cluster-port (so that separate "farewell node --join 127.0.0.1:7946"
processes can join), and --nodes demo nodes node-1 … node-N on 127.0.0.1, each a cluster
member with its node worker and demo services. Nothing is downloaded.

Prints one line "ready ui=… grpc=… cluster=… nodes=…" once serving, then runs until
SIGINT or SIGTERM and stops cleanly. Then, from another shell:

  farewell shutdown node-2 --wait

Faults for trying things out (repeatable):
  --fault node-3:set-gracefully-left=hang   a step hangs until its timeout
  --fault node-3:deregister=error           a step fails on every attempt
  --fault node-4:gossip=stall               gossip stalls once the node's shutdown begins
  --fault node-2:heartbeat=stop             the node publishes no heartbeat: blocked
  --fault observer:gossip=isolate           the observer is cut off once dev gets SIGUSR1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := a.cfg.Dev
			nodeFaults, err := parseNodeFaults(faults, c.Nodes)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := a.startStack(ctx, stackOptions{
				port: c.Port, uiPort: c.UIPort, clusterPort: clusterPort, nodes: c.Nodes, db: c.DB,
				faults: nodeFaults, serverLog: serverLogLevel(a.cfg.Log.Level),
			})
			if err != nil {
				return devServerPortError(err)
			}
			defer s.stop()
			usr1 := make(chan os.Signal, 1)
			signal.Notify(usr1, syscall.SIGUSR1)
			defer signal.Stop(usr1)
			fmt.Fprintln(cmd.OutOrStdout(), s.readyLine())
			for {
				select {
				case <-ctx.Done():
					a.logger.Info("stopping the embedded stack")
					return nil
				case <-usr1:
					if f, ok := s.observer.Transport().Trigger(); ok {
						a.logger.Warn("observer gossip fault switched on (SIGUSR1)", "fault", f.String())
					}
				}
			}
		},
	}
	cmd.Flags().Int("port", def.Port, "gRPC port of the embedded Temporal server (dev.port)")
	cmd.Flags().Int("ui-port", def.UIPort, "port of the Temporal UI (dev.ui_port)")
	cmd.Flags().String("db", def.DB, `SQLite file, created with its folder; "" keeps everything in memory (dev.db)`)
	cmd.Flags().Int("nodes", def.Nodes, "demo nodes to run, 0 for none (dev.nodes)")
	cmd.Flags().IntVar(&clusterPort, "cluster-port", defaultClusterPort, "memberlist port of the observer member, on 127.0.0.1")
	cmd.Flags().StringArrayVar(&faults, "fault", nil, "inject a fault: NODE:gossip=stall or NODE:STEP=hang|error (repeatable)")
	cmd.Flags().StringArray("join", nil, "host:port of a member the observer joins through, to rejoin a cluster after a restart; repeatable (cluster.join)")
	a.bind(cmd, "cluster.join", "join")
	a.bind(cmd, "dev.port", "port")
	a.bind(cmd, "dev.ui_port", "ui-port")
	a.bind(cmd, "dev.db", "db")
	a.bind(cmd, "dev.nodes", "nodes")
	return cmd
}

// serverLogLevel keeps the embedded server at warn unless Farewell itself logs less.
func serverLogLevel(level string) slog.Level {
	if level == "error" {
		return slog.LevelError
	}
	return slog.LevelWarn
}
