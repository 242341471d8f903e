package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/farewell-project/farewell/workflows"
)

func TestBedGracefulShutdown(t *testing.T) {
	b := newProdBed(t, bedOptions{nodes: 4})
	n := b.node("node-3")
	code, stdout, log := b.ops("shutdown", "node-3", "--wait", "-o", "json")
	var r workflows.ShutdownReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("shutdown: exit %d: %v\n%s", code, err, log)
	}
	t.Logf("outcome %s in %s", r.Outcome, r.Total)
	ans := b.checker.ask(checkerCommand{Op: "verdict", Settle: time.Minute,
		Shutdowns: []judged{{Node: "node-3", Instance: n.instance, PID: n.p.PID(), Want: "out", RunID: r.RunID}}})
	if len(ans.Violations) > 0 {
		t.Fatalf("violations: %v", ans.Violations)
	}
	t.Logf("checker: %+v", ans)
}
