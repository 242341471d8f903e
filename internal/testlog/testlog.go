// Package testlog sends the logs of the code under test to t.Log, so that they show
// with the test that produced them (on failure, or with -v).
package testlog

import (
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// New returns a logger writing to t.Log at info level until the test ends; lines
// logged later (by goroutines still winding down) are dropped rather than panicking.
func New(t testing.TB) *slog.Logger {
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
