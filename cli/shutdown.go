package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"

	"github.com/farewell-project/farewell/agent"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/workflows"
)

// dial connects to temporal.address; failing to is a runtime failure (exit 1).
func (a *app) dial(ctx context.Context) (client.Client, error) {
	opts, err := a.dialOptions()
	if err != nil {
		return nil, err
	}
	// A frontend that restarts refuses connections for a moment: try again for a few
	// seconds before giving up, saying so once.
	retry := cmp.Or(a.opts.DialRetry, dialRetry)
	deadline := time.Now().Add(retry)
	for warned := false; ; warned = true {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := starter.Dial(dctx, agent.Connection(a.cfg.Temporal), opts)
		cancel()
		if err == nil || !starter.Unavailable(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return c, err
		}
		if !warned {
			fmt.Fprintf(a.opts.Stderr, "Temporal at %s does not answer (%v); trying again for %s\n", a.cfg.Temporal.Address, err, retry)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// dialRetry is how long a command keeps trying to reach a Temporal that refuses
// connections.
const dialRetry = 5 * time.Second

func (a *app) starter(c client.Client) *starter.Starter {
	return starter.New(c, starter.Options{Namespace: a.cfg.Temporal.Namespace, Logger: a.logger})
}

func requester() string {
	who := "cli"
	if u, err := user.Current(); err == nil && u.Username != "" {
		who = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		who += "@" + h
	}
	return who
}

// lookupWait bounds how long `shutdown` without --wait waits to learn whether the node
// exists, so that an unknown node is reported rather than left to a failed workflow.
const lookupWait = 10 * time.Second

func (a *app) shutdownCommand() *cobra.Command {
	var (
		reason string
		wait   bool
		output string
		force  bool
		set    []string
	)
	cmd := &cobra.Command{
		Use:   "shutdown NODE",
		Short: "Shut a node down gracefully, as a durable workflow",
		Long: `Start the graceful shutdown of NODE (or join the one already running): lookup, then
set-gracefully-left, stop-heartbeat, deregister and stop-services on the node itself,
each under its timeouts and retries, a failed step never blocking the next; then a check
that every member sees the node out, and a forced eviction when it is not.

The plan is the orchestrator worker's (its shutdown.* settings); --set changes one value
of it for this run only, named as under shutdown in farewell.yaml:

  --set steps.deregister.start_to_close=10s --set steps.deregister.on_failure=abort
  --set force=false --set convergence_timeout=30s

A trigger that joins a running shutdown changes nothing of it, and says which of its
--force, --reason and --set were not applied.

Without --wait, prints the workflow and run IDs once the node is known. With --wait,
prints one line per step change, then the report (with --output json, only the report).

Exit codes: 0 graceful; 3 degraded or forced (the node is out, not cleanly); 4 aborted
or failed (the node is not out); 2 bad input (unknown node, bad flags); 1 runtime error
(Temporal unreachable, …).`,
		Args: exactArgs(1, "NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var override plan.Override
			for _, kv := range set {
				field, value, ok := strings.Cut(kv, "=")
				if !ok {
					return usageError("--set %q: want FIELD=VALUE, like steps.deregister.start_to_close=10s", kv)
				}
				if err := override.Set(field, value); err != nil {
					return usageError("--set: %v", err)
				}
			}
			req := workflows.ShutdownRequest{Node: args[0], Reason: reason, RequestedBy: requester(), Force: force}
			if err := req.Validate(); err != nil {
				return usageError("%v", err)
			}
			if !override.Empty() {
				req.Override = &override
			}
			ctx, span := a.tel.Tracer().Start(cmd.Context(), "farewell shutdown",
				trace.WithAttributes(attribute.String("farewell.node", args[0])))
			defer span.End()
			c, err := a.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			st := a.starter(c)
			run, err := st.Shutdown(ctx, req)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !wait {
				if err := a.awaitLookup(ctx, st, run); err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(out, run)
				}
				verb := "started"
				if run.Joined {
					verb = "joined running"
				}
				fmt.Fprintf(out, "%s shutdown of %s: workflow %s run %s\n", verb, args[0], run.WorkflowID, run.RunID)
				printNotApplied(out, run)
				if a.cfg.Temporal.Address != "" {
					fmt.Fprintf(out, "watch it with: farewell status %s\n", args[0])
				}
				return nil
			}
			if output == "text" {
				if run.Joined {
					fmt.Fprintf(out, "joined the running shutdown of %s: workflow %s run %s\n", args[0], run.WorkflowID, run.RunID)
					printNotApplied(out, run)
				} else {
					fmt.Fprintf(out, "started shutdown of %s: workflow %s run %s\n", args[0], run.WorkflowID, run.RunID)
				}
			}
			report, err := waitAndReport(ctx, st, run, output, out, output == "text")
			if report != nil {
				span.SetAttributes(attribute.String("farewell.outcome", string(report.Outcome)))
			} else if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			return err
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the node is shut down (recorded in the report and any eviction)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the shutdown to end, showing its progress")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.Flags().BoolVar(&force, "force", false, "skip the graceful steps and force-evict the node at once")
	cmd.Flags().StringArrayVar(&set, "set", nil, "change one value of the orchestrator's plan for this run: FIELD=VALUE (repeatable)")
	return cmd
}

// printNotApplied says what a trigger asked that the running shutdown it joined does
// not do.
func printNotApplied(w io.Writer, run starter.Run) {
	if len(run.NotApplied) > 0 {
		fmt.Fprintf(w, "not applied (the running shutdown keeps its own request): %s\n", strings.Join(run.NotApplied, ", "))
	}
}

// waitAndReport follows a run to its end (one line per step change in text output),
// prints its report, and turns its outcome into the exit code of `--wait`.
// idsShown says the caller printed the run's IDs already.
func waitAndReport(ctx context.Context, st *starter.Starter, run starter.Run, output string, w io.Writer, idsShown bool) (*workflows.ShutdownReport, error) {
	var progress func(workflows.ShutdownReport)
	if output == "text" {
		progress = newProgressPrinter(w).update
	}
	report, err := st.Wait(ctx, run, progress)
	if err != nil {
		return nil, err
	}
	if output == "json" {
		if err := writeJSON(w, report); err != nil {
			return report, err
		}
	} else {
		fmt.Fprintln(w)
		printReportWith(w, report, !idsShown)
	}
	if code := outcomeExitCode(report.Outcome); code != ExitOK {
		return report, &exitError{code: code}
	}
	return report, nil
}

// awaitLookup waits until the shutdown got past its lookup, so that an unknown node is
// an error now rather than a failed workflow found later.
func (a *app) awaitLookup(ctx context.Context, st *starter.Starter, run starter.Run) error {
	ctx, cancel := context.WithTimeout(ctx, lookupWait)
	defer cancel()
	for {
		d, err := st.Client().DescribeWorkflowExecution(ctx, run.WorkflowID, run.RunID)
		if err == nil && d.GetWorkflowExecutionInfo().GetStatus().String() != "Running" {
			_, werr := st.Wait(ctx, run, nil)
			return werr
		}
		if err == nil {
			if v, qerr := st.Client().QueryWorkflow(ctx, run.WorkflowID, run.RunID, workflows.QueryProgress); qerr == nil {
				var r workflows.ShutdownReport
				if v.Get(&r) == nil && r.NodeStateAtStart != "" {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			a.logger.Warn("the shutdown has not got past its lookup yet; is the orchestrator worker running?", "workflow_id", run.WorkflowID)
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (a *app) statusCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status NODE",
		Short: "Show the latest shutdown of a node",
		Long: `Show the latest shutdown of NODE: its progress while it runs (via the progress query,
which needs the orchestrator worker), its report once done.`,
		Args: exactArgs(1, "NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if err := plan.ValidateNodeName(args[0]); err != nil {
				return usageError("NODE: %v", err)
			}
			c, err := a.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := a.starter(c).Status(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				return writeJSON(out, st)
			}
			if st.Report != nil && st.Report.WorkflowID != "" {
				fmt.Fprintf(out, "%s: %s\n", args[0], st.Status) // the report names the run
			} else {
				fmt.Fprintf(out, "%s: %s (workflow %s, run %s)\n", args[0], st.Status, st.WorkflowID, st.RunID)
			}
			if st.Report != nil {
				if st.Status == "Running" {
					if cur := st.Report.CurrentStep(); cur != "" {
						fmt.Fprintf(out, "now: %s\n", cur)
					}
				}
				printReport(out, st.Report)
			}
			if st.Error != "" {
				fmt.Fprintln(out, st.Error)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func (a *app) listCommand() *cobra.Command {
	var (
		open, closed bool
		output, node string
		limit        int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List shutdowns, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := a.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			list, err := a.starter(c).List(cmd.Context(), starter.ListFilter{Open: open, Closed: closed, Node: node, Limit: limit})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				if list == nil {
					list = []starter.Summary{}
				}
				return writeJSON(out, list)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tSTATUS\tOUTCOME\tSTEP\tSTARTED\tWORKFLOW\tRUN")
			// STARTED in this machine's time zone, named.
			for _, s := range list {
				outcome := s.Outcome
				if s.Slow {
					outcome += " (slow)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Node, s.Status, orDash(outcome), orDash(s.Step),
					s.Started.Local().Format(time.DateTime+" MST"), s.WorkflowID, s.RunID)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&open, "open", false, "only running shutdowns")
	cmd.Flags().BoolVar(&closed, "closed", false, "only finished shutdowns")
	cmd.Flags().StringVar(&node, "node", "", "only this node's shutdowns")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// exactArgs is cobra.ExactArgs with a message that names the argument.
func exactArgs(n int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError("%s takes %d argument(s): %v (got %d)", cmd.Name(), n, names, len(args))
		}
		return nil
	}
}
