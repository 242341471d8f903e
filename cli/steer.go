package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

func (a *app) signalCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "signal NODE (force-now | skip-step STEP | extend-timeout STEP DURATION)",
		Short: "Steer a running shutdown",
		Long: `Steer a node's running shutdown (as Temporal updates, checked by the workflow):

  force-now                    skip the remaining graceful steps and force-evict now
  skip-step STEP               skip a step that has not started
  extend-timeout STEP DURATION raise the StartToClose of a step that has not started

A refused update (unknown step, step already started, shutdown finished) exits 2 and
says why.`,
		Args: cobra.RangeArgs(2, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			node, what := args[0], args[1]
			if err := plan.ValidateText(reason); err != nil {
				return usageError("--reason: %v", err)
			}
			var update string
			var arg any
			switch {
			case what == "force-now" && len(args) == 2:
				update, arg = workflows.UpdateForceNow, workflows.ForceNowRequest{Reason: reason}
			case what == "skip-step" && len(args) == 3:
				update, arg = workflows.UpdateSkipStep, workflows.SkipStepRequest{Step: args[2], Reason: reason}
			case what == "extend-timeout" && len(args) == 4:
				d, err := time.ParseDuration(args[3])
				if err != nil || d <= 0 {
					return usageError("extend-timeout: %q is not a positive duration (like 30s)", args[3])
				}
				update, arg = workflows.UpdateExtendTimeout, workflows.ExtendTimeoutRequest{Step: args[2], StartToClose: plan.Duration(d)}
			default:
				return usageError("signal NODE force-now | skip-step STEP | extend-timeout STEP DURATION")
			}
			c, err := a.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			err = a.starter(c).Steer(cmd.Context(), node, update, arg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s applied to the shutdown of %s\n", what, node)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the report)")
	return cmd
}

func (a *app) cancelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel NODE",
		Short: "Cancel a running shutdown: roll back before deregister, refused after",
		Long: `Cancel a node's running shutdown. Before its deregister step the workflow rolls the
node back into service (state alive, heartbeat restarted; the report says aborted). Once
the node left the cluster it cannot be put back: the cancel is refused and the shutdown
runs to its end.`,
		Args: exactArgs(1, "NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			run, err := a.starter(c).Cancel(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cancel requested for %s (run %s); see farewell status %s\n", run.WorkflowID, run.RunID, args[0])
			return nil
		},
	}
}
