package workflows

import (
	"fmt"
	"strings"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
)

// drainTableRows bounds the node table of a drain in the Temporal UI: those in flight,
// the failures and the latest ends are shown; the counts say the rest.
const drainTableRows = 60

// DrainSummary is the one line the Temporal UI lists a drain under.
func DrainSummary(req DrainRequest) string {
	s := fmt.Sprintf("drain %s: %s, max-parallel %d", oneLine(req.Name), oneLine(req.Selector.String()), req.maxParallel())
	if req.Limits.MinAlive > 0 {
		s += fmt.Sprintf(", min-alive %d", req.Limits.MinAlive)
	}
	if req.RequestedBy != "" {
		s += " — requested by " + oneLine(req.RequestedBy)
	}
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:197], "") + "…"
	}
	return s
}

// DrainDetails is the markdown the Temporal UI shows under a drain's Summary & Details
// from its start: who asked for what, and the limits it keeps.
func DrainDetails(req DrainRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Drain %s** of %s\n\n", escapeMarkdown(req.Name), escapeMarkdown(req.Selector.String()))
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "- %s: %s\n", k, escapeMarkdown(v))
		}
	}
	row("reason", req.Reason)
	row("requested by", req.RequestedBy)
	row("at once", fmt.Sprintf("at most %d of its nodes", req.maxParallel()))
	if req.Limits.MinAlive > 0 {
		row("floor", fmt.Sprintf("at least %d nodes in service", req.Limits.MinAlive))
	}
	if req.FailureThreshold > 0 {
		row("stops after", count(req.FailureThreshold, "shutdown")+" not graceful or degraded")
	}
	if req.PauseBetween > 0 {
		row("pause between shutdowns", req.PauseBetween.String())
	}
	b.WriteString("\nEach node's shutdown is a run of its own, a child of this one (search attribute FarewellDrain); the table of nodes is in Current Details.\n")
	return b.String()
}

// Lines are the drain in a few lines for its memo: its request, its outcome, and one
// line a node ("node-3: done, graceful in 2.1s").
func (r *DrainReport) Lines() []string {
	lines := []string{"drain " + r.Name + " of " + r.Selector.String()}
	if line := requestLine(r.RequestedBy, r.Reason); line != "" {
		lines = append(lines, line)
	}
	if r.Outcome != "" {
		line := fmt.Sprintf("outcome: %s in %s", r.Outcome, r.Total)
		if r.Why != "" {
			line += " — " + r.Why
		}
		lines = append(lines, line)
	}
	// A memo over 32 kB is one Temporal warns about (a drain of 1,000 nodes wrote
	// 50 kB): past drainTableRows nodes, the most telling lines — what did not end
	// graceful or degraded — then as many others as fit, and how many more.
	shown := 0
	add := func(keep func(DrainNode) bool) {
		for _, n := range r.Nodes {
			if !keep(n) || shown >= drainTableRows {
				continue
			}
			shown++
			line := fmt.Sprintf("%s: %s", n.Node, n.State)
			if n.Outcome != "" {
				line += fmt.Sprintf(", %s in %s", n.Outcome, n.Took)
			}
			if n.Note != "" {
				line += " — " + n.Note
			}
			lines = append(lines, line)
		}
	}
	fine := func(n DrainNode) bool { return n.Outcome == plan.Graceful || n.Outcome == plan.Degraded }
	bad := func(n DrainNode) bool { return n.State == DrainDone && !fine(n) }
	if len(r.Nodes) <= drainTableRows {
		add(func(DrainNode) bool { return true })
	} else {
		add(bad)                                                   // forced, failed, aborted, never started
		add(func(n DrainNode) bool { return !bad(n) && !fine(n) }) // skipped, held back, not reached
		add(fine)
	}
	if more := len(r.Nodes) - shown; more > 0 {
		lines = append(lines, fmt.Sprintf("… and %d more (farewell drain status %s lists every node)", more, r.Name))
	}
	return lines
}

