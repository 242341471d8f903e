package cli

import (
	"io"
	"log/slog"

	"github.com/farewell-project/farewell/config"
)

// newLogger builds the process's slog logger from log.level and log.format. Everything
// logs through it: Farewell, the Temporal SDK and the embedded server.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
