package workflows

import (
	"fmt"
	"strings"

	"github.com/farewell-project/farewell/plan"
)

// statusIcon marks a step's status beside its words: plain symbols, which every font
// has (emoji render as empty boxes where the machine has no emoji font).
var statusIcon = map[plan.StepStatus]string{
	plan.StepPending:   "·",
	plan.StepRunning:   "▸",
	plan.StepSucceeded: "✓",
	plan.StepFailed:    "✗",
	plan.StepTimedOut:  "✗",
	plan.StepSkipped:   "–",
}

// words is a status for people: timed_out reads "timed out".
func words[S ~string](s S) string { return strings.ReplaceAll(string(s), "_", " ") }

// Explain says in one sentence why a run ended as it did.
func (r *ShutdownReport) Explain() string {
	var notOK []string
	for _, s := range r.Steps {
		if s.Status == plan.StepFailed || s.Status == plan.StepTimedOut {
			notOK = append(notOK, s.Name+" "+words(s.Status))
		}
	}
	steps := strings.Join(notOK, ", ")
	// and adds what the run concluded beyond the steps (a termination that did not run,
	// a convergence nobody could verify, an eviction that failed), when it says so.
	and := func(why string) string {
		if r.Error != "" {
			return why + "; " + r.Error
		}
		return why
	}
	switch r.Outcome {
	case plan.Graceful:
		if r.Converged {
			return and("every step succeeded and the members saw the node leave")
		}
		return and("every step succeeded")
	case plan.Degraded:
		why := "the node left without an eviction"
		if steps != "" {
			why = "the node left without an eviction, though " + steps
		}
		if r.Gone != "" {
			why += "; " + r.Gone
		}
		return and(why)
	case plan.Forced:
		var did []string
		if r.Evicted {
			by := "a peer"
			if r.EvictedBy != "" {
				by = r.EvictedBy
			}
			did = append(did, "evicted by "+by)
		}
		if r.Terminated {
			did = append(did, "its process terminated")
		}
		if r.Gone != "" {
			did = append(did, r.Gone)
		}
		why := "forced out"
		if r.ForceReason != "" {
			why += " because " + r.ForceReason
		}
		if len(did) > 0 {
			why += ": " + strings.Join(did, ", ")
		}
		return and(why)
	case plan.Aborted:
		why := "put back in service"
		if r.Error != "" {
			why += ": " + r.Error
		}
		return why
	case plan.Failed:
		why := "the node is neither known out nor back in service"
		if r.Error != "" {
			why += ": " + r.Error
		}
		return why
	}
	return ""
}

// Summary is the one line the Temporal UI lists a shutdown under (its static summary):
// "shut down node-5: rack move — requested by ops@host".
func Summary(req ShutdownRequest) string {
	s := "shut down " + oneLine(req.Node)
	if req.Reason != "" {
		s += ": " + oneLine(req.Reason)
	}
	if req.RequestedBy != "" {
		s += " — requested by " + oneLine(req.RequestedBy)
	}
	if len(s) > 200 { // the UI keeps 200 bytes
		s = strings.ToValidUTF8(s[:197], "") + "…"
	}
	return s
}

// Details is the markdown the Temporal UI shows under Summary & Details when a
// shutdown starts: who asked for what, and the plan when the request carries one.
func Details(req ShutdownRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Shutdown of %s**\n\n", escapeMarkdown(req.Node))
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "- %s: %s\n", k, escapeMarkdown(v))
		}
	}
	row("reason", req.Reason)
	row("requested by", req.RequestedBy)
	if req.Force {
		row("force", "skip the graceful steps and evict at once")
	}
	if req.RetryOf != "" {
		row("retry of run", req.RetryOf)
		row("skipping what succeeded then", strings.Join(req.SkipSucceeded, ", "))
	}
	switch {
	case req.Plan != nil:
		p, err := req.Override.Apply(*req.Plan)
		if err != nil {
			row("plan", "invalid: "+err.Error())
			break
		}
		b.WriteString("\n")
		b.WriteString(PlanMarkdown(p))
	default:
		b.WriteString("- plan: the orchestrator's configured plan (its step table is in Current Details)\n")
		if !req.Override.Empty() {
			b.WriteString("- changed for this run: " + escapeMarkdown(overrideText(req.Override)) + "\n")
		}
	}
	return b.String()
}

