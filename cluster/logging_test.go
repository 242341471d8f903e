package cluster

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// memberlist's log lines reach slog at their own level, but for what is routine to a
// cluster manager (its INFO) and the sends that race with its own shutdown: debug.
func TestMemberlistLogLevels(t *testing.T) {
	for _, c := range []struct {
		line  string
		level string
		msg   string
	}{
		{"2026/12/07 [WARN] memberlist: Was able to connect to p over TCP but UDP probes failed\n", "WARN", "Was able to connect"},
		{"[ERR] memberlist: Failed to send ping: boom", "ERROR", "Failed to send ping: boom"},
		{"[ERROR] memberlist: push/pull failed", "ERROR", "push/pull failed"},
		{"[DEBUG] memberlist: Stream connection", "DEBUG", "Stream connection"},
		{"[INFO] memberlist: Marking p as failed", "DEBUG", "Marking p as failed"},
		{"no level at all", "DEBUG", "no level at all"},
		{"[ERR] memberlist: Failed to send: " + errTransportShutdown.Error(), "DEBUG", "Failed to send"},
		{"[ERR] memberlist: read: use of closed network connection", "DEBUG", "use of closed network connection"},
	} {
		var buf bytes.Buffer
		w := newMemberlistLogWriter(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
		if n, err := w.Write([]byte(c.line)); n != len(c.line) || err != nil {
			t.Errorf("%q: wrote %d, %v", c.line, n, err)
		}
		got := buf.String()
		if !strings.Contains(got, "level="+c.level) || !strings.Contains(got, c.msg) || strings.Contains(got, "memberlist: ") || strings.Contains(got, "[") {
			t.Errorf("%q logged as %q, want level %s and %q without its prefix", c.line, got, c.level, c.msg)
		}
	}
}