// Markdown renders the drain for the Temporal UI's current details: where it stands,
// what it waits for, and a node | state | outcome | duration table.
func (r *DrainReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Drain %s** of %s — max-parallel %d", escapeMarkdown(r.Name), escapeMarkdown(r.Selector.String()), r.MaxParallel)
	if r.MinAlive > 0 {
		fmt.Fprintf(&b, ", min-alive %d", r.MinAlive)
	}
	fmt.Fprintf(&b, "; the cluster's budget: %s", r.Cluster)
	if r.FailureThreshold > 0 {
		fmt.Fprintf(&b, "; stops after %s", count(r.FailureThreshold, "failure"))
	}
	b.WriteString("\n\n")
	// A run the drain continued as new has no summary of its own (the SDK sets one at
	// start only): who asked, and why, is said here for every run.
	if line := requestLine(r.RequestedBy, r.Reason); line != "" {
		b.WriteString(escapeMarkdown(line) + "\n\n")
	}
	c := r.Count()
	fmt.Fprintf(&b, "%s: %d done, %d running, %d joined, %d pending, %d skipped, %d blocked; %s",
		count(len(r.Nodes), "node"), c[DrainDone], c[DrainRunning], c[DrainJoined], c[DrainPending], c[DrainSkipped], c[DrainBlocked], count(r.Failures, "failure"))
	if r.Waves > 0 {
		fmt.Fprintf(&b, "; planned %s, worst case %s", count(r.Waves, "wave"), r.WorstCase)
	}
	b.WriteString("\n")
	for _, line := range []struct{ k, v string }{
		{"Phase", r.Phase}, {"Paused", r.Paused}, {"Aborted", r.Aborted}, {"Stopped", r.Stopped},
		{"Waiting", r.Waiting}, {"Outcome", strings.TrimSpace(string(r.Outcome) + " " + r.Why)},
	} {
		if line.v != "" {
			fmt.Fprintf(&b, "\n**%s**: %s\n", line.k, escapeMarkdown(line.v))
		}
	}
	b.WriteString("\n| node | state | outcome | duration | note |\n|---|---|---|---|---|\n")
	rows, hidden := 0, 0
	show := func(keep func(DrainNode) bool) {
		for _, n := range r.Nodes {
			if !keep(n) {
				continue
			}
			if rows >= drainTableRows {
				hidden++
				continue
			}
			rows++
			took := "-"
			if n.Took > 0 {
				took = n.Took.String()
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", escapeMarkdown(n.Node), n.State, orDash(string(n.Outcome)), took, orDash(escapeMarkdown(n.Note)))
		}
	}
	if len(r.Nodes) <= drainTableRows {
		show(func(DrainNode) bool { return true })
	} else {
		// The most telling first: in flight, then what went wrong, then the rest.
		inFlight := func(n DrainNode) bool { return n.State == DrainRunning || n.State == DrainJoined }
		bad := func(n DrainNode) bool {
			return n.State == DrainBlocked || n.State == DrainDone && n.Outcome != "graceful" && n.Outcome != "degraded"
		}
		show(inFlight)
		show(bad)
		show(func(n DrainNode) bool { return !inFlight(n) && !bad(n) })
	}
	if hidden > 0 {
		fmt.Fprintf(&b, "\n… and %d more (farewell drain status %s lists every node)\n", hidden, escapeMarkdown(r.Name))
	}
	return b.String()
}

// PreflightMarkdown renders a drain's pre-flight: per node what blocks it, the waves
// and the worst case.
func PreflightMarkdown(p activities.DrainPlan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Drain pre-flight** of %s: %s in service, %s in flight; the drain takes %d in %s, worst case %s (each shutdown's budget %s)\n\n",
		escapeMarkdown(p.Selector.String()), count(p.Serving, "node"), count(p.InFlight, "shutdown"), p.Takes, count(p.Waves, "wave"), p.WorstCase, p.Budget)
	b.WriteString("| node | state | blocker | note |\n|---|---|---|---|\n")
	for _, c := range p.Nodes {
		blocker := orDash(c.Blocker)
		if c.Fatal {
			blocker = "**" + blocker + " (fatal)**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", escapeMarkdown(c.Node), orDash(c.State), blocker, orDash(escapeMarkdown(c.Note)))
	}
	return b.String()
}
