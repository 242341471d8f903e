package workflows

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/farewell-project/farewell/plan"
)

// A report recorded before node_state_at_start and why existed reads with both.
func TestOlderReportReadsWithNewFields(t *testing.T) {
	old := `{"workflow_id":"farewell-shutdown-node-1","run_id":"r1","node":"node-1","outcome":"degraded","node_state":"alive",
	"steps":[{"name":"deregister","status":"timed_out","attempts":2}],"evicted":false,"terminated":false,"total_ms":1500}`
	var r ShutdownReport
	if err := json.Unmarshal([]byte(old), &r); err != nil {
		t.Fatal(err)
	}
	if r.NodeStateAtStart != "alive" || r.Total.String() != "1.5s" {
		t.Errorf("node state at start %q, total %s", r.NodeStateAtStart, r.Total)
	}
	if r.Why != "the node left without an eviction, though deregister timed out" {
		t.Errorf("why %q", r.Why)
	}
	// What a person reads first comes first in the JSON.
	b, _ := json.Marshal(r)
	if !strings.HasPrefix(string(b), `{"outcome":"degraded","why":"the node left`) {
		t.Errorf("the result starts %s", b[:min(len(b), 80)])
	}
}

// Why carries what the run concluded beyond its steps, so that it never contradicts it.
func TestWhySaysWhatTheRunConcluded(t *testing.T) {
	r := ShutdownReport{Outcome: "degraded", Error: "it left, but its termination did not run: its services may still serve"}
	if got := r.Explain(); got != "the node left without an eviction; it left, but its termination did not run: its services may still serve" {
		t.Errorf("why %q", got)
	}
	r = ShutdownReport{Outcome: "forced", Error: "the eviction was not confirmed by any other member"}
	if got := r.Explain(); !strings.HasSuffix(got, "; the eviction was not confirmed by any other member") {
		t.Errorf("why %q", got)
	}
	// Clients of earlier versions still find node_state.
	b, _ := json.Marshal(ShutdownReport{NodeStateAtStart: "alive", NodeState: "alive"})
	if !strings.Contains(string(b), `"node_state":"alive"`) || !strings.Contains(string(b), `"node_state_at_start":"alive"`) {
		t.Errorf("%s", b)
	}
}

// A report recorded before convergence_took reads its convergence_ms, and only when the
// newer field is not there.
func TestOlderReportReadsItsConvergenceInMilliseconds(t *testing.T) {
	var r ShutdownReport
	if err := json.Unmarshal([]byte(`{"node":"node-1","convergence_ms":1500}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.ConvergenceTook.String() != "1.5s" {
		t.Errorf("convergence_ms 1500 read as %s, want 1.5s", r.ConvergenceTook)
	}
	both, _ := json.Marshal(ShutdownReport{ConvergenceTook: plan.Millis(2 * time.Second)})
	both = append(both[:len(both)-1], []byte(`,"convergence_ms":1500}`)...)
	if err := json.Unmarshal(both, &r); err != nil {
		t.Fatal(err)
	}
	if r.ConvergenceTook.String() != "2s" {
		t.Errorf("with both fields: %s, want the newer one's 2s", r.ConvergenceTook)
	}
}
