package workflows

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
)

// What a person reads of a shutdown — its Current Details, its memo lines, its summary
// and its start details — says every field that is set, and nothing of one that is not.
func TestAReportReadsAsItShould(t *testing.T) {
	full := fullReport()
	want := `**Shutdown of node-1** — rack move (requested by ops@host)

**Waiting for the budget**: 2 in flight

**Budget**: waited 3s for the budget

| # | step | status | attempts | duration | note |
|---|---|---|---|---|---|
| 1/3 | set-gracefully-left | ✓ succeeded | 1 | 12ms | state was already leaving |
| 2/3 | stop-heartbeat | – skipped | 0 | 0s |  |
| 3/3 | deregister | ✗ failed | 3 | 2s | leave timed out |

**Forced** because deregister failed: evicted by orch-1, its process terminated

**Convergence**: pending after 5s (pending: node-2, node-3)

**Outcome: forced** in 9s — slow (slowest step: deregister)

**Why**: forced out because deregister failed: evicted by orch-1, its process terminated

The node was alive when the shutdown began.
`
	if got := full.Markdown(plan.Plan{}); got != want {
		t.Errorf("details:\n%s\nwant:\n%s", got, want)
	}
	if got := full.Markdown(plan.Default()); !strings.HasPrefix(got, want) || !strings.Contains(got, "\n**Plan**\n\n") {
		t.Errorf("details with the plan:\n%s", got)
	}
	lines := []string{"requested by ops@host: rack move", "1/3 set-gracefully-left: succeeded, 1 attempt, 12ms [state was already leaving]",
		"2/3 stop-heartbeat: skipped", "3/3 deregister: failed, 3 attempts, 2s — leave timed out",
		"forced because deregister failed: evicted by orch-1, its process terminated", "outcome: forced in 9s, convergence pending",
		"why: forced out because deregister failed: evicted by orch-1, its process terminated"}
	if got := full.StepLines(); !slices.Equal(got, lines) {
		t.Errorf("memo lines:\n%q\nwant:\n%q", got, lines)
	}
	byReason := ShutdownReport{Node: "node-1", Reason: "rack move"}
	if got := byReason.StepLines(); len(got) != 1 || !strings.HasSuffix(got[0], ": rack move") {
		t.Errorf("memo lines of a reason alone: %q", got)
	}
	empty := ShutdownReport{Node: "node-1"}
	if got, want := empty.Markdown(plan.Plan{}), "**Shutdown of node-1**\n\n| # | step | status | attempts | duration | note |\n|---|---|---|---|---|---|\n"; got != want {
		t.Errorf("details of a run just started:\n%q\nwant:\n%q", got, want)
	}
	if got := empty.StepLines(); len(got) != 0 {
		t.Errorf("memo lines of a run just started: %q", got)
	}
	for r, want := range map[*ShutdownReport]string{
		{Outcome: plan.Aborted, Error: "deregister failed"}:                      "put back in service: deregister failed",
		{Outcome: plan.Failed, Error: "nobody answered"}:                         "the node is neither known out nor back in service: nobody answered",
		{Outcome: plan.Forced, Gone: "another process has its name"}:             "forced out: another process has its name",
		{Outcome: plan.Failed, NodeStateAtStart: "dead", Error: "lookup failed"}: "the node is neither known out nor back in service: lookup failed",
	} {
		if got := r.Explain(); !strings.HasPrefix(got, want) {
			t.Errorf("%+v: why %q, want %q", *r, got, want)
		}
		if r.Error != "" && !strings.Contains(r.Markdown(plan.Plan{}), "\n"+r.Error+"\n") {
			t.Errorf("%+v: its error is not in its details:\n%s", *r, r.Markdown(plan.Plan{}))
		}
	}

	if got := Summary(ShutdownRequest{Node: "node-1", Reason: "rack\nmove", RequestedBy: "ops@host"}); got != "shut down node-1: rack move — requested by ops@host" {
		t.Errorf("summary %q", got)
	}
	exact := ShutdownRequest{Node: "node-1", Reason: strings.Repeat("r", 200-len("shut down node-1: "))}
	if got := Summary(exact); len(got) != 200 || strings.HasSuffix(got, "…") {
		t.Errorf("a summary of 200 bytes is kept whole: %d bytes, %q", len(got), got)
	}
	exact.Reason += "r"
	if got := Summary(exact); !strings.HasSuffix(got, "…") || len(got) > 200 {
		t.Errorf("a summary past 200 bytes is cut: %d bytes", len(got))
	}
	details := Details(ShutdownRequest{Node: "node-1", Reason: "rack move", RequestedBy: "ops@host", RetryOf: "run-0", SkipSucceeded: []string{"stop-heartbeat"}})
	if want := "**Shutdown of node-1**\n\n- reason: rack move\n- requested by: ops@host\n- retry of run: run-0\n- skipping what succeeded then: stop-heartbeat\n- plan: the orchestrator's configured plan (its step table is in Current Details)\n"; details != want {
		t.Errorf("start details:\n%s\nwant:\n%s", details, want)
	}
	if details := Details(ShutdownRequest{Node: "node-1"}); strings.Contains(details, "reason") || strings.Contains(details, "retry") || strings.Contains(details, "requested") {
		t.Errorf("start details of a bare request:\n%s", details)
	}
}

