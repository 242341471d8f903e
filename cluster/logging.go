package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
)

// memberlistLogWriter turns memberlist's "[LEVEL] memberlist: message" lines into slog
// records at the matching level.
type memberlistLogWriter struct{ log *slog.Logger }

func newMemberlistLogWriter(l *slog.Logger) *memberlistLogWriter { return &memberlistLogWriter{log: l} }

func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(newMemberlistLogWriter(l), "", 0)
}

func (w *memberlistLogWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{
		"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError, "[ERROR]": slog.LevelError,
	} {
		if i := strings.Index(line, prefix); i >= 0 {
			level, line = l, strings.TrimSpace(line[i+len(prefix):])
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	// memberlist logs at INFO what is routine for a cluster manager, and as errors the
	// sends that race with its own shutdown; keep both at debug.
	if level == slog.LevelInfo || strings.Contains(line, errTransportShutdown.Error()) || strings.Contains(line, "use of closed network connection") {
		level = slog.LevelDebug
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