// PlanMarkdown renders a plan as a table in human durations.
func PlanMarkdown(p plan.Plan) string {
	var b strings.Builder
	b.WriteString("| step | start-to-close | schedule-to-start | attempts | backoff | on failure | budget |\n|---|---|---|---|---|---|---|\n")
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %s |\n", s.Name, s.StartToClose, s.ScheduleToStart, s.MaxAttempts,
			s.Backoff, s.OnFailure, s.Budget())
	}
	force := "on: a healthy peer evicts a node the steps did not get out"
	if !p.Force {
		force = "off"
	}
	fmt.Fprintf(&b, "\nforce %s · convergence timeout %s · slow after %s · whole run at most %s\n", force,
		p.ConvergenceTimeout, p.SlowThreshold, p.Budget())
	return b.String()
}

func overrideText(o *plan.Override) string {
	var parts []string
	if o.Force != nil {
		parts = append(parts, fmt.Sprintf("force=%v", *o.Force))
	}
	if o.ConvergenceTimeout != nil {
		parts = append(parts, "convergence_timeout="+o.ConvergenceTimeout.String())
	}
	if o.SlowThreshold != nil {
		parts = append(parts, "slow_threshold="+o.SlowThreshold.String())
	}
	for _, name := range plan.SortedKeys(o.Steps) {
		s := o.Steps[name]
		if s.StartToClose != nil {
			parts = append(parts, "steps."+name+".start_to_close="+s.StartToClose.String())
		}
		if s.ScheduleToStart != nil {
			parts = append(parts, "steps."+name+".schedule_to_start="+s.ScheduleToStart.String())
		}
		if s.MaxAttempts != nil {
			parts = append(parts, fmt.Sprintf("steps.%s.max_attempts=%d", name, *s.MaxAttempts))
		}
		if s.Backoff != nil {
			parts = append(parts, "steps."+name+".backoff="+s.Backoff.String())
		}
		if s.OnFailure != nil {
			parts = append(parts, "steps."+name+".on_failure="+string(*s.OnFailure))
		}
	}
	return strings.Join(parts, ", ")
}

// Markdown renders the report as the step table shown in the Temporal UI's Current
// Details, with the plan it runs.
func (r *ShutdownReport) Markdown(p plan.Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Shutdown of %s**", escapeMarkdown(r.Node))
	if r.Reason != "" {
		fmt.Fprintf(&b, " — %s", escapeMarkdown(r.Reason))
	}
	if r.RequestedBy != "" {
		fmt.Fprintf(&b, " (requested by %s)", escapeMarkdown(r.RequestedBy))
	}
	if r.Waiting != "" {
		fmt.Fprintf(&b, "\n\n**Waiting for the budget**: %s", escapeMarkdown(r.Waiting))
	}
	if r.Budget != "" {
		fmt.Fprintf(&b, "\n\n**Budget**: %s", escapeMarkdown(r.Budget))
	}
	b.WriteString("\n\n| # | step | status | attempts | duration | note |\n|---|---|---|---|---|---|\n")
	for i, s := range r.Steps {
		note := s.Note
		if s.Error != "" {
			note = strings.TrimSpace(s.Error + " " + note)
		}
		fmt.Fprintf(&b, "| %d/%d | %s | %s %s | %d | %s | %s |\n", i+1, len(r.Steps), s.Name, statusIcon[s.Status], words(s.Status),
			s.Attempts, s.Duration, escapeMarkdown(note))
	}
	if r.ForceReason != "" {
		fmt.Fprintf(&b, "\n**Forced** because %s: %s\n", escapeMarkdown(r.ForceReason), escapeMarkdown(r.ForceDeeds()))
	}
	if r.Convergence != "" {
		fmt.Fprintf(&b, "\n**Convergence**: %s after %s", r.Convergence, r.ConvergenceTook)
		if len(r.Pending) > 0 {
			fmt.Fprintf(&b, " (pending: %s)", escapeMarkdown(strings.Join(r.Pending, ", ")))
		}
		b.WriteString("\n")
	}
	if r.Outcome != "" {
		fmt.Fprintf(&b, "\n**Outcome: %s** in %s", r.Outcome, r.Total)
		if r.Slow {
			fmt.Fprintf(&b, " — slow (slowest step: %s)", r.SlowestStep)
		}
		if why := r.Explain(); why != "" {
			fmt.Fprintf(&b, "\n\n**Why**: %s", escapeMarkdown(why))
		}
		b.WriteString("\n")
	}
	if r.NodeStateAtStart != "" {
		fmt.Fprintf(&b, "\nThe node was %s when the shutdown began.\n", escapeMarkdown(r.NodeStateAtStart))
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "\n%s\n", escapeMarkdown(r.Error))
	}
	if len(p.Steps) > 0 {
		b.WriteString("\n**Plan**\n\n")
		b.WriteString(PlanMarkdown(p))
	}
	return b.String()
}

