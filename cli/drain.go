package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/workflows"
)

// Exit codes of `drain --wait`, beside the shared ones.
const (
	// ExitDrainPartial: the drain ended, but not every node is out cleanly (forced,
	// held back by the floor, skipped).
	ExitDrainPartial = 3
	// ExitDrainStopped: it stopped at its failure threshold, was aborted, or a
	// shutdown failed.
	ExitDrainStopped = 4
)

// preflightWait bounds how long `drain` waits for its pre-flight before it returns.
const preflightWait = 2 * time.Minute

func (a *app) drainCommand() *cobra.Command {
	var (
		all, dryRun, wait           bool
		glob, name, reason, output  string
		tags                        []string
		maxParallel, minAlive, fail int
		pause, gateTimeout          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "drain [NODE...] [--all | --glob PATTERN | --tag KEY=VALUE]",
		Short: "Take many nodes out, never more at once than the cluster can spare",
		Long: `Drain nodes: shut each down with its ordinary GracefulShutdown (farewell-shutdown-<node>,
so status, replay and retry work per node; a node already shutting down is joined), at
most --max-parallel at once, never leaving fewer than --min-alive nodes in service
(counting those in flight as gone), with a health gate before each start: the nodes
taken out so far are out for the cluster and no member is blocked.

Choose nodes by name, or --all, --glob 'web-*' or --tag rack=r1 (repeatable; all must
match). Every shutdown, however it starts, takes a lease from the cluster's budget
(budget.max_parallel and budget.min_alive of the orchestrator); a drain's flags can
only make it stricter for this drain, and two drains never exceed it together.

The drain runs as the workflow farewell-drain-<name>. Before it starts anything it
checks every node (the same check as --dry-run): unknown nodes or nothing chosen refuse
it (exit 2). It stops starting shutdowns after --failure-threshold ones that did not end
graceful or degraded, when aborted, or at the min-alive floor, and always lets those
running finish. Steer it with farewell drain pause|resume|abort|skip|set-max-parallel.

Exit codes with --wait: 0 every node out, graceful or degraded; 3 it ended, but not
every node is out cleanly (forced, held back by the floor, skipped); 4 stopped by the
failure threshold, aborted, or a shutdown failed; 2 bad input or refused; 1 runtime.`,
		Example: `  farewell drain --all --max-parallel 2 --min-alive 3 --dry-run
  farewell drain --all --max-parallel 2 --min-alive 3 --wait
  farewell drain node-1 node-2 --name rack-7 --reason "kernel upgrade" --wait -o json
  farewell drain --tag rack=r7 --pause-between 30s --failure-threshold 2`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			sel := activities.Selector{Nodes: args, All: all, Glob: glob}
			for _, kv := range tags {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return usageError("--tag %q: want KEY=VALUE, like rack=r1", kv)
				}
				if sel.Tags == nil {
					sel.Tags = map[string]string{}
				}
				sel.Tags[k] = v
			}
			if name == "" {
				name = time.Now().UTC().Format("20060102-150405") // its ID: farewell-drain-20261206-150405
			}
			req := workflows.DrainRequest{
				Name: name, Selector: sel, Limits: plan.Limits{MaxParallel: maxParallel, MinAlive: minAlive},
				FailureThreshold: fail, PauseBetween: plan.Duration(pause), GateTimeout: plan.Duration(gateTimeout),
				Reason: reason, RequestedBy: requester(),
			}
			switch {
			case maxParallel < 1:
				return usageError("--max-parallel %d: want at least 1", maxParallel)
			case pause < 0 || gateTimeout < 0:
				return usageError("--pause-between and --gate-timeout are not negative")
			}
			if err := req.Validate(); err != nil {
				return usageError("%v", err)
			}
			ctx := cmd.Context()
			c, err := a.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			st := a.starter(c)
			out := cmd.OutOrStdout()
			if dryRun {
				return a.dryRun(ctx, st, req, output, out)
			}
			run, err := st.Drain(ctx, req)
			switch {
			case err != nil:
				return err
			}
			pctx, cancel := context.WithTimeout(ctx, preflightWait)
			err = st.WaitDrainStarted(pctx, run)
			cancel()
			var refused *starter.DrainRefusedError
			if errors.As(err, &refused) {
				if output == "json" {
					_ = writeJSON(out, refused.Plan)
				} else {
					printPlan(out, refused.Plan)
				}
				return &exitError{code: ExitUsage, err: err}
			}
			if err != nil {
				return err
			}
			if !wait {
				if output == "json" {
					return writeJSON(out, run)
				}
				fmt.Fprintf(out, "drain %s started: workflow %s run %s\nfollow it with: farewell drain status %s\n", run.Name, run.WorkflowID, run.RunID, run.Name)
				return nil
			}
			var progress func(workflows.DrainReport)
			if output == "text" {
				fmt.Fprintf(out, "drain %s started (workflow %s); Ctrl-C stops watching, not the drain\n", run.Name, run.WorkflowID)
				progress = newDrainPrinter(out).update
			}
			r, err := st.WaitDrain(ctx, run, progress)
			if err != nil {
				return err
			}
			if output == "json" {
				if err := writeJSON(out, r); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(out)
				printDrain(out, r)
			}
			if code := drainExitCode(r); code != ExitOK {
				return &exitError{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&all, "all", false, "every node of the cluster")
	f.StringVar(&glob, "glob", "", "the nodes whose name matches this pattern (like 'web-*')")
	f.StringArrayVar(&tags, "tag", nil, "the nodes with this metadata tag, KEY=VALUE (cluster.tags; repeatable, all must match)")
	f.StringVar(&name, "name", "", "the drain's name, in its workflow ID farewell-drain-<name> (default: the UTC time, 20261206-150405)")
	f.IntVar(&maxParallel, "max-parallel", 1, "shutdowns of this drain in flight at once")
	f.IntVar(&minAlive, "min-alive", 0, "never start a shutdown that would leave fewer nodes in service (0: the cluster's budget.min_alive only)")
	f.IntVar(&fail, "failure-threshold", 1, "stop starting shutdowns after this many did not end graceful or degraded (0: never)")
	f.DurationVar(&pause, "pause-between", 0, "least time between two starts")
	f.DurationVar(&gateTimeout, "gate-timeout", workflows.DefaultGateTimeout, "how long the health gate may wait before the drain pauses")
	f.StringVar(&reason, "reason", "", "why (recorded in every node's shutdown)")
	f.BoolVar(&dryRun, "dry-run", false, "say what would block each node, the waves and the worst case; change nothing")
	f.BoolVar(&wait, "wait", false, "follow the drain to its end, showing its progress")
	f.StringVarP(&output, "output", "o", "text", "text or json")
	cmd.AddCommand(a.drainStatusCommand(), a.drainSteerCommand("pause", workflows.UpdateDrainPause,
		"Start no new shutdown until resumed; those running go on"),
		a.drainSteerCommand("resume", workflows.UpdateDrainResume, "Start shutdowns again (the health gate looks again)"),
		a.drainSteerCommand("abort", workflows.UpdateDrainAbort, "Start no new shutdown; those running finish, then the drain ends"),
		a.drainSkipCommand(), a.drainMaxParallelCommand())
	return cmd
}

// dryRun prints the pre-flight; a fatal blocker exits 2.
func (a *app) dryRun(ctx context.Context, st *starter.Starter, req workflows.DrainRequest, output string, out io.Writer) error {
	p, err := st.DrainPreflight(ctx, req)
	if err != nil {
		return err
	}
	if output == "json" {
		if err := writeJSON(out, p); err != nil {
			return err
		}
	} else {
		printPlan(out, *p)
	}
	if fatal := p.Fatal(); len(fatal) > 0 {
		return &exitError{code: ExitUsage, err: fmt.Errorf("the drain would be refused: %s", strings.Join(fatal, "; "))}
	}
	return nil
}

func printPlan(w io.Writer, p activities.DrainPlan) {
	fmt.Fprintf(w, "drain of %s: %s in service, %s in flight; limits: drain %s; cluster %s\n",
		safe(p.Selector.String()), count(p.Serving, "node"), count(p.InFlight, "shutdown"), limitsText(p.Limits), p.Cluster)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tBLOCKER\tNOTE")
	for _, c := range p.Nodes {
		blocker := orDash(c.Blocker)
		if c.Fatal {
			blocker = "FATAL: " + blocker
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", safe(c.Node), orDash(c.State), blocker, orDash(safe(c.Note)))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "takes %s in %s; worst case %s (each shutdown at most %s)\n", count(p.Takes, "node"), count(p.Waves, "wave"), p.WorstCase, p.Budget)
}

func limitsText(l plan.Limits) string {
	return fmt.Sprintf("max-parallel %d, min-alive %d", l.MaxParallel, l.MinAlive)
}

// drainExitCode maps a drain's end to the exit code of `drain --wait`.
func drainExitCode(r *workflows.DrainReport) int {
	if r.Outcome == workflows.DrainAborted || r.Outcome == workflows.DrainStopped && r.Stopped != "" {
		return ExitDrainStopped
	}
	code := ExitOK
	for _, n := range r.Nodes {
		switch {
		case n.State == workflows.DrainDone && (n.Outcome == plan.Failed || n.Outcome == ""):
			return ExitDrainStopped
		case n.State == workflows.DrainDone && n.Outcome != plan.Graceful && n.Outcome != plan.Degraded,
			n.State == workflows.DrainBlocked,
			n.State == workflows.DrainSkipped && !strings.HasPrefix(n.Note, activities.BlockNotAlive):
			code = ExitDrainPartial
		}
	}
	return code
}

// drainPrinter prints one line per change of a drain's nodes and of what it waits for.
type drainPrinter struct {
	w       io.Writer
	seen    map[string]string
	waiting string
	paused  string
}

func newDrainPrinter(w io.Writer) *drainPrinter {
	return &drainPrinter{w: w, seen: map[string]string{}}
}

func (p *drainPrinter) update(r workflows.DrainReport) {
	for _, n := range r.Nodes {
		key := string(n.State) + "/" + string(n.Outcome)
		if p.seen[n.Node] == key || n.State == workflows.DrainPending {
			continue
		}
		p.seen[n.Node] = key
		line := fmt.Sprintf("%s %s", safe(n.Node), n.State)
		switch n.State {
		case workflows.DrainDone:
			line = fmt.Sprintf("%s %s in %s", safe(n.Node), strings.ToUpper(orDash(string(n.Outcome))), n.Took)
		case workflows.DrainRunning, workflows.DrainJoined:
			line += fmt.Sprintf(" (%d in flight)", len(r.InFlight()))
		}
		if n.Note != "" && n.State != workflows.DrainRunning {
			line += ": " + safe(n.Note)
		}
		fmt.Fprintln(p.w, line)
	}
	if r.Paused != p.paused {
		p.paused = r.Paused
		if r.Paused != "" {
			fmt.Fprintf(p.w, "paused: %s (farewell drain resume %s)\n", safe(r.Paused), r.Name)
		}
	}
	if r.Waiting != p.waiting {
		p.waiting = r.Waiting
		if r.Waiting != "" && r.Paused == "" {
			fmt.Fprintf(p.w, "waiting: %s\n", safe(r.Waiting))
		}
	}
}

// printDrain prints a drain's report: its outcome and every node.
func printDrain(w io.Writer, r *workflows.DrainReport) {
	state := strings.ToUpper(orDash(string(r.Outcome)))
	if r.Outcome == "" {
		state = strings.ToUpper(r.Phase)
	}
	fmt.Fprintf(w, "drain %s: %s in %s  (workflow %s)\n", safe(r.Name), state, r.Total, r.WorkflowID)
	if r.Why != "" {
		fmt.Fprintf(w, "  %s\n", safe(r.Why))
	}
	for _, line := range []struct{ k, v string }{{"paused", r.Paused}, {"aborted", r.Aborted}, {"stopped", r.Stopped}, {"waiting", r.Waiting}} {
		if line.v != "" && r.Outcome == "" {
			fmt.Fprintf(w, "  %s: %s\n", line.k, safe(line.v))
		}
	}
	c := r.Count()
	fmt.Fprintf(w, "  %s: %d done, %d running, %d joined, %d pending, %d skipped, %d blocked; %s; max-parallel %d, min-alive %d; cluster %s\n",
		count(len(r.Nodes), "node"), c[workflows.DrainDone], c[workflows.DrainRunning], c[workflows.DrainJoined], c[workflows.DrainPending],
		c[workflows.DrainSkipped], c[workflows.DrainBlocked], count(r.Failures, "failure"), r.MaxParallel, r.MinAlive, r.Cluster)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tSTATE\tOUTCOME\tDURATION\tNOTE")
	for _, n := range r.Nodes {
		took := "-"
		if n.Took > 0 {
			took = n.Took.String()
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", safe(n.Node), n.State, orDash(string(n.Outcome)), took, orDash(safe(n.Note)))
	}
	_ = tw.Flush()
}

func (a *app) drainStatusCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show a drain: every node's state and outcome, what it waits for",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if err := plan.ValidateNodeName(args[0]); err != nil {
				return usageError("NAME: %v", err)
			}
			c, err := a.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := a.starter(c).DrainStatus(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				return writeJSON(out, st)
			}
			fmt.Fprintf(out, "%s: %s (workflow %s, run %s)\n", args[0], st.Status, st.WorkflowID, st.RunID)
			if st.Report != nil {
				printDrain(out, st.Report)
			}
			if st.Error != "" {
				fmt.Fprintln(out, safe(st.Error))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func (a *app) drainSteerCommand(use, update, short string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   use + " NAME",
		Short: short,
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := plan.ValidateText(reason); err != nil {
				return usageError("--reason: %v", err)
			}
			return a.steerDrain(cmd, args[0], update, workflows.DrainControl{Reason: reason}, use+"d")
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (shown in the drain's progress)")
	return cmd
}

func (a *app) drainSkipCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "skip NAME NODE",
		Short: "Leave a node the drain has not started yet alone",
		Args:  exactArgs(2, "NAME", "NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := plan.ValidateText(reason); err != nil {
				return usageError("--reason: %v", err)
			}
			return a.steerDrain(cmd, args[0], workflows.UpdateDrainSkipNode, workflows.SkipNodeRequest{Node: args[1], Reason: reason},
				"told to skip "+safe(args[1]))
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (shown in the drain's progress)")
	return cmd
}

func (a *app) drainMaxParallelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "set-max-parallel NAME K",
		Short: "Change how many of the drain's shutdowns may be in flight at once",
		Args:  exactArgs(2, "NAME", "K"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var k int
			if _, err := fmt.Sscan(args[1], &k); err != nil || k < 1 {
				return usageError("K: %q is not a whole number of at least 1", args[1])
			}
			return a.steerDrain(cmd, args[0], workflows.UpdateDrainSetMaxParallel, workflows.SetMaxParallelRequest{MaxParallel: k},
				fmt.Sprintf("set to max-parallel %d", k))
		},
	}
}

func (a *app) steerDrain(cmd *cobra.Command, name, update string, arg any, done string) error {
	if err := plan.ValidateNodeName(name); err != nil {
		return usageError("NAME: %v", err)
	}
	c, err := a.dial(cmd.Context())
	if err != nil {
		return err
	}
	defer c.Close()
	err = a.starter(c).SteerDrain(cmd.Context(), name, update, arg)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "drain %s %s\n", name, done)
	return nil
}

func (a *app) budgetCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "budget",
		Short: "Show the cluster's disruption budget: its limits, the leases in flight and the queue",
		Long: `Show the cluster's disruption budget (the workflow farewell-budget): its limits, from
budget.max_parallel and budget.min_alive of the orchestrator, and one lease per shutdown
in flight, whoever started it; then the shutdowns waiting for a lease, in the order they
will be granted. A node's own SIGTERM is never held back by the budget but holds a lease
like any other.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := a.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			view, running, err := a.starter(c).Budget(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				if view.Leases == nil {
					view.Leases = []workflows.Lease{}
				}
				return writeJSON(out, view)
			}
			return writeBudget(out, view, running)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// writeBudget writes the budget as text: its limits, the leases in flight, and the
// requests waiting, in the order they will be granted.
func writeBudget(out io.Writer, view workflows.BudgetView, running bool) error {
	if !running {
		_, err := fmt.Fprintln(out, "no shutdown has asked the budget yet: no lease in flight (its limits are the orchestrator's budget.* settings)")
		return err
	}
	fmt.Fprintf(out, "budget: %s; %d in flight, %d waiting\n", view.Limits, len(view.Leases), view.Waiting)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	if len(view.Leases) > 0 {
		fmt.Fprintln(tw, "NODE\tDRAIN\tSINCE\tRUN\tNOTE")
		for _, l := range view.Leases {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", safe(l.Node), orDash(safe(l.Drain)), l.Since.Local().Format(time.TimeOnly),
				orDash(safe(l.Run)), orDash(safe(l.Over)))
		}
	}
	if len(view.Queue) > 0 {
		fmt.Fprintln(tw, "\nQUEUE\tNODE\tDRAIN\tWAITING SINCE\tRUN")
		for i, w := range view.Queue {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, safe(w.Node), orDash(safe(w.Drain)), w.Since.Local().Format(time.TimeOnly), orDash(safe(w.Run)))
		}
	}
	return tw.Flush()
}
