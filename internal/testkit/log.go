// Package testkit holds what Farewell's tests share: a logger that writes to t.Log,
// and the one way to wait in a test — polling a condition until a deadline.
package testkit

import (
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// Logger returns a logger writing to t.Log at info level until the test ends; lines
// logged later (by goroutines still winding down) are dropped rather than panicking.
func Logger(t testing.TB) *slog.Logger {
	w := &writer{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type writer struct {
	t    testing.TB
	done atomic.Bool
}

func (w *writer) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
