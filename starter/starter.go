// Package starter is the client-side API of Farewell, for ops tooling and the CLI:
// start (or join) a node's shutdown, watch it, ask for its status, list shutdowns.
package starter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

// Errors callers test with errors.Is.
var (
	// ErrUnknownNode: the cluster has no node of that name (or it is an observer).
	ErrUnknownNode = errors.New("unknown node")
	// ErrBadRequest: the request or its plan cannot be run.
	ErrBadRequest = errors.New("bad shutdown request")
	// ErrNoShutdown: the node has no shutdown on record.
	ErrNoShutdown = errors.New("no shutdown on record")
)

// Options configure a Starter.
type Options struct {
	// Namespace of the workflows (for visibility queries).
	Namespace string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Starter starts and watches shutdowns through a Temporal client.
type Starter struct {
	c    client.Client
	opts Options
}

// New builds a Starter on c.
func New(c client.Client, opts Options) *Starter {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	return &Starter{c: c, opts: opts}
}

// Client is the Temporal client the Starter uses.
func (s *Starter) Client() client.Client { return s.c }

// Run identifies one run of a node's shutdown.
type Run struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	// Joined is set when the shutdown was already running and this call joined it.
	Joined bool `json:"joined"`
	// NotApplied lists what the request asked that a joined run does not do (it runs
	// as its own request said): force, reason, plan.
	NotApplied []string `json:"not_applied,omitempty"`
}

// Shutdown starts the shutdown of req.Node, or joins it when one is running: a second
// trigger (CLI, SIGTERM, another tool) never starts a second shutdown of the same node.
// After a closed one, a new run starts. Of two triggers at once, exactly one is told it
// started the run.
func (s *Starter) Shutdown(ctx context.Context, req workflows.ShutdownRequest) (Run, error) {
	if err := req.Validate(); err != nil {
		return Run{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	base := plan.Default()
	if req.Plan != nil {
		base = *req.Plan
	}
	if _, err := req.Override.Apply(base); err != nil {
		return Run{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	req.Trigger = newTrigger()
	id := workflows.WorkflowID(req.Node)
	run, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:            workflows.Summary(req),
		StaticDetails:            workflows.Details(req),
		// Saves a round trip when an orchestrator worker shares this client (dev, demo).
		EnableEagerStart:      true,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.NodeKey.ValueSet(req.Node)),
	}, workflows.WorkflowName, req)
	if err != nil {
		return Run{}, fmt.Errorf("start shutdown of %s: %w", req.Node, err)
	}
	r := Run{WorkflowID: run.GetID(), RunID: run.GetRunID()}
	started, err := s.startedBy(ctx, r, req.Trigger)
	if err != nil {
		return r, err
	}
	if !started {
		r.Joined = true
		if req.Force {
			r.NotApplied = append(r.NotApplied, "force")
		}
		if req.Reason != "" {
			r.NotApplied = append(r.NotApplied, "reason")
		}
		if req.Plan != nil || !req.Override.Empty() {
			r.NotApplied = append(r.NotApplied, "plan")
		}
	}
	s.opts.Logger.Debug("shutdown started", "node", req.Node, "workflow_id", r.WorkflowID, "run_id", r.RunID, "joined", r.Joined)
	return r, nil
}

// startedBy reports whether the run was started by the request carrying trigger: the
// run's first event holds the request that started it.
func (s *Starter) startedBy(ctx context.Context, run Run, trigger string) (bool, error) {
	iter := s.c.GetWorkflowHistory(ctx, run.WorkflowID, run.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !iter.HasNext() {
		return false, fmt.Errorf("read the start of %s: no events", run.WorkflowID)
	}
	first, err := iter.Next()
	if err != nil {
		return false, fmt.Errorf("read the start of %s: %w", run.WorkflowID, err)
	}
	var req workflows.ShutdownRequest
	input := first.GetWorkflowExecutionStartedEventAttributes().GetInput()
	if err := converter.GetDefaultDataConverter().FromPayloads(input, &req); err != nil {
		return false, fmt.Errorf("read the request of %s: %w", run.WorkflowID, err)
	}
	return req.Trigger == trigger, nil
}

func newTrigger() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// safetyPoll is how often Wait checks the run's status besides its long poll, so that
// a missed completion notification costs a second, not the long poll's 20 s.
const safetyPoll = time.Second

// Wait waits for the run to end and returns its report. onProgress, if set, sees the
// report every time a step changes. A shutdown refused for its input returns an error
// matching ErrUnknownNode or ErrBadRequest.
func (s *Starter) Wait(ctx context.Context, run Run, onProgress func(workflows.ShutdownReport)) (*workflows.ShutdownReport, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		report *workflows.ShutdownReport
		err    error
	}
	done := make(chan result, 2)
	get := func() {
		var r result
		var report workflows.ShutdownReport
		if err := s.c.GetWorkflow(ctx, run.WorkflowID, run.RunID).Get(ctx, &report); err != nil {
			r.err = s.explain(err, run)
		} else {
			r.report = &report
		}
		select {
		case done <- r:
		default: // an answer is already there
		}
	}
	go get()

	progressEvery := 100 * time.Millisecond
	if onProgress == nil {
		progressEvery = safetyPoll
	}
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	lastSafety := time.Now()
	closedSeen := false
	var last string
	for {
		select {
		case r := <-done:
			if r.err == nil && onProgress != nil {
				onProgress(*r.report)
			}
			return r.report, r.err
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		if onProgress != nil {
			if p, err := s.progress(ctx, run); err == nil {
				if key := progressKey(p); key != last {
					last = key
					onProgress(*p)
				}
			}
		}
		if time.Since(lastSafety) >= safetyPoll {
			lastSafety = time.Now()
			d, err := s.c.DescribeWorkflowExecution(ctx, run.WorkflowID, run.RunID)
			if err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && !closedSeen {
				closedSeen = true
				go get() // closed: this Get returns at once
			}
		}
	}
}

func progressKey(r *workflows.ShutdownReport) string {
	var b strings.Builder
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "%s=%s;", s.Name, s.Status)
	}
	b.WriteString(string(r.Outcome))
	b.WriteString(";" + r.Waiting)
	if r.ForceReason != "" {
		b.WriteString(";force")
	}
	return b.String()
}

