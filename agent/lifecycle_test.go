package agent

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/farewell-project/farewell/internal/testkit"
	"github.com/farewell-project/farewell/plan"
)

// A node that left the cluster while nobody stops its services (its orchestrator is
// gone) stops them itself (once the stop-services budget has passed): left but serving
// is a zombie too. A node that left with nothing serving ends at once.
func TestALeftNodeStopsWhatStillServes(t *testing.T) {
	start := func(t *testing.T, stopServices time.Duration) *Agent {
		cfg := offlineConfig("host-5")
		st := cfg.Shutdown.Steps[plan.StopServices]
		st.StartToClose, st.MaxAttempts = stopServices, 1
		cfg.Shutdown.Steps[plan.StopServices] = st
		a, err := Start(context.Background(), Options{Config: cfg, Offline: true, Logger: testkit.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Close)
		return a
	}
	t.Run("serving", func(t *testing.T) {
		a := start(t, time.Second)
		var stopped atomic.Int32
		a.Member().Services().Register("api", func(context.Context) error { stopped.Add(1); return nil }, time.Second)
		if err := a.Member().Leave(time.Second); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 20*time.Second, "the left node to stop its service and end", func() bool {
			select {
			case <-a.Done():
				return stopped.Load() == 1
			default:
				return false
			}
		})
		if e := a.Exit(); e.Outcome != plan.Graceful {
			t.Errorf("exit %+v", e)
		}
	})
	t.Run("nothing serving", func(t *testing.T) {
		// The budget is far longer than the wait: a node with nothing to stop does not
		// sit it out.
		a := start(t, 10*time.Minute)
		if err := a.Member().Leave(time.Second); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 20*time.Second, "the left node to end", func() bool {
			select {
			case <-a.Done():
				return true
			default:
				return false
			}
		})
	})
}

// An agent started with no logger logs to slog's default one.
func TestAnAgentWithNoLoggerStarts(t *testing.T) {
	a, err := Start(context.Background(), Options{Config: offlineConfig("host-6"), Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.log == nil {
		t.Error("no logger")
	}
}
