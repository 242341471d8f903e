package history

import (
	"errors"
	historypb "go.temporal.io/api/history/v1"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/internal/testkit"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

// histories are real runs of every outcome and of each way of steering one, written by
// the current code and by earlier versions (testkit.HistoryDirs).
func histories(t *testing.T) map[string]string { return testkit.Histories(t, "..") }

// parseFile reads a committed history.
func parseFile(t *testing.T, file string) *historypb.History {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return h
}

func load(t *testing.T, file string) *Journal {
	t.Helper()
	j, err := Replay(parseFile(t, file), ReplayOptions{})
	if err != nil {
		t.Fatalf("%s does not replay against the current code: %v", file, err)
	}
	return j
}

// TestCommittedHistoriesReplay is what keeps running shutdowns safe: every committed
// history must replay against the current workflow code.
func TestCommittedHistoriesReplay(t *testing.T) {
	for name, file := range histories(t) {
		t.Run(name, func(t *testing.T) {
			j := load(t, file)
			want := map[string]plan.Outcome{"graceful": plan.Graceful, "degraded": plan.Degraded, "forced": plan.Forced,
				"aborted": plan.Aborted, "cancelled": plan.Aborted, "force-now": plan.Forced, "skip-step": plan.Degraded,
				"retry": plan.Graceful, "host-steps": plan.Forced}[filepath.Base(name)]
			if j.Outcome != want {
				t.Errorf("reconstructed outcome %q, want %q", j.Outcome, want)
			}
			if name == "host-steps" {
				var steps []string
				for _, s := range j.Steps {
					steps = append(steps, s.Name+"="+string(s.Status))
				}
				// Rebuilt from the events, the host's steps are there like the built-in ones.
				if got := strings.Join(steps, " "); !strings.Contains(got, "drain-connections=succeeded") || !strings.Contains(got, "flush-state=failed") {
					t.Errorf("host steps not rebuilt from the history: %s", got)
				}
				// In the order they ran: the host's steps in their places, not after the
				// built-in ones.
				var order []string
				for _, s := range j.Steps {
					if s.Name != plan.Terminate && s.Name != plan.Rollback {
						order = append(order, s.Name)
					}
				}
				var ran []string
				for _, s := range j.Report.Steps {
					ran = append(ran, s.Name)
				}
				if strings.Join(order, " ") != strings.Join(ran, " ") || order[1] != "drain-connections" {
					t.Errorf("journal lists %v; the run ran %v", order, ran)
				}
			}
			if filepath.Base(name) == "unknown-node" && (j.Status != "Failed" || !strings.Contains(j.Error, "unknown node")) {
				t.Errorf("unknown node run: %+v", j)
			}
		})
	}
}

// announce is a change of the workflow: a new activity before everything else.
func announce(ctx workflow.Context, node string) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Second})
	_ = workflow.ExecuteActivity(ctx, "AnnounceShutdown", node).Get(ctx, nil)
}

// versionedChange is the change made safely: new runs take the new path, histories of
// old runs replay on the old one.
func versionedChange(ctx workflow.Context, req workflows.ShutdownRequest) (*workflows.ShutdownReport, error) {
	if workflow.GetVersion(ctx, "announce-shutdown", workflow.DefaultVersion, 1) == 1 {
		announce(ctx, req.Node)
	}
	return workflows.GracefulShutdown(ctx, req)
}

// unguardedChange is the same change made unsafely.
func unguardedChange(ctx workflow.Context, req workflows.ShutdownRequest) (*workflows.ShutdownReport, error) {
	announce(ctx, req.Node)
	return workflows.GracefulShutdown(ctx, req)
}

func TestVersionedChangeStillReplaysOldHistories(t *testing.T) {
	for name, file := range histories(t) {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		h, err := Parse(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Replay(h, ReplayOptions{Workflow: versionedChange}); err != nil {
			t.Errorf("%s: the versioned change does not replay: %v", name, err)
		}
		_, err = Replay(h, ReplayOptions{Workflow: unguardedChange})
		var nd *NondeterminismError
		if !errors.Is(err, ErrNondeterministic) || !errors.As(err, &nd) {
			t.Errorf("%s: the unguarded change replays (%v); the replay test would not catch it", name, err)
			continue
		}
		if !strings.Contains(nd.Explanation, "AnnounceShutdown") || !strings.Contains(nd.Explanation, "local activity Lookup") {
			t.Errorf("%s: explanation %q", name, nd.Explanation)
		}
	}
}

func TestParseHistoryRejects(t *testing.T) {
	for name, input := range map[string]string{
		"empty":     "",
		"not json":  "events: []",
		"no events": `{"events": []}`,
		"truncated": `{"events": [{"eventId": "1", "eventType": "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"`,
	} {
		if _, err := Parse(strings.NewReader(input)); !errors.Is(err, ErrBadHistory) {
			t.Errorf("%s: %v, want ErrBadHistory", name, err)
		}
	}
}
