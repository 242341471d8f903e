package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/farewell-project/farewell/buildinfo"
)

// builtOn are the modules `version` names beside Farewell's own version.
var builtOn = []struct{ name, path string }{
	{"temporal sdk", "go.temporal.io/sdk"},
	{"server", "go.temporal.io/server"},
	{"memberlist", "github.com/hashicorp/memberlist"},
}

func (a *app) versionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print Farewell's version, the commit it was built from and what it was built with",
		Long: `Print the version of this binary: its module version (a release's tag, or a
pseudo-version naming the commit, +dirty when the tree had uncommitted changes), the
commit, whether the tree was modified, the Go toolchain and platform, and the versions of
the Temporal SDK and server and of memberlist it was built with. "dev (no commit
stamped)" means the binary was built without VCS stamping (go build -buildvcs=false,
or outside a checkout): build it with make build or make release.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{skipConfig: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			info := buildinfo.Read()
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", cmd.Root().Name(), info)
			for _, m := range builtOn {
				if v := info.Dep(m.path); v != "unknown" {
					fmt.Fprintf(cmd.OutOrStdout(), "  %-12s %s\n", m.name, v)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
