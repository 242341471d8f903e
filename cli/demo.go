package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/workflows"
)

// demoScene is one shutdown of the demo's story.
type demoScene struct {
	node, title, moral string
	before             func(*stack) // what goes wrong before the shutdown starts
}

func demoScenes() []demoScene {
	return []demoScene{
		{node: "node-2", title: "A clean shutdown",
			moral: "every step succeeded and every member saw node-2 leave: graceful."},
		{node: "node-3", title: "set-gracefully-left hangs on node-3",
			moral: "the hung step timed out after its StartToClose (twice: one retry), the other steps ran anyway, and node-3 left: degraded, never stuck."},
		{node: "node-4", title: "node-4's gossip stalls the moment its shutdown begins (the original zombie bug)",
			moral: "announcing and leaving need gossip, so they failed within their timeouts; the local steps ran; a healthy peer evicted node-4 and its own worker terminated it: forced, and no zombie."},
		{node: "node-5", title: "node-5's worker is gone",
			before: func(s *stack) { s.nodes["node-5"].agent.StopWorker() },
			moral:  "no worker picked the first step up within its ScheduleToStart, so the node steps were skipped and a peer evicted node-5: forced, in seconds, not never."},
	}
}

// demoLogFile is where `farewell demo` writes its logs, under the working folder.
var demoLogFile = filepath.Join(".farewell", "demo.log")

func (a *app) demoCommand() *cobra.Command {
	def := config.DefaultConfig().Dev
	var (
		exit        bool
		clusterPort int
		db          string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Tell Farewell's story on the embedded stack: four shutdowns, four outcomes",
		Long: `Start the embedded stack (Temporal server, UI, orchestrator worker, five demo nodes)
and shut four nodes down, printing each report:

  node-2  a clean shutdown                          → graceful
  node-3  its set-gracefully-left step hangs        → degraded
  node-4  its gossip stalls as the shutdown begins  → forced (the original zombie bug)
  node-5  its worker is gone                        → forced

Then the cluster as the observer sees it, and the Temporal UI stays up until Ctrl-C
(--exit: exit 0 after the story). The database is in memory unless --db names a file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			if !cmd.Flags().Changed("log-level") {
				// The story is for people: logs go to a file unless asked for.
				path, closeLog, err := a.logToFile(demoLogFile)
				if err != nil {
					return err
				}
				defer closeLog()
				fmt.Fprintf(out, "logs: %s (--log-level info shows them here)\n", path)
			}
			faults := map[string]faultSpec{
				"node-3": {steps: map[string]activities.StepFault{plan.SetGracefullyLeft: activities.FaultHang}},
				"node-4": {gossip: &cluster.Fault{Mode: cluster.FaultStall}},
			}
			s, err := a.startStack(ctx, stackOptions{
				port: a.cfg.Dev.Port, uiPort: a.cfg.Dev.UIPort, clusterPort: clusterPort, nodes: 5, db: db,
				faults: faults, serverLog: serverLogLevel(a.cfg.Log.Level),
			})
			if err != nil {
				return devServerPortError(err)
			}
			defer s.stop()
			fmt.Fprintln(out, s.readyLine())
			fmt.Fprintf(out, "Temporal UI: %s/namespaces/%s/workflows\n\n", s.srv.UIURL(), s.srv.Namespace())

			st := starter.New(s.client, starter.Options{Namespace: s.srv.Namespace(), Logger: a.logger})
			outcomes := map[string]plan.Outcome{}
			for i, scene := range demoScenes() {
				if ctx.Err() != nil {
					return nil
				}
				report, err := runScene(ctx, out, st, s, i+1, scene)
				if err != nil {
					return err
				}
				outcomes[scene.node] = report.Outcome
			}
			fmt.Fprintln(out, "The cluster as the observer sees it now:")
			printMembersText(out, s.observer.Members())
			fmt.Fprintln(out)
			for node, o := range outcomes {
				if !o.Out() {
					return &exitError{code: ExitNotOut, err: fmt.Errorf("%s ended %s: not out of the cluster", node, o)}
				}
			}
			if exit {
				return nil
			}
			fmt.Fprintf(out, "Each run is in the Temporal UI at %s — Ctrl-C to stop.\n", s.srv.UIURL())
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().BoolVar(&exit, "exit", false, "exit 0 after the story instead of keeping the UI up")
	cmd.Flags().Int("port", def.Port, "gRPC port of the embedded Temporal server (dev.port)")
	cmd.Flags().Int("ui-port", def.UIPort, "port of the Temporal UI (dev.ui_port)")
	cmd.Flags().IntVar(&clusterPort, "cluster-port", defaultClusterPort, "memberlist port of the observer member, on 127.0.0.1")
	cmd.Flags().StringVar(&db, "db", "", "SQLite file to keep the runs in; empty keeps them in memory")
	a.bind(cmd, "dev.port", "port")
	a.bind(cmd, "dev.ui_port", "ui-port")
	return cmd
}

func runScene(ctx context.Context, out io.Writer, st *starter.Starter, s *stack, n int, scene demoScene) (*workflows.ShutdownReport, error) {
	fmt.Fprintf(out, "── %d. %s ──\n", n, scene.title)
	if scene.before != nil {
		scene.before(s)
	}
	start := time.Now()
	run, err := st.Shutdown(ctx, workflows.ShutdownRequest{Node: scene.node, Reason: "demo: " + scene.title, RequestedBy: "farewell demo"})
	if err != nil {
		return nil, err
	}
	report, err := st.Wait(ctx, run, newProgressPrinter(out).update)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", scene.node, err)
	}
	fmt.Fprintln(out)
	printReport(out, report)
	fmt.Fprintf(out, "→ %s (%s wall clock)\n\n", scene.moral, time.Since(start).Round(100*time.Millisecond))
	return report, nil
}