func (s *Starter) progress(ctx context.Context, run Run) (*workflows.ShutdownReport, error) {
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v, err := s.c.QueryWorkflow(qctx, run.WorkflowID, run.RunID, workflows.QueryProgress)
	if err != nil {
		return nil, err
	}
	var r workflows.ShutdownReport
	if err := v.Get(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

// explain turns a workflow failure into an error that says what happened.
func (s *Starter) explain(err error, run Run) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case activities.ErrTypeUnknownNode, activities.ErrTypeNotANode:
			return fmt.Errorf("%w: %s", ErrUnknownNode, appErr.Message())
		case workflows.ErrTypeBadRequest:
			return fmt.Errorf("%w: %s", ErrBadRequest, appErr.Message())
		}
		return fmt.Errorf("shutdown %s failed: %s", run.WorkflowID, appErr.Message())
	}
	var term *temporal.TerminatedError
	if errors.As(err, &term) {
		return fmt.Errorf("shutdown %s was terminated", run.WorkflowID)
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) {
		return fmt.Errorf("shutdown %s was cancelled", run.WorkflowID)
	}
	return fmt.Errorf("shutdown %s: %w", run.WorkflowID, err)
}

// Status is the state of a node's latest shutdown.
type Status struct {
	Run
	// Status is Temporal's: Running, Completed, Failed, Terminated, …
	Status string `json:"status"`
	// Report is the report (so far, while running).
	Report *workflows.ShutdownReport `json:"report,omitempty"`
	// Error says why the run failed, when it did.
	Error string `json:"error,omitempty"`
}

