package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

// Exit codes of `farewell shutdown --wait` beyond the common ones.
const (
	ExitNotClean = 3 // degraded or forced: the node is out, not cleanly
	ExitNotOut   = 4 // aborted or failed: the node is not out
)

// outcomeExitCode maps a shutdown's outcome to the exit code of `shutdown --wait`.
func outcomeExitCode(o plan.Outcome) int {
	switch o {
	case plan.Graceful:
		return ExitOK
	case plan.Degraded, plan.Forced:
		return ExitNotClean
	default:
		return ExitNotOut
	}
}

// safe makes text someone wrote fit a terminal: control characters (escape sequences,
// new lines) are shown as escapes, never acted on.
func safe(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// requestLine is "requested by WHO: WHY", or "requested by WHO" when no reason was given.
func requestLine(by, reason string) string {
	s := "requested by " + orDash(safe(by))
	if reason != "" {
		s += ": " + safe(reason)
	}
	return s
}

// count is "1 attempt", "3 attempts".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func attempts(n int) string { return count(n, "attempt") }

// words is a status for people: timed_out reads "timed out".
func words[S ~string](s S) string { return strings.ReplaceAll(string(s), "_", " ") }

// printReport renders a report for people.
func printReport(w io.Writer, r *workflows.ShutdownReport) { printReportWith(w, r, true) }

// printReportWith renders a report, with its workflow and run IDs in the header unless
// they were printed already.
func printReportWith(w io.Writer, r *workflows.ShutdownReport, ids bool) {
	fmt.Fprintf(w, "%s: %s in %s", r.Node, strings.ToUpper(string(r.Outcome)), r.Total)
	if ids && r.WorkflowID != "" {
		fmt.Fprintf(w, "  (workflow %s, run %s)", r.WorkflowID, r.RunID)
	}
	fmt.Fprintln(w)
	if r.Why != "" {
		fmt.Fprintf(w, "  why: %s\n", safe(r.Why))
	}
	if r.RequestedBy != "" || r.Reason != "" {
		fmt.Fprintf(w, "  %s\n", requestLine(r.RequestedBy, r.Reason))
	}
	for i, s := range r.Steps {
		line := fmt.Sprintf("  %d/%d %-20s %-9s", i+1, len(r.Steps), s.Name, words(s.Status))
		if s.Status != plan.StepSkipped {
			line += fmt.Sprintf(" %s %8s", attempts(s.Attempts), s.Duration)
		}
		if s.Error != "" {
			line += "  " + safe(s.Error)
		}
		if s.Note != "" {
			line += "  [" + safe(s.Note) + "]"
		}
		fmt.Fprintln(w, line)
	}
	if r.Budget != "" {
		fmt.Fprintf(w, "  budget: %s\n", safe(r.Budget))
	}
	if r.ForceReason != "" {
		fmt.Fprintf(w, "  forced because %s: %s\n", safe(r.ForceReason), safe(r.ForceDeeds()))
	}
	if r.Gone != "" {
		fmt.Fprintf(w, "  gone: %s\n", safe(r.Gone))
	}
	if r.RolledBack {
		fmt.Fprintln(w, "  rolled back: the node is alive and serving again")
	}
	switch {
	case r.Converged:
		fmt.Fprintf(w, "  convergence: every surviving member sees %s out (%s)\n", r.Node, r.ConvergenceTook)
	case r.Convergence == plan.Unverified:
		fmt.Fprintf(w, "  convergence: UNVERIFIED: too few members answered to tell (%s)\n", strings.Join(r.Pending, ", "))
	case len(r.Pending) > 0:
		fmt.Fprintf(w, "  convergence: NOT reached; still seeing %s in: %s\n", r.Node, strings.Join(r.Pending, ", "))
	}
	if r.Slow {
		fmt.Fprintf(w, "  slow: took longer than the threshold; slowest step %s\n", r.SlowestStep)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  note: %s\n", safe(r.Error))
	}
	if r.TraceID != "" {
		fmt.Fprintf(w, "  trace: %s\n", r.TraceID)
	}
}

// progressPrinter prints one line per step change while a shutdown runs.
type progressPrinter struct {
	w       io.Writer
	seen    map[string]plan.StepStatus
	hint    bool
	waiting string
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	return &progressPrinter{w: w, seen: map[string]plan.StepStatus{}}
}

func (p *progressPrinter) update(r workflows.ShutdownReport) {
	if r.Waiting != p.waiting {
		p.waiting = r.Waiting
		if r.Waiting != "" {
			fmt.Fprintf(p.w, "%s waiting for the budget: %s\n", r.Node, safe(r.Waiting))
		}
	}
	for i, s := range r.Steps {
		if p.seen[s.Name] == s.Status || s.Status == plan.StepPending {
			continue
		}
		p.seen[s.Name] = s.Status
		line := fmt.Sprintf("%s %d/%d %s %s", r.Node, i+1, len(r.Steps), s.Name, words(s.Status))
		if s.Status != plan.StepRunning && s.Status != plan.StepSkipped {
			line += " in " + s.Duration.String()
		}
		if s.Error != "" {
			line += ": " + safe(s.Error)
		}
		if s.Note != "" && s.Status == plan.StepSkipped {
			line += " (" + safe(s.Note) + ")"
		}
		fmt.Fprintln(p.w, line)
	}
	if r.ForceReason != "" && !p.hint {
		p.hint = true
		fmt.Fprintf(p.w, "%s forcing eviction: %s\n", r.Node, safe(r.ForceReason))
	}
}