// ForceDeeds says what the force did: "evicted by observer-1, its process terminated".
func (r *ShutdownReport) ForceDeeds() string {
	var did []string
	switch {
	case r.Evicted && r.EvictedBy != "":
		did = append(did, "evicted by "+r.EvictedBy)
	case r.Evicted:
		did = append(did, "evicted by a peer")
	default:
		did = append(did, "not evicted")
	}
	if r.Terminated {
		did = append(did, "its process terminated")
	} else {
		did = append(did, "its process not terminated")
	}
	return strings.Join(did, ", ")
}

// StepLines are the request, the report's steps one line each ("1/4
// set-gracefully-left: succeeded, 1 attempt, 12ms"), the force and the outcome, kept in
// the run's memo so the run reads after it closed.
func (r *ShutdownReport) StepLines() []string {
	lines := make([]string, 0, len(r.Steps)+3)
	if line := requestLine(r.RequestedBy, r.Reason); line != "" {
		lines = append(lines, line)
	}
	for i, s := range r.Steps {
		line := fmt.Sprintf("%d/%d %s: %s", i+1, len(r.Steps), s.Name, words(s.Status))
		if s.Status != plan.StepSkipped {
			line += fmt.Sprintf(", %d attempt%s, %s", s.Attempts, plural(s.Attempts), s.Duration)
		}
		if s.Error != "" {
			line += " — " + s.Error
		}
		if s.Note != "" {
			line += " [" + s.Note + "]"
		}
		lines = append(lines, line)
	}
	if r.ForceReason != "" {
		lines = append(lines, "forced because "+r.ForceReason+": "+r.ForceDeeds())
	}
	if r.Outcome != "" {
		lines = append(lines, fmt.Sprintf("outcome: %s in %s, convergence %s", r.Outcome, r.Total, orNone(string(r.Convergence))))
		if why := r.Explain(); why != "" {
			lines = append(lines, "why: "+why)
		}
	}
	return lines
}

// count is "1 wave", "3 waves".
func count(n int, noun string) string { return fmt.Sprintf("%d %s%s", n, noun, plural(n)) }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// requestLine says who asked for a shutdown or a drain and why ("requested by
// ops@test: kernel update"), or what it knows of that; "" when it knows neither.
func requestLine(by, reason string) string {
	switch {
	case by != "" && reason != "":
		return "requested by " + by + ": " + reason
	case by != "":
		return "requested by " + by
	case reason != "":
		return "reason: " + reason
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "not checked"
	}
	return s
}

// oneLine drops control characters (newlines among them) from user-written text.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// markdownEscaper escapes what markdown would read as markup in user-written text.
// The UI's renderer turns "--" into a dash: a flag named in a line ("--max-parallel")
// keeps both of its hyphens.
var markdownEscaper = strings.NewReplacer(`\`, `\\`, "|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`,
	"<", "&lt;", ">", "&gt;", "#", `\#`, "--", `-\-`)

// escapeMarkdown makes user-written text safe to put in the UI's markdown: one line,
// no markup of its own.
func escapeMarkdown(s string) string { return markdownEscaper.Replace(oneLine(s)) }
