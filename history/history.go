// Package history reads what a shutdown did from its Temporal event history: export a
// run's history (in the shape of `temporal workflow show --output json`), read one back,
// reconstruct the run's journal from its events, and replay it against the current
// workflow code, explaining in plain words where the code and the history part ways.
package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"

	"github.com/farewell-project/farewell/workflows"
)

// Errors of history handling, tested with errors.Is.
var (
	// ErrBadHistory: the input is not a readable history, or not of a shutdown.
	ErrBadHistory = errors.New("not a shutdown history")
	// ErrNoSuchRun: no workflow or run of that ID.
	ErrNoSuchRun = errors.New("no such shutdown")
)

// Fetch reads the whole history of a run (runID "" means the latest run).
func Fetch(ctx context.Context, c client.Client, workflowID, runID string) (*historypb.History, error) {
	h := &historypb.History{}
	iter := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			var notFound *serviceerror.NotFound
			if errors.As(err, &notFound) {
				return nil, fmt.Errorf("%w: %s %s", ErrNoSuchRun, workflowID, runID)
			}
			return nil, fmt.Errorf("history of %s: %w", workflowID, err)
		}
		h.Events = append(h.Events, e)
	}
	if len(h.Events) == 0 {
		return nil, fmt.Errorf("%w: %s %s", ErrNoSuchRun, workflowID, runID)
	}
	return h, nil
}

// Marshal renders a history as JSON in the shape of `temporal workflow show --output
// json`, so that either tool reads the other's files.
func Marshal(h *historypb.History) ([]byte, error) {
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode history: %w", err)
	}
	return append(b, '\n'), nil
}

// Parse reads a history exported by `farewell history export` or `temporal workflow
// show --output json`, and checks that it is a shutdown's.
func Parse(r io.Reader) (*historypb.History, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadHistory, err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%w: the file is empty", ErrBadHistory)
	}
	h, err := client.HistoryFromJSON(bytes.NewReader(b), client.HistoryJSONOptions{})
	if err != nil {
		return nil, fmt.Errorf("%w: not a Temporal history in JSON: %v", ErrBadHistory, err)
	}
	if err := checkShutdown(h); err != nil {
		return nil, err
	}
	return h, nil
}

func checkShutdown(h *historypb.History) error {
	if len(h.GetEvents()) == 0 {
		return fmt.Errorf("%w: it has no events", ErrBadHistory)
	}
	start := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
	if start == nil {
		return fmt.Errorf("%w: its first event is %s, not WorkflowExecutionStarted", ErrBadHistory, h.GetEvents()[0].GetEventType())
	}
	if name := start.GetWorkflowType().GetName(); name != workflows.WorkflowName {
		return fmt.Errorf("%w: it is a history of workflow type %q, not %s", ErrBadHistory, name, workflows.WorkflowName)
	}
	return nil
}
