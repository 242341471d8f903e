package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/plan"
)

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show or check the configuration",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration as YAML, secrets redacted",
		Long: `Print the configuration Farewell would run with — defaults, file, environment and
flags merged — in the format of farewell.yaml. API keys and gossip keys are redacted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := a.cfg.Redacted().YAML()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check a configuration file (default: the one Farewell would read)",
		Long: `Check a configuration file together with the environment: unknown keys (with the
nearest known key), unparsable or non-positive durations, unknown steps or policies, bad
host:port values, bad gossip keys. Exits 0 when valid, 2 with every problem listed.`,
		Args:        cobra.MaximumNArgs(1),
		Annotations: map[string]string{skipConfig: "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			file := a.cfgFile
			if len(args) == 1 {
				file = args[0]
			}
			_, used, err := config.Load(config.Source{File: file, SearchDirs: a.opts.ConfigDirs, Env: a.opts.Env})
			if used == "" {
				used = "environment"
			}
			if errors.Is(err, config.ErrInvalid) {
				for _, e := range leafErrors(err) {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: invalid: %v\n", used, e)
				}
				return &exitError{code: ExitUsage}
			}
			if err != nil {
				return err
			}
			if used == "environment" {
				used = "defaults (no " + config.FileName + " found)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid\n", used)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "grace-period",
		Short: "Print the grace period a node's process manager should allow (from the plan's budget)",
		Long: `Print how long a process manager (systemd's TimeoutStopSec, Kubernetes'
terminationGracePeriodSeconds) should wait between SIGTERM and SIGKILL for a node that
runs the configured plan: the plan's whole budget — every step using all its attempts, the
convergence waits, a forced eviction — and 5s for the process to exit, in whole seconds.
A host with steps of its own prints its own figure (examples/hostapp --grace-period).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := a.cfg.Shutdown.MustPlan()
			g := p.GracePeriod()
			fmt.Fprintf(cmd.OutOrStdout(), "%d\n", int(g.Seconds()))
			fmt.Fprintf(cmd.ErrOrStderr(), "grace period %s: the plan's budget %s (steps %s) and %s to exit\n", g, p.Budget(), strings.Join(p.Names(), ", "), plan.GracePeriodSlack)
			return nil
		},
	})
	return cmd
}

// leafErrors flattens joined errors into the single problems they hold.
func leafErrors(err error) []error {
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		var out []error
		for _, x := range e.Unwrap() {
			out = append(out, leafErrors(x)...)
		}
		return out
	case *config.FieldError:
		return []error{e}
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			if _, joined := inner.(interface{ Unwrap() []error }); joined {
				return leafErrors(inner)
			}
		}
	}
	return []error{err}
}
