package workflows_test

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/history"
	"github.com/farewell-project/farewell/internal/testkit"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

// Every committed run — of this version and of earlier ones — replays against this
// package's code and concludes the report it concluded then, field for field. A change
// that alters what a run of some version does (a version check one off, a branch
// taken for the wrong runs) fails here, in the package that holds the code.
func TestRecordedRunsReplayToTheirOwnReports(t *testing.T) {
	for name, file := range testkit.Histories(t, "..") {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			h, err := history.Parse(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			replayer.RegisterWorkflowWithOptions(workflows.GracefulShutdown, workflow.RegisterOptions{Name: workflows.WorkflowName})
			// Replayed under its own workflow ID, which the report names.
			var req workflows.ShutdownRequest
			start := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
			if err := converter.GetDefaultDataConverter().FromPayloads(start.GetInput(), &req); err != nil {
				t.Fatal(err)
			}
			id := workflows.WorkflowID(req.Node)
			logger := sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
			if err := replayer.ReplayWorkflowHistoryWithOptions(logger, h, worker.ReplayWorkflowHistoryOptions{
				OriginalExecution: workflow.Execution{ID: id, RunID: start.GetOriginalExecutionRunId()},
			}); err != nil {
				t.Fatalf("does not replay: %v", err)
			}
			last := h.GetEvents()[len(h.GetEvents())-1]
			if last.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
				return // a run refused at its start: no report to compare
			}
			var recorded, replayed workflows.ShutdownReport
			if err := converter.GetDefaultDataConverter().FromPayloads(last.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &recorded); err != nil {
				t.Fatal(err)
			}
			// The SDK's replayer keeps the result it replayed; its interface does not say so.
			results, ok := replayer.(interface{ GetWorkflowResult(string, any) error })
			if !ok {
				t.Fatal("the SDK's replayer no longer keeps the replayed result")
			}
			if err := results.GetWorkflowResult(id, &replayed); err != nil {
				t.Fatal(err)
			}
			// Runs of this version conclude the same report, field for field; runs of
			// earlier ones, what they did: reports have gained fields since (who evicted
			// the node, the convergence's verdict), which their runs did not record.
			a, b := decided(recorded), decided(replayed)
			if filepath.Dir(name) == "." {
				a, b = recorded, replayed
			}
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if string(ja) != string(jb) {
				t.Errorf("the replay concludes another report:\nrecorded %s\nreplayed %s", ja, jb)
			}
		})
	}
}

// decided is what a run decided, of its report: how it ended and why, each step's
// status and attempts, and what was done to the node.
func decided(r workflows.ShutdownReport) any {
	type step struct {
		Name     string
		Status   plan.StepStatus
		Attempts int
	}
	var steps []step
	for _, s := range r.Steps {
		steps = append(steps, step{s.Name, s.Status, s.Attempts})
	}
	return struct {
		Outcome                         plan.Outcome
		ForceReason                     string
		Evicted, Terminated, RolledBack bool
		Converged                       bool
		Steps                           []step
	}{r.Outcome, r.ForceReason, r.Evicted, r.Terminated, r.RolledBack, r.Converged, steps}
}
