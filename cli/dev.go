package cli

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/devserver"
	"github.com/farewell-project/farewell/workflows"
)

func (a *app) devCommand() *cobra.Command {
	def := config.DefaultConfig().Dev
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the embedded Temporal server and UI in this process",
		Long: `Run everything Farewell needs on this machine in one process: a Temporal server
persisting to a SQLite file (it survives restarts; --db "" keeps it in memory) and the
Temporal UI. Nothing is downloaded. Prints one "ready" line with the addresses once
serving, then runs until SIGINT or SIGTERM and stops cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c := a.cfg.Dev
			srv, err := devserver.Start(ctx, devserver.Options{
				Port:             c.Port,
				UIPort:           c.UIPort,
				DBPath:           c.DB,
				InMemory:         c.DB == "",
				SearchAttributes: workflows.SearchAttributes(),
				Logger:           a.logger.With("component", "temporal-server"),
				LogLevel:         serverLogLevel(a.cfg.Log.Level),
			})
			if err != nil {
				return err
			}
			defer srv.Stop()
			db := srv.DBPath()
			if db == "" {
				db = "memory"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ready ui=%s grpc=%s namespace=%s db=%s\n", srv.UIURL(), srv.Address(), srv.Namespace(), db)
			<-ctx.Done()
			a.logger.Info("stopping embedded Temporal server")
			return nil
		},
	}
	cmd.Flags().Int("port", def.Port, "gRPC port of the embedded Temporal server (dev.port)")
	cmd.Flags().Int("ui-port", def.UIPort, "port of the Temporal UI (dev.ui_port)")
	cmd.Flags().String("db", def.DB, `SQLite file, created with its folder; "" keeps everything in memory (dev.db)`)
	a.bind(cmd, "dev.port", "port")
	a.bind(cmd, "dev.ui_port", "ui-port")
	a.bind(cmd, "dev.db", "db")
	return cmd
}

// serverLogLevel keeps the embedded server at warn unless Farewell itself logs less.
func serverLogLevel(level string) slog.Level {
	if level == "error" {
		return slog.LevelError
	}
	return slog.LevelWarn
}
