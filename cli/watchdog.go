package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/farewell-project/farewell/agent"
	"github.com/farewell-project/farewell/workflows"
)

func (a *app) watchdogCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watchdog",
		Short: "The zombie watchdog: nodes nobody asked to stop that neither serve nor are out",
		Long: `The orchestrator keeps a Temporal Schedule, farewell-watchdog (on the UI's Schedules
page), that sweeps the cluster every watchdog.interval for zombies nobody asked to stop:

  blocked         alive, flagged blocked, and no heartbeat for watchdog.blocked_after
  leaving         leaving for watchdog.leaving_after, and no shutdown running
  evicted-alive   evicted, yet heard heartbeating watchdog.evicted_after later

With watchdog.action report it logs each, counts it (farewell_zombies_total) and lists it
in the sweep's result (search attribute FarewellZombies); with shutdown it also starts
the zombie's shutdown, reason "watchdog: <why>", requested by "watchdog".`,
	}
	var (
		dryRun bool
		output string
	)
	once := &cobra.Command{
		Use:   "run-once [--dry-run]",
		Short: "Sweep now and print what it finds and does (or, with --dry-run, would do)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := a.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			r, err := runSweep(ctx, c, agent.Sweep(a.cfg.Watchdog, dryRun))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				return writeJSON(out, r)
			}
			printSweep(out, r)
			return nil
		},
	}
	once.Flags().BoolVar(&dryRun, "dry-run", false, "report what it would do, do nothing")
	once.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.AddCommand(once)
	return cmd
}

// runSweep runs one sweep on the orchestrator and waits for it.
func runSweep(ctx context.Context, c client.Client, req workflows.SweepRequest) (*workflows.SweepReport, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.SweepID(time.Now().UnixMilli()), TaskQueue: workflows.TaskQueue,
		StaticSummary: "watchdog sweep, by hand: " + req.Describe(),
	}, workflows.SweepWorkflowName, req)
	if err != nil {
		return nil, fmt.Errorf("start the sweep: %w", err)
	}
	var r workflows.SweepReport
	if err := run.Get(ctx, &r); err != nil {
		return nil, fmt.Errorf("sweep %s: %w (is the orchestrator worker running?)", run.GetID(), err)
	}
	return &r, nil
}

func printSweep(w io.Writer, r *workflows.SweepReport) {
	verb := "did"
	if r.DryRun {
		verb = "would do"
	}
	fmt.Fprintf(w, "swept %s: %s (action %s)\n", count(r.Nodes, "node"), count(len(r.Findings), "zombie"), r.Action)
	if len(r.Findings) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "NODE\tKIND\tFOR\tWHY\t%s\n", verb)
	for _, f := range r.Findings {
		did := f.Did
		if f.Problem != "" {
			did += " (" + f.Problem + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Node, f.Kind, f.For, f.Why, did)
	}
	tw.Flush()
}
