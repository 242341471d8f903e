package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/farewell-project/farewell/agent"
	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/worker"
)

// observerLeave bounds an observer's leave when its process stops.
const observerLeave = 3 * time.Second

func (a *app) workerCommand() *cobra.Command {
	var httpAddr string
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run the orchestrator worker against temporal.address",
		Long: `Run the orchestrator worker: it runs the GracefulShutdown workflows and the cluster
activities (lookup, force-evict, verify-convergence) on task queue "farewell", and joins
the cluster (cluster.join) as an observer member: it sees the membership and can evict,
and is never a shutdown target. Run as many as you like for availability.

It checks that the namespace has Farewell's search attributes and adds them if it can,
and keeps the farewell-watchdog schedule as watchdog.* says. SIGHUP reloads the gossip
keys (cluster.secret_keys). Runs until SIGINT or SIGTERM, then stops gracefully.

With --http HOST:PORT it serves a status endpoint: GET /healthz answers 200 while the
worker serves (a liveness probe), GET /members the observer's view of the cluster as
JSON.

Prints "ready worker=NAME cluster=HOST:PORT temporal=HOST:PORT instance=ID" once it
serves.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if len(a.cfg.Cluster.Join) == 0 {
				return usageError("worker needs the cluster to observe: --join HOST:PORT (cluster.join)")
			}
			c, err := a.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			asm, open, err := agent.Orchestrator(a.cfg)
			if err != nil {
				return err
			}
			for _, w := range open {
				a.logger.Warn("insecure cluster membership: " + w)
			}
			asm.Logger, asm.Meter, asm.SearchAttributes = a.logger, a.tel.Meter(), true
			orch, err := worker.StartOrchestrator(ctx, c, asm)
			if err != nil {
				return err
			}
			defer orch.Stop(observerLeave)
			observer := orch.Observer
			if httpAddr != "" {
				stop, err := serveStatus(httpAddr, observer, a.logger)
				if err != nil {
					return err
				}
				defer stop()
			}
			a.logger.Info("orchestrator worker serving", "temporal", a.cfg.Temporal.Address, "namespace", a.cfg.Temporal.Namespace,
				"observer", observer.Name(), "cluster", observer.Addr())
			fmt.Fprintf(cmd.OutOrStdout(), "ready worker=%s cluster=%s temporal=%s instance=%s\n", observer.Name(), observer.Addr(), a.cfg.Temporal.Address, observer.Instance())
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			for {
				select {
				case <-hup:
					a.reloadKeys(cmd, observer)
				case <-ctx.Done():
					return nil
				}
			}
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http", "", "serve /healthz and /members on this host:port (off unless set)")
	cmd.Flags().String("name", "", "this observer's member name (cluster.name; default: the host name)")
	cmd.Flags().String("bind", "", "memberlist host:port of the observer (cluster.bind)")
	cmd.Flags().StringArray("join", nil, "host:port of a member to join through; repeatable (cluster.join)")
	cmd.Flags().String("address", "", "Temporal frontend host:port (temporal.address)")
	cmd.Flags().String("namespace", "", "Temporal namespace (temporal.namespace)")
	a.bind(cmd, "cluster.name", "name")
	a.bind(cmd, "cluster.bind", "bind")
	a.bind(cmd, "cluster.join", "join")
	a.bind(cmd, "temporal.address", "address")
	a.bind(cmd, "temporal.namespace", "namespace")
	return cmd
}

// serveStatus serves the orchestrator's status endpoint on addr until stop is called:
// /healthz (200) and /members (the observer's view).
func serveStatus(addr string, observer *cluster.Member, log *slog.Logger) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "serving") })
	mux.Handle("/members", observer.ViewHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("status endpoint failed", "error", err)
		}
	}()
	log.Info("status endpoint serving", "addr", l.Addr().String())
	return func() { _ = srv.Close() }, nil
}
