package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	historypb "go.temporal.io/api/history/v1"

	"github.com/farewell-project/farewell/history"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/workflows"
)

// ExitNondeterministic is the exit code of a replay whose history the current code
// does not reproduce.
const ExitNondeterministic = 3

func (a *app) historyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Work with the histories of shutdowns",
	}
	var (
		runID string
		out   string
	)
	export := &cobra.Command{
		Use:   "export WORKFLOW_ID|NODE [--run-id R] -o FILE",
		Short: "Write a shutdown's full history as JSON",
		Long: `Write the full event history of a shutdown as JSON, in the same shape as
"temporal workflow show --output json", so that either tool's file works in the other.
A node name means its latest shutdown. -o - (or no -o) writes to standard output.`,
		Args: exactArgs(1, "WORKFLOW_ID|NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			h, err := history.Fetch(cmd.Context(), c, workflows.IDFor(args[0]), runID)
			if errors.Is(err, history.ErrNoSuchRun) {
				return &exitError{code: ExitUsage, err: err}
			}
			if err != nil {
				return err
			}
			b, err := history.Marshal(h)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			if err := os.WriteFile(out, b, 0o600); err != nil {
				return fmt.Errorf("write %s: %w", out, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d events to %s\n", len(h.GetEvents()), out)
			return nil
		},
	}
	export.Flags().StringVar(&runID, "run-id", "", "a run other than the latest")
	export.Flags().StringVarP(&out, "output-file", "o", "", "file to write (- for standard output)")
	cmd.AddCommand(export)
	return cmd
}

func (a *app) replayCommand() *cobra.Command {
	var (
		runID, file, output string
	)
	cmd := &cobra.Command{
		Use:   "replay (WORKFLOW_ID|NODE [--run-id R] | --file FILE)",
		Short: "Replay a shutdown's history against the current code and tell what happened",
		Long: `Replay a shutdown's history (from the server, or a file exported by "farewell history
export" or "temporal workflow show --output json") against the current workflow code with
the SDK replayer, and print what happened, reconstructed from the events: each step with
its status, attempts, duration and error, the force and convergence results, the outcome.

Exit codes: 0 the current code reproduces the history; 3 it does not (the output says
which event and what the code did instead — running shutdowns would break on such a
change: guard it with workflow.GetVersion); 2 a malformed file, a history of another
workflow type, or an unknown ID; 1 Temporal unreachable.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if (file == "") == (len(args) == 0) {
				return usageError("replay takes a WORKFLOW_ID or NODE, or --file FILE (one of them)")
			}
			h, err := a.loadHistory(cmd.Context(), args, runID, file)
			if err != nil {
				return err
			}
			// The replayer's own logs (a panic with its stack on nondeterminism) only at debug:
			// the outcome is explained below.
			var replayLog *slog.Logger
			if a.cfg.Log.Level == "debug" {
				replayLog = a.logger
			}
			j, err := history.Replay(h, history.ReplayOptions{Workflow: a.opts.ReplayWorkflow, Logger: replayLog})
			if errors.Is(err, history.ErrBadHistory) {
				return &exitError{code: ExitUsage, err: err}
			}
			var nd *history.NondeterminismError
			deterministic := err == nil
			if err != nil && !errors.As(err, &nd) {
				return err
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				res := struct {
					*history.Journal
					Deterministic  bool   `json:"deterministic"`
					Nondeterminism string `json:"nondeterminism,omitempty"`
				}{Journal: j, Deterministic: deterministic}
				if nd != nil {
					res.Nondeterminism = nd.Explanation
				}
				if err := writeJSON(w, res); err != nil {
					return err
				}
			} else {
				printJournal(w, j)
				if deterministic {
					fmt.Fprintln(w, "replay: the current code makes the same decisions (deterministic)")
				} else {
					fmt.Fprintf(w, "replay: %s\n", nd.Explanation)
				}
			}
			if nd != nil {
				return &exitError{code: ExitNondeterministic, err: nd}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&runID, "run-id", "", "a run other than the latest")
	cmd.Flags().StringVarP(&file, "file", "f", "", "replay a history file instead of asking the server")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// loadHistory reads a history from a file, or from the server by ID or node name.
func (a *app) loadHistory(ctx context.Context, args []string, runID, file string) (*historypb.History, error) {
	if file != "" {
		var r io.Reader
		if file == "-" {
			r = a.opts.Stdin
		} else {
			f, err := os.Open(file)
			if err != nil {
				return nil, &exitError{code: ExitUsage, err: fmt.Errorf("history file: %w", err)}
			}
			defer f.Close()
			r = f
		}
		h, err := history.Parse(r)
		if err != nil {
			return nil, &exitError{code: ExitUsage, err: fmt.Errorf("%s: %w", file, err)}
		}
		return h, nil
	}
	c, err := a.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	h, err := history.Fetch(ctx, c, workflows.IDFor(args[0]), runID)
	if errors.Is(err, history.ErrNoSuchRun) {
		return nil, &exitError{code: ExitUsage, err: err}
	}
	return h, err
}

func printJournal(w io.Writer, j *history.Journal) {
	fmt.Fprintf(w, "%s: %s", j.Node, j.Status)
	if j.Outcome != "" {
		fmt.Fprintf(w, ", outcome %s", strings.ToUpper(string(j.Outcome)))
	}
	fmt.Fprintf(w, "  (workflow %s, run %s, %d events)\n", j.WorkflowID, j.RunID, j.Events)
	if j.RequestedBy != "" || j.Reason != "" {
		fmt.Fprintf(w, "  %s\n", requestLine(j.RequestedBy, j.Reason))
	}
	if j.NodeState != "" {
		fmt.Fprintf(w, "  lookup: %s was %s\n", j.Node, j.NodeState)
	}
	for _, s := range j.Steps {
		line := fmt.Sprintf("  %-20s %-9s", s.Name, words(s.Status))
		if s.Status != plan.StepSkipped {
			line += fmt.Sprintf(" %s %8s", attempts(s.Attempts), s.Duration)
		}
		if s.Error != "" {
			line += "  " + safe(s.Error)
		}
		if s.Note != "" {
			line += "  [" + safe(s.Note) + "]"
		}
		fmt.Fprintln(w, line)
	}
	if j.Evicted || j.EvictError != "" {
		fmt.Fprintf(w, "  force: evicted %v, terminated %v", j.Evicted, j.Terminated)
		if j.EvictError != "" {
			fmt.Fprintf(w, " (eviction failed: %s)", j.EvictError)
		}
		fmt.Fprintln(w)
	}
	if j.RolledBack {
		fmt.Fprintln(w, "  rolled back: the node was put back in service")
	}
	for i, c := range j.Convergence {
		fmt.Fprintf(w, "  convergence check %d: converged %v after %s", i+1, c.Converged, c.Took)
		if len(c.Pending) > 0 {
			fmt.Fprintf(w, ", pending %s", strings.Join(c.Pending, ", "))
		}
		if c.Error != "" {
			fmt.Fprintf(w, " (%s)", c.Error)
		}
		fmt.Fprintln(w)
	}
	if j.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", safe(j.Error))
	}
}

func (a *app) retryCommand() *cobra.Command {
	var (
		wait   bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "retry WORKFLOW_ID|NODE [--wait]",
		Short: "Run a node's failed shutdown again, only what did not succeed",
		Long: `Run a shutdown again whose outcome was degraded, forced, failed or aborted, or whose
run failed, timed out or was terminated: a new run of the workflow that skips the steps
that succeeded (reported "succeeded in an earlier run"), looks the node up afresh, and
runs the rest; a step that finds its work already done reports succeeded and says so.
An aborted shutdown was rolled back, so every step runs again. A graceful shutdown is
refused (exit 2); a running one is joined. With --wait, exit codes are those of
"farewell shutdown --wait".`,
		Args: exactArgs(1, "WORKFLOW_ID|NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := a.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			st := a.starter(c)
			run, plan, err := st.Retry(ctx, args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if !wait {
				if output == "json" {
					return writeJSON(w, struct {
						starter.Run
						Retry starter.RetryPlan `json:"retry"`
					}{run, plan})
				}
				fmt.Fprintf(w, "retrying %s (%s): workflow %s run %s", plan.Of.WorkflowID, plan.Why, run.WorkflowID, run.RunID)
				if len(plan.Skip) > 0 {
					fmt.Fprintf(w, "; skipping %s", strings.Join(plan.Skip, ", "))
				}
				fmt.Fprintln(w)
				return nil
			}
			if output == "text" {
				fmt.Fprintf(w, "retrying run %s (%s)\n", plan.Of.RunID, plan.Why)
			}
			_, err = waitAndReport(ctx, st, run, output, w, false)
			return err
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the new run to end, showing its progress")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
