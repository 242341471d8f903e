package history

import (
	"cmp"
	"slices"
	"testing"

	"github.com/farewell-project/farewell/plan"
)

// Every committed history, rebuilt event by event, tells what the run's own report
// says: its node, its outcome, each step's status and attempts (an error for every step
// that failed or timed out), the rollback and the termination, the steps in the run's
// order, and a convergence check for every run that says it converged. The journal
// reads events; the report is what the workflow concluded: two sources, one story.
func TestEveryCommittedHistoryRebuildsItsReport(t *testing.T) {
	for name, f := range histories(t) {
		t.Run(name, func(t *testing.T) {
			j, err := Reconstruct(parseFile(t, f))
			if err != nil {
				t.Fatal(err)
			}
			rep := j.Report
			if j.Status == "Failed" {
				// A run refused at its start (an unknown node): no report, the reason.
				if rep != nil || j.Outcome != "" || j.Error == "" || j.Closed.IsZero() {
					t.Errorf("failed run: report %v, outcome %q, error %q", rep != nil, j.Outcome, j.Error)
				}
				return
			}
			if j.Status != "Completed" || rep == nil {
				t.Fatalf("status %s, report %v: every committed run completed or was refused", j.Status, rep != nil)
			}
			if j.Node != rep.Node || j.Outcome != rep.Outcome || j.WorkflowID == "" || j.RunID == "" || j.Started.IsZero() || !j.Closed.After(j.Started) {
				t.Errorf("journal %s/%s %q %s (%s–%s); report %q %s", j.WorkflowID, j.RunID, j.Node, j.Outcome, j.Started, j.Closed, rep.Node, rep.Outcome)
			}
			if at := cmp.Or(rep.NodeStateAtStart, rep.NodeState); at != "" && j.NodeState != at {
				t.Errorf("the lookup found the node %q; the report says %q", j.NodeState, at)
			}
			if j.RolledBack != rep.RolledBack || j.Terminated != rep.Terminated {
				t.Errorf("rolled back %v, terminated %v; the report says %v, %v", j.RolledBack, j.Terminated, rep.RolledBack, rep.Terminated)
			}
			byName := map[string]JournalStep{}
			var order []string
			for _, s := range j.Steps {
				byName[s.Name] = s
				if graceful(s.Name) {
					order = append(order, s.Name)
				}
			}
			var want []string
			for _, s := range rep.Steps {
				got, seen := byName[s.Name]
				if seen {
					want = append(want, s.Name)
				}
				switch s.Status {
				case plan.StepSkipped, plan.StepPending:
					if got.Status != s.Status || got.Note != s.Note {
						t.Errorf("step %s: journal %s %q; report %s %q", s.Name, got.Status, got.Note, s.Status, s.Note)
					}
				case plan.StepSucceeded, plan.StepFailed, plan.StepTimedOut:
					if s.Attempts == 0 && s.Status == plan.StepSucceeded {
						// Done by an earlier run: not scheduled in this one, the report says so.
						if got.Status != plan.StepSucceeded || got.Note != s.Note {
							t.Errorf("step %s, done by an earlier run: journal %s %q; report %q", s.Name, got.Status, got.Note, s.Note)
						}
						continue
					}
					if got.Status != s.Status || got.Attempts != s.Attempts {
						t.Errorf("step %s: journal %s after %d attempts; report %s after %d", s.Name, got.Status, got.Attempts, s.Status, s.Attempts)
					}
					if s.Status != plan.StepSucceeded && got.Error == "" {
						t.Errorf("step %s %s with no error in the journal (report: %q)", s.Name, got.Status, s.Error)
					}
					if s.Status == plan.StepSucceeded && got.Error != "" {
						t.Errorf("step %s succeeded, yet the journal says %q", s.Name, got.Error)
					}
				}
			}
			if !slices.Equal(order, want) {
				t.Errorf("steps in the journal's order %v; the run's %v", order, want)
			}
			if rep.Converged && (len(j.Convergence) == 0 || !j.Convergence[len(j.Convergence)-1].Converged) {
				t.Errorf("the report says converged; the journal's checks: %+v", j.Convergence)
			}
			if n := len(j.Convergence); n > 0 && rep.ConvergenceTook > 0 && j.Convergence[n-1].Took != rep.ConvergenceTook {
				t.Errorf("the last check took %s; the report says %s", j.Convergence[n-1].Took, rep.ConvergenceTook)
			}
			for _, c := range j.Convergence {
				if c.Error != "" { // none of the committed runs had a check fail
					t.Errorf("a convergence check with an error: %+v", c)
				}
			}
		})
	}
}
