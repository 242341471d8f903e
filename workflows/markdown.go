package workflows

import (
	"fmt"
	"strings"
)

var statusIcon = map[StepStatus]string{
	StepPending:   "⏳",
	StepRunning:   "▶️",
	StepSucceeded: "✅",
	StepFailed:    "❌",
	StepTimedOut:  "⌛",
	StepSkipped:   "⏭️",
}

// Markdown renders the report as the step table shown in the Temporal UI.
func (r *ShutdownReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Shutdown of %s**", r.Node)
	if r.Reason != "" {
		fmt.Fprintf(&b, " — %s", r.Reason)
	}
	if r.RequestedBy != "" {
		fmt.Fprintf(&b, " (requested by %s)", r.RequestedBy)
	}
	b.WriteString("\n\n| # | step | status | attempts | duration | note |\n|---|---|---|---|---|---|\n")
	for i, s := range r.Steps {
		note := s.Note
		if s.Error != "" {
			note = strings.TrimSpace(s.Error + " " + note)
		}
		fmt.Fprintf(&b, "| %d/%d | %s | %s %s | %d | %d ms | %s |\n", i+1, len(r.Steps), s.Name, statusIcon[s.Status], s.Status,
			s.Attempts, s.DurationMS, strings.ReplaceAll(note, "|", "/"))
	}
	if r.ForceReason != "" {
		fmt.Fprintf(&b, "\n**Forced**: %s — evicted: %v, terminated: %v\n", r.ForceReason, r.Evicted, r.Terminated)
	}
	if r.ConvergenceMS > 0 || r.Converged {
		fmt.Fprintf(&b, "\n**Convergence**: %v after %d ms", r.Converged, r.ConvergenceMS)
		if len(r.Pending) > 0 {
			fmt.Fprintf(&b, " (pending: %s)", strings.Join(r.Pending, ", "))
		}
		b.WriteString("\n")
	}
	if r.Outcome != "" {
		fmt.Fprintf(&b, "\n**Outcome: %s** in %d ms", r.Outcome, r.TotalMS)
		if r.Slow {
			fmt.Fprintf(&b, " — slow (slowest step: %s)", r.SlowestStep)
		}
		b.WriteString("\n")
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "\n%s\n", r.Error)
	}
	return b.String()
}
