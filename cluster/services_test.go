package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestServicesStopInReverseOrderDespiteFailures(t *testing.T) {
	var (
		s       Services
		mu      sync.Mutex
		order   []string
		release = make(chan struct{})
		fail    = true
	)
	record := func(name string) { mu.Lock(); order = append(order, name); mu.Unlock() }
	s.Register("db", func(context.Context) error { record("db"); return nil }, time.Second)
	s.Register("cache", func(context.Context) error {
		record("cache")
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("flush failed")
		}
		return nil
	}, time.Second)
	s.Register("worker", func(context.Context) error {
		record("worker")
		<-release // ignores its context: a stop that hangs
		return nil
	}, 100*time.Millisecond)
	s.Register("http", func(context.Context) error { record("http"); return nil }, time.Second)

	var progressed []string
	results := s.StopAll(context.Background(), func(r ServiceResult) { progressed = append(progressed, r.Name) })
	want := []struct {
		name   string
		status ServiceStatus
	}{{"http", ServiceStopped}, {"worker", ServiceTimedOut}, {"cache", ServiceFailed}, {"db", ServiceStopped}}
	if len(results) != len(want) {
		t.Fatalf("got %d results, want %d", len(results), len(want))
	}
	for i, w := range want {
		if results[i].Name != w.name || results[i].Status != w.status {
			t.Errorf("result %d = %s %s, want %s %s (%s)", i, results[i].Name, results[i].Status, w.name, w.status, results[i].Error)
		}
	}
	if len(progressed) != 4 || progressed[0] != "http" {
		t.Errorf("progress saw %v", progressed)
	}
	if err := Failed(results); err == nil {
		t.Error("Failed reports nothing although two services did not stop")
	}
	if got := s.Running(); len(got) != 2 || got[0] != "cache" || got[1] != "worker" {
		t.Errorf("still running %v, want cache and worker", got)
	}

	// A retry resumes: stopped services are not stopped again, the hung stop is awaited
	// rather than started twice (it may have ended by the time the retry looks: then it
	// is already stopped), the failed one is tried again.
	mu.Lock()
	fail = false
	mu.Unlock()
	close(release)
	results = s.StopAll(context.Background(), nil)
	for _, r := range results {
		if r.Status != ServiceStopped {
			t.Errorf("retry: %s %s: %s", r.Name, r.Status, r.Error)
		}
		if r.Name != "worker" && (r.Name == "http" || r.Name == "db") != r.AlreadyStopped {
			t.Errorf("retry: %s AlreadyStopped = %v", r.Name, r.AlreadyStopped)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	counts := map[string]int{}
	for _, n := range order {
		counts[n]++
	}
	if counts["http"] != 1 || counts["db"] != 1 || counts["worker"] != 1 || counts["cache"] != 2 {
		t.Errorf("stop calls %v, want http, db and worker once and cache twice", counts)
	}
}

func TestServicesHonourCancellation(t *testing.T) {
	var s Services
	s.Register("a", func(context.Context) error { return nil }, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := s.StopAll(ctx, nil)
	if len(r) != 1 || r[0].Status != ServiceFailed {
		t.Fatalf("cancelled stop: %+v", r)
	}
	if len(s.Running()) != 1 {
		t.Fatal("a cancelled call stopped a service")
	}
}

// Failed names each stop that did not succeed, and is nil when all did.
func TestFailedNamesWhatDidNotStop(t *testing.T) {
	ok := ServiceResult{Name: "db", Status: ServiceStopped}
	if err := Failed([]ServiceResult{ok, ok}); err != nil {
		t.Errorf("all stopped: %v", err)
	}
	err := Failed([]ServiceResult{ok, {Name: "api", Status: ServiceTimedOut, Error: "did not stop within 1s"}, {Name: "cache", Status: ServiceFailed, Error: "boom"}})
	if err == nil || !strings.Contains(err.Error(), "api timed_out: did not stop within 1s") || !strings.Contains(err.Error(), "cache failed: boom") || strings.Contains(err.Error(), "db") {
		t.Errorf("two did not stop: %v", err)
	}
}
