package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X github.com/farewell-project/farewell/cli.Version=…".
var Version = ""

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:         "version",
		Short:       "Print Farewell's version and the versions it was built with",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{skipConfig: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, deps := Version, map[string]string{}
			if info, ok := debug.ReadBuildInfo(); ok {
				if v == "" {
					v = info.Main.Version
				}
				for _, d := range info.Deps {
					deps[d.Path] = d.Version
				}
			}
			if v == "" || v == "(devel)" {
				v = "dev"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "farewell %s (%s, temporal sdk %s, server %s, memberlist %s)\n",
				v, runtime.Version(), orUnknown(deps["go.temporal.io/sdk"]),
				orUnknown(deps["go.temporal.io/server"]), orUnknown(deps["github.com/hashicorp/memberlist"]))
			return nil
		},
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