func fullReport() ShutdownReport {
	return ShutdownReport{Outcome: plan.Forced, Node: "node-1", Reason: "rack move", RequestedBy: "ops@host", ForceReason: "deregister failed",
		EvictedBy: "orch-1", Evicted: true, Terminated: true, Gone: "", NodeStateAtStart: "alive", Error: "",
		Steps: []plan.StepResult{
			{Name: plan.SetGracefullyLeft, Status: plan.StepSucceeded, Attempts: 1, Duration: plan.Duration(12 * time.Millisecond), Note: "state was already leaving"},
			{Name: plan.StopHeartbeat, Status: plan.StepSkipped},
			{Name: plan.Deregister, Status: plan.StepFailed, Attempts: 3, Duration: plan.Duration(2 * time.Second), Error: "leave timed out"},
		},
		Convergence: plan.Pending, ConvergenceTook: plan.Duration(5 * time.Second), Pending: []string{"node-2", "node-3"},
		Total: plan.Duration(9 * time.Second), Slow: true, SlowestStep: plan.Deregister, Waiting: "2 in flight", Budget: "waited 3s for the budget"}
}

// A drain's Current Details and memo say each setting only when it is set, order the
// nodes as they are when they fit and the most telling first when they do not, and
// say how many more there are.
func TestADrainReadsAsItShould(t *testing.T) {
	nodes := func(n int) []DrainNode {
		var out []DrainNode
		for i := range n {
			out = append(out, DrainNode{Node: fmt.Sprintf("n%02d", i+1), State: DrainDone, Outcome: plan.Graceful, Took: plan.Duration(time.Second)})
		}
		return out
	}
	r := DrainReport{Name: "d1", Selector: activities.Selector{All: true}, MaxParallel: 2, MinAlive: 1, FailureThreshold: 1,
		Waves: 2, WorstCase: plan.Duration(time.Minute), Reason: "kernel update", Why: "every node is out",
		Outcome: DrainCompleted, Nodes: nodes(drainTableRows)}
	r.Nodes[0].Took, r.Nodes[0].Note = 0, "joined its running shutdown"
	md := r.Markdown()
	for _, want := range []string{", min-alive 1;", "; stops after 1 failure", "\n\nreason: kernel update\n\n", "; planned 2 waves, worst case 1m0s",
		"**Outcome**: completed every node is out", "| n01 | done | graceful | - | joined its running shutdown |", "| n02 | done | graceful | 1s | - |"} {
		if !strings.Contains(md, want) {
			t.Errorf("details lack %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "more (farewell drain status") || strings.Count(md, "| done |") != drainTableRows {
		t.Errorf("%d nodes fit the table, every one in it:\n%s", drainTableRows, md)
	}
	lines := r.Lines()
	if len(lines) != 3+drainTableRows || !strings.HasSuffix(lines[1], ": kernel update") ||
		lines[2] != "outcome: completed in 0s — every node is out" || lines[3] != "n01: done, graceful in 0s — joined its running shutdown" {
		t.Errorf("memo lines: %q", lines[:4])
	}

	bare := DrainReport{Name: "d1", Selector: activities.Selector{All: true}, MaxParallel: 2, Nodes: nodes(drainTableRows + 2)}
	bare.Nodes[drainTableRows+1].Outcome = plan.Forced // the last, and the most telling
	md = bare.Markdown()
	for _, unwanted := range []string{"min-alive", "stops after", "planned", "**Outcome**", "requested by", "reason:"} {
		if strings.Contains(md, unwanted) {
			t.Errorf("details say %q, which is not set:\n%s", unwanted, md)
		}
	}
	if !strings.Contains(md, "… and 2 more (farewell drain status d1 lists every node)") || strings.Count(md, "| done |") != drainTableRows ||
		!strings.Contains(md, "|---|\n| n62 | done | forced |") {
		t.Errorf("past %d nodes: the forced one first, two more counted:\n%s", drainTableRows, md)
	}
	lines = bare.Lines()
	if len(lines) != 2+drainTableRows || lines[1] != "n62: done, forced in 1s" || lines[len(lines)-1] != "… and 2 more (farewell drain status d1 lists every node)" {
		t.Errorf("memo past %d nodes: %q … %q", drainTableRows, lines[:2], lines[len(lines)-1])
	}
}

// A forced run that did nothing to the node says why alone, and a convergence with
// nobody pending names nobody.
func TestAReportSaysNothingOfWhatDidNotHappen(t *testing.T) {
	r := ShutdownReport{Node: "node-1", Outcome: plan.Forced, ForceReason: "deregister failed", Convergence: plan.Converged,
		ConvergenceTook: plan.Millis(2 * time.Second)}
	if got := r.Explain(); got != "forced out because deregister failed" {
		t.Errorf("why %q; want no list of deeds", got)
	}
	if md := r.Markdown(plan.Plan{}); !strings.Contains(md, "**Convergence**: converged after 2s\n") {
		t.Errorf("details:\n%s\nwant the convergence without a pending list", md)
	}
}

// Up to drainTableRows nodes, a drain lists every node in its order; past it, what went
// wrong (forced, failed) comes before what never ran (skipped), then the rest.
func TestADrainListsItsNodesInTheirOrderUpToItsBound(t *testing.T) {
	nodes := func(n int) []DrainNode {
		var out []DrainNode
		for i := range n {
			out = append(out, DrainNode{Node: fmt.Sprintf("n%02d", i+1), State: DrainDone, Outcome: plan.Graceful})
		}
		out[0] = DrainNode{Node: "n01", State: DrainSkipped}
		out[n-1].Outcome = plan.Forced
		return out
	}
	at := DrainReport{Name: "d1", Selector: activities.Selector{All: true}, MaxParallel: 1, Nodes: nodes(drainTableRows)}
	lines := at.Lines()
	if len(lines) != 1+drainTableRows || lines[1] != "n01: skipped" || lines[drainTableRows] != "n60: done, forced in 0s" {
		t.Errorf("%d nodes: memo %q … %q; want every node in its order", drainTableRows, lines[:2], lines[len(lines)-1])
	}
	if md := at.Markdown(); !strings.Contains(md, "|---|\n| n01 | skipped |") {
		t.Errorf("%d nodes: details\n%s\nwant every node in its order", drainTableRows, md)
	}
	past := DrainReport{Name: "d1", Selector: activities.Selector{All: true}, MaxParallel: 1, Nodes: nodes(drainTableRows + 2)}
	lines = past.Lines()
	if lines[1] != "n62: done, forced in 0s" || lines[2] != "n01: skipped" {
		t.Errorf("%d nodes: memo starts %q; want the forced node, then the skipped one", drainTableRows+2, lines[1:3])
	}
}

// Who asked for a drain and why reads as one line, whatever of the two is known.
func TestADrainsRequestLine(t *testing.T) {
	for _, c := range []struct{ by, reason, want string }{
		{"ops@test", "kernel update", "requested by ops@test: kernel update"},
		{"ops@test", "", "requested by ops@test"},
		{"", "kernel update", "reason: kernel update"},
		{"", "", ""},
	} {
		if got := requestLine(c.by, c.reason); got != c.want {
			t.Errorf("%q, %q: %q, want %q", c.by, c.reason, got, c.want)
		}
	}
	r := DrainReport{Name: "d1", Selector: activities.Selector{Nodes: []string{"a"}}, MaxParallel: 1, RequestedBy: "ops@test", Reason: "kernel update"}
	if md := r.Markdown(); !strings.Contains(md, "\n\nrequested by ops@test: kernel update\n\n") {
		t.Errorf("a drain's details do not say who asked:\n%s", md)
	}
}

// Text written by people or naming flags reaches the UI's markdown as itself: no
// markup of its own, on one line, and a flag's two hyphens kept apart from the
// renderer's dash.
func TestEscapeMarkdown(t *testing.T) {
	for in, want := range map[string]string{
		"50 in flight: --max-parallel is 50": `50 in flight: -\-max-parallel is 50`,
		"a|b *c* _d_ `e` [f](g) <h> #i":      `a\|b \*c\* \_d\_ \` + "`e\\`" + ` \[f\](g) &lt;h&gt; \#i`,
		`back\slash`:                         `back\\slash`,
		"two\nlines":                         "two lines",
	} {
		if got := escapeMarkdown(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
