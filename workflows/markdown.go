package workflows

import (
	"fmt"
	"strings"

	"github.com/farewell-project/farewell/plan"
)

var statusIcon = map[plan.StepStatus]string{
	plan.StepPending:   "⏳",
	plan.StepRunning:   "▶️",
	plan.StepSucceeded: "✅",
	plan.StepFailed:    "❌",
	plan.StepTimedOut:  "⌛",
	plan.StepSkipped:   "⏭️",
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
		fmt.Fprintf(&b, "| %d/%d | %s | %s %s | %d | %s | %s |\n", i+1, len(r.Steps), s.Name, statusIcon[s.Status], s.Status,
			s.Attempts, s.Duration, escapeMarkdown(note))
	}
	if r.ForceReason != "" {
		fmt.Fprintf(&b, "\n**Forced**: %s — evicted: %v, terminated: %v\n", escapeMarkdown(r.ForceReason), r.Evicted, r.Terminated)
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
		b.WriteString("\n")
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

// StepLines are the report's steps one line each ("1/4 set-gracefully-left: succeeded,
// 1 attempt, 12ms"), kept in the run's memo so the step table reads after the run closed.
func (r *ShutdownReport) StepLines() []string {
	lines := make([]string, 0, len(r.Steps)+1)
	for i, s := range r.Steps {
		line := fmt.Sprintf("%d/%d %s: %s", i+1, len(r.Steps), s.Name, s.Status)
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
	if r.Outcome != "" {
		lines = append(lines, fmt.Sprintf("outcome: %s in %s, convergence %s", r.Outcome, r.Total, orNone(string(r.Convergence))))
	}
	return lines
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
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
var markdownEscaper = strings.NewReplacer(`\`, `\\`, "|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`,
	"<", "&lt;", ">", "&gt;", "#", `\#`)

// escapeMarkdown makes user-written text safe to put in the UI's markdown: one line,
// no markup of its own.
func escapeMarkdown(s string) string { return markdownEscaper.Replace(oneLine(s)) }