// Status returns the latest shutdown of node: its progress while it runs, its report
// when done.
func (s *Starter) Status(ctx context.Context, node string) (Status, error) {
	if err := plan.ValidateNodeName(node); err != nil {
		return Status{}, fmt.Errorf("%w: node: %v", ErrBadRequest, err)
	}
	id := workflows.WorkflowID(node)
	d, err := s.c.DescribeWorkflowExecution(ctx, id, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return Status{}, fmt.Errorf("%w for node %q", ErrNoShutdown, node)
	}
	if err != nil {
		return Status{}, fmt.Errorf("describe shutdown of %s: %w", node, err)
	}
	info := d.GetWorkflowExecutionInfo()
	st := Status{
		Run:    Run{WorkflowID: id, RunID: info.GetExecution().GetRunId()},
		Status: statusName(info.GetStatus()),
	}
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		if p, err := s.progress(ctx, st.Run); err == nil {
			st.Report = p
		} else {
			st.Error = "progress unavailable (is the orchestrator worker running?): " + err.Error()
		}
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		var r workflows.ShutdownReport
		if err := s.c.GetWorkflow(ctx, id, st.RunID).Get(ctx, &r); err != nil {
			return st, fmt.Errorf("read report of %s: %w", id, err)
		}
		st.Report = &r
	default:
		if err := s.c.GetWorkflow(ctx, id, st.RunID).Get(ctx, nil); err != nil {
			st.Error = s.explain(err, st.Run).Error()
		}
	}
	return st, nil
}

// statusName is Temporal's short name of a run's status: Running, Completed, Failed, …
func statusName(s enumspb.WorkflowExecutionStatus) string { return s.String() }

// ListFilter selects shutdowns to list.
type ListFilter struct {
	// Open and Closed select running or finished runs; neither means both.
	Open, Closed bool
	// Node, if set, selects one node's shutdowns.
	Node string
	// Limit caps the number of runs (0: 100).
	Limit int
}

// Summary is one shutdown run in a list.
type Summary struct {
	Run
	Node    string    `json:"node"`
	Status  string    `json:"status"`
	Outcome string    `json:"outcome,omitempty"`
	Step    string    `json:"step,omitempty"`
	Slow    bool      `json:"slow,omitempty"`
	Started time.Time `json:"started"`
	Closed  time.Time `json:"closed,omitzero"`
}

// List returns shutdown runs, newest first.
func (s *Starter) List(ctx context.Context, f ListFilter) ([]Summary, error) {
	query := fmt.Sprintf("WorkflowType = '%s'", workflows.WorkflowName)
	switch {
	case f.Open && !f.Closed:
		query += " AND ExecutionStatus = 'Running'"
	case f.Closed && !f.Open:
		query += " AND ExecutionStatus != 'Running'"
	}
	if f.Node != "" {
		query += fmt.Sprintf(" AND %s = '%s'", workflows.SearchAttrNode, strings.ReplaceAll(f.Node, "'", ""))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []Summary
	var token []byte
	for len(out) < limit {
		resp, err := s.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: s.opts.Namespace, Query: query, NextPageToken: token, PageSize: int32(min(limit, 1000)),
		})
		if err != nil {
			return nil, fmt.Errorf("list shutdowns: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			sum := Summary{
				Run:     Run{WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId()},
				Status:  statusName(e.GetStatus()),
				Started: e.GetStartTime().AsTime(),
			}
			if e.GetCloseTime() != nil {
				sum.Closed = e.GetCloseTime().AsTime()
			}
			sum.Node, _ = workflows.NodeFromWorkflowID(sum.WorkflowID)
			fields := e.GetSearchAttributes().GetIndexedFields()
			sum.Outcome = keyword(fields[workflows.SearchAttrOutcome].GetData())
			sum.Step = keyword(fields[workflows.SearchAttrStep].GetData())
			sum.Slow = string(fields[workflows.SearchAttrSlow].GetData()) == "true"
			out = append(out, sum)
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			break
		}
	}
	slices.SortStableFunc(out, func(a, b Summary) int { return b.Started.Compare(a.Started) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// keyword decodes a JSON-encoded keyword search attribute payload.
func keyword(data []byte) string {
	return strings.Trim(string(data), `"`)
}
