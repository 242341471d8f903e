package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/plan"
)

// StepFault is a fault a demo or test injects into a node step.
type StepFault string

const (
	// FaultHang makes the step block until its context ends (its StartToClose), or until
	// the fault is cleared: then the step goes on and does its work.
	FaultHang StepFault = "hang"
	// FaultError makes every attempt of the step fail.
	FaultError StepFault = "error"
)

// Faults holds the step faults of a node, switched at run time. Safe for concurrent use;
// the zero value injects nothing.
type Faults struct {
	mu      sync.Mutex
	faults  map[string]StepFault
	changed chan struct{} // closed and replaced at every Set
}

// Set injects f into step ("" clears it, releasing a step that hangs).
func (f *Faults) Set(step string, fault StepFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.faults == nil {
		f.faults = map[string]StepFault{}
	}
	if f.changed != nil {
		close(f.changed)
	}
	f.changed = make(chan struct{})
	if fault == "" {
		delete(f.faults, step)
		return
	}
	f.faults[step] = fault
}

// hang blocks while step's fault is hang, until ctx ends; it reports whether the fault
// was cleared (the step goes on) rather than ctx ending.
func (f *Faults) hang(ctx context.Context, step string) bool {
	for {
		f.mu.Lock()
		fault, changed := f.faults[step], f.changed
		f.mu.Unlock()
		if fault != FaultHang {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		}
	}
}

// Get returns the fault of step, if any.
func (f *Faults) Get(step string) StepFault {
	if f == nil {
		return ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.faults[step]
}

// ParseStepFault reads STEP=hang|error.
func ParseStepFault(s string) (string, StepFault, error) {
	step, mode, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("fault %q: want STEP=hang or STEP=error", s)
	}
	if !plan.IsBuiltin(step) && step != plan.Rollback && step != plan.Terminate {
		return "", "", fmt.Errorf("fault %q: unknown step %q (steps are %s)", s, step, strings.Join(plan.Builtin(), ", "))
	}
	switch StepFault(mode) {
	case FaultHang, FaultError:
		return step, StepFault(mode), nil
	}
	return "", "", fmt.Errorf("fault %q: want hang or error, not %q", s, mode)
}

// NodeActivities are the shutdown steps that run on the node itself, served only by
// the node's own worker from its own task queue. Each checks that the request names
// this node, is idempotent (a second run finds its work done and says so), honours its
// context and returns before its StartToClose so that the workflow learns why it
// failed rather than only that it timed out.
type NodeActivities struct {
	Member Member
	// Faults, if set, injects failures (demos and tests).
	Faults *Faults
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Tracer makes the child spans of the real work (metadata broadcast, heartbeat
	// stop, memberlist leave, each service's stop); nil means the global provider's.
	Tracer trace.Tracer
	// Plan supplies a step's StartToClose when it is called with no deadline (outside
	// Temporal); the zero value means plan.Default.
	Plan plan.Plan
	// Host are the host application's own steps (agent.Step), by name, and HostPlan
	// their specs and places, as HostSteps tells them to the workflow.
	Host     map[string]HostStepFunc
	HostPlan []plan.HostStep
}

// HostStepFunc is a step of the host application's own. It runs on the node's worker
// under the step's StartToClose (ctx's deadline, with a margin) and must honour ctx; it
// may run more than once (a retry, a retried shutdown), so it must be safe to run again.
// An error fails the attempt; the step's attempts and failure policy decide what follows.
type HostStepFunc func(ctx context.Context) error

// HostSteps tells the shutdown the steps of the host's own, with their places.
func (a *NodeActivities) HostSteps(ctx context.Context, in StepInput) ([]plan.HostStep, error) {
	switch {
	case in.Node != a.Member.Name():
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("wrong node: the steps of %q were asked of %q", in.Node, a.Member.Name()), ErrTypeWrongNode, nil)
	case in.Instance != a.Member.Instance():
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("process %s of %s is gone: this is another process (%s) under that name", in.Instance, in.Node, a.Member.Instance()),
			ErrTypeProcessGone, nil)
	}
	return a.HostPlan, nil
}

// RunHostStep runs one of the host's own steps: in.Step names it.
func (a *NodeActivities) RunHostStep(ctx context.Context, in StepInput) (StepOutput, error) {
	ctx, out, done, err := a.begin(ctx, in, in.Step)
	if err != nil {
		return a.fail(out, err)
	}
	defer done()
	f := a.Host[in.Step]
	if f == nil {
		return a.fail(out, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("this node has no step %q (its host registered %s)", in.Step, strings.Join(slices.Sorted(maps.Keys(a.Host)), ", ")), ErrTypeNoSuchStep, nil))
	}
	sctx, span := a.span(ctx, in.Step, in, out)
	err = guard(sctx, f)
	endSpan(span, err)
	if err != nil {
		return a.fail(out, fmt.Errorf("%s: %w", in.Step, err))
	}
	return out, nil
}

// guard runs a host's step, turning a panic into an error: a host's bug fails its step,
// never the node's worker.
func guard(ctx context.Context, f HostStepFunc) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f(ctx)
}

// timeout is what a step may take: its context's deadline, else the plan's StartToClose.
func (a *NodeActivities) timeout(ctx context.Context, step string) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	p := a.Plan
	if len(p.Steps) == 0 {
		p = plan.Default()
	}
	if s, ok := p.Step(step); ok {
		return s.StartToClose
	}
	return plan.TerminateTimeout
}

// SetGracefullyLeft publishes the node's state as leaving and waits until another
// member confirms it: the analogue of Proto.Actor's SetStateAsync(GracefullyLeft), the
// call that hung in the original bug. Here it is bounded.
func (a *NodeActivities) SetGracefullyLeft(ctx context.Context, in StepInput) (StepOutput, error) {
	ctx, out, done, err := a.begin(ctx, in, plan.SetGracefullyLeft)
	if err != nil {
		return a.fail(out, err)
	}
	defer done()
	m := a.Member
	if left, _ := m.Left(); left {
		return a.alreadyDone(ctx, in.Step, out, "node already left the cluster")
	}
	if m.State() == StateLeaving {
		// SetState is a no-op when leaving was already confirmed, and retries the
		// broadcast when it was not.
		out.Note = "state was already leaving"
	}
	sctx, span := a.span(ctx, "metadata broadcast", in, out)
	err = m.SetState(sctx, StateLeaving)
	endSpan(span, err)
	if err != nil {
		return a.fail(out, a.classify(err))
	}
	return out, nil
}

// StopHeartbeat stops the node's application heartbeat. Peers do not flag a leaving
// node whose heartbeat stops as blocked.
func (a *NodeActivities) StopHeartbeat(ctx context.Context, in StepInput) (StepOutput, error) {
	ctx, out, done, err := a.begin(ctx, in, plan.StopHeartbeat)
	if err != nil {
		return a.fail(out, err)
	}
	defer done()
	if !a.Member.HeartbeatRunning() {
		return a.alreadyDone(ctx, in.Step, out, "heartbeat already stopped")
	}
	_, span := a.span(ctx, "heartbeat stop", in, out)
	a.Member.StopHeartbeat()
	endSpan(span, nil)
	return out, nil
}

// Deregister leaves the memberlist cluster (Leave, bounded, then Shutdown): peers see
// the node left. If the leave is not confirmed the node still shuts its memberlist
// down, and the step fails: peers will see it dead, or evicted by the force fallback.
func (a *NodeActivities) Deregister(ctx context.Context, in StepInput) (StepOutput, error) {
	ctx, out, done, err := a.begin(ctx, in, plan.Deregister)
	if err != nil {
		return a.fail(out, err)
	}
	defer done()
	m := a.Member
	if left, leaveErr := m.Left(); left {
		if leaveErr != nil {
			return a.fail(out, temporal.NewNonRetryableApplicationError(
				"memberlist already shut down, not cleanly: "+leaveErr.Error(), ErrTypeLeaveFailed, leaveErr))
		}
		return a.alreadyDone(ctx, in.Step, out, "node already left the cluster")
	}
	_, span := a.span(ctx, "memberlist leave", in, out)
	err = m.Leave(a.timeout(ctx, plan.Deregister))
	endSpan(span, err)
	if err != nil {
		return a.fail(out, temporal.NewNonRetryableApplicationError(
			"leave not confirmed; memberlist shut down anyway: "+err.Error(), ErrTypeLeaveFailed, err))
	}
	return out, nil
}

// StopServices stops the node's services in reverse registration order, each under its
// own timeout, heartbeating the ones stopped so far. Services stopped by an earlier
// attempt are not stopped again: a retry resumes.
func (a *NodeActivities) StopServices(ctx context.Context, in StepInput) (StepOutput, error) {
	ctx, out, done, err := a.begin(ctx, in, plan.StopServices)
	if err != nil {
		return a.fail(out, err)
	}
	defer done()
	if len(a.Member.RunningServices()) == 0 {
		out.Services = a.Member.StopServices(ctx, nil)
		return a.alreadyDone(ctx, in.Step, out, "every service already stopped")
	}
	var stopped []string
	out.Services = a.Member.StopServices(ctx, func(r ServiceResult) {
		if r.Status == ServiceStopped {
			stopped = append(stopped, r.Name)
		}
		a.serviceSpan(ctx, in, out, r)
		a.heartbeat(ctx, Progress{Attempt: out.Attempt, Stopped: stopped})
	})
	if err := FailedServices(out.Services); err != nil {
		return a.fail(out, fmt.Errorf("stop services: %w", err))
	}
	return out, nil
}

// Rollback puts a node whose shutdown was aborted back in service: state alive
// (confirmed by a peer) and heartbeat restarted. It cannot undo a leave.
func (a *NodeActivities) Rollback(ctx context.Context, in StepInput) (StepOutput, error) {
	ctx, out, done, err := a.begin(ctx, in, plan.Rollback)
	if err != nil {
		return a.fail(out, err)
	}
	defer done()
	m := a.Member
	if left, _ := m.Left(); left {
		return a.fail(out, temporal.NewNonRetryableApplicationError("cannot roll back: the node already left the cluster", ErrTypeCannotRollBack, nil))
	}
	if running, all := m.RunningServices(), m.Services(); len(running) < len(all) {
		// Stopped services cannot be started again from here: alive but not serving
		// would be a zombie, so the shutdown must take the node out instead.
		return a.fail(out, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("cannot roll back: %d of %d services were stopped already", len(all)-len(running), len(all)), ErrTypeCannotRollBack, nil))
	}
	sctx, span := a.span(ctx, "metadata broadcast", in, out)
	err = m.SetState(sctx, StateAlive)
	endSpan(span, err)
	if err != nil {
		return a.fail(out, a.classify(err))
	}
	m.StartHeartbeat()
	if !m.HeartbeatRunning() {
		return a.fail(out, temporal.NewNonRetryableApplicationError("cannot roll back: the heartbeat did not restart (the node is leaving)", ErrTypeCannotRollBack, nil))
	}
	return out, nil
}

// Terminate is the node's part of a forced eviction: services stopped, heartbeat
// stopped, memberlist shut down without a leave.
func (a *NodeActivities) Terminate(ctx context.Context, in StepInput) (StepOutput, error) {
	ctx, out, done, err := a.begin(ctx, in, plan.Terminate)
	if err != nil {
		return a.fail(out, err)
	}
	defer done()
	_, span := a.span(ctx, "terminate", in, out)
	out.Services = a.Member.Terminate(ctx)
	err = FailedServices(out.Services)
	endSpan(span, err)
	if err != nil {
		out.Note = "memberlist shut down; some services did not stop: " + err.Error()
	}
	return out, nil
}

// stepMargin is kept between an activity's own deadline and its StartToClose, so that
// it returns an explanation before the server times it out.
func stepMargin(remaining time.Duration) time.Duration {
	return min(remaining/10, 250*time.Millisecond)
}

// begin checks the request, records the attempt, applies an injected fault and
// narrows ctx to leave a margin before the StartToClose.
func (a *NodeActivities) begin(ctx context.Context, in StepInput, step string) (context.Context, StepOutput, func(), error) {
	out := StepOutput{Attempt: 1}
	if activity.IsActivity(ctx) {
		out.Attempt = activity.GetInfo(ctx).Attempt
	}
	nothing := func() {}
	if in.Node != a.Member.Name() {
		return ctx, out, nothing, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("wrong node: step %s is for %q, this is %q", step, in.Node, a.Member.Name()), ErrTypeWrongNode, nil)
	}
	if activity.IsActivity(ctx) {
		// Only the node's own shutdown may run its steps: not another workflow that
		// learned the queue's name.
		info := activity.GetInfo(ctx)
		if info.WorkflowType == nil || info.WorkflowType.Name != ShutdownWorkflowType ||
			info.WorkflowExecution.ID != ShutdownWorkflowIDPrefix+in.Node {
			typ := ""
			if info.WorkflowType != nil {
				typ = info.WorkflowType.Name
			}
			return ctx, out, nothing, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("refused: step %s of %s was asked for by workflow %s of type %q; only %s%s (%s) runs this node's steps",
					step, in.Node, info.WorkflowExecution.ID, typ, ShutdownWorkflowIDPrefix, in.Node, ShutdownWorkflowType), ErrTypeWrongNode, nil)
		}
	}
	if in.Instance == "" {
		return ctx, out, nothing, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("step %s for %s names no process instance: refused", step, in.Node), ErrTypeWrongNode, nil)
	}
	if in.Instance != a.Member.Instance() {
		return ctx, out, nothing, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("process %s of %s is gone: this is another process (%s) under that name; it is not touched",
				in.Instance, in.Node, a.Member.Instance()), ErrTypeProcessGone, nil)
	}
	if by, reason, evicted := a.Member.Evicted(); evicted && step != plan.Terminate {
		return ctx, out, nothing, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("node %s was evicted by %s (%s)", in.Node, by, reason), ErrTypeEvicted, nil)
	}
	ctx, stopBeating := a.keepBeating(ctx)
	a.heartbeat(ctx, Progress{Attempt: out.Attempt})
	a.logger(ctx, step).Info("step started")

	switch a.Faults.Get(step) {
	case FaultHang:
		a.logger(ctx, step).Warn("injected fault: step hangs until its timeout")
		if !a.Faults.hang(ctx, step) {
			stopBeating()
			return ctx, out, nothing, ctx.Err()
		}
		a.logger(ctx, step).Info("injected fault cleared: the step goes on")
	case FaultError:
		stopBeating()
		return ctx, out, nothing, temporal.NewApplicationError(fmt.Sprintf("injected fault: %s fails", step), ErrTypeInjected)
	}

	done := stopBeating
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-stepMargin(time.Until(dl))))
		done = func() { cancel(); stopBeating() }
	}
	return ctx, out, done, nil
}

// progressKey holds, in a step's context, the progress its heartbeats carry.
type progressKey struct{}

type progressHolder struct {
	mu sync.Mutex
	p  Progress
}

// keepBeating heartbeats the step's latest progress a few times per heartbeat timeout
// while it runs, so that a node process that dies mid-step is noticed within that
// timeout rather than at the step's StartToClose. The returned func stops it.
func (a *NodeActivities) keepBeating(ctx context.Context) (context.Context, func()) {
	if !activity.IsActivity(ctx) || activity.GetInfo(ctx).HeartbeatTimeout <= 0 {
		return ctx, func() {}
	}
	h := &progressHolder{}
	ctx = context.WithValue(ctx, progressKey{}, h)
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(max(activity.GetInfo(ctx).HeartbeatTimeout/4, 50*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				h.mu.Lock()
				p := h.p
				h.mu.Unlock()
				activity.RecordHeartbeat(ctx, p)
			}
		}
	}()
	return ctx, sync.OnceFunc(func() { close(stop) })
}

// fail attaches the attempt to err, so that the workflow can report how many attempts
// ran, keeping the error's type and whether it may be retried.
func (a *NodeActivities) fail(out StepOutput, err error) (StepOutput, error) {
	if err == nil {
		return out, nil
	}
	msg, typ, nonRetryable := err.Error(), "StepFailed", false
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		msg, typ, nonRetryable = appErr.Message(), appErr.Type(), appErr.NonRetryable()
	}
	return out, temporal.NewApplicationErrorWithOptions(msg, typ, temporal.ApplicationErrorOptions{
		NonRetryable: nonRetryable,
		Details:      []any{Progress{Attempt: out.Attempt}},
	})
}

func (a *NodeActivities) alreadyDone(ctx context.Context, step string, out StepOutput, note string) (StepOutput, error) {
	out.AlreadyDone, out.Note = true, note
	a.logger(ctx, step).Info("step found its work already done", "note", note)
	return out, nil
}

// classify turns a cluster error into the error the workflow should see.
func (a *NodeActivities) classify(err error) error {
	switch {
	case errors.Is(err, ErrEvicted):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeEvicted, err)
	case errors.Is(err, ErrDeparted):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeCannotRollBack, err)
	}
	return err
}

func (a *NodeActivities) heartbeat(ctx context.Context, p Progress) {
	if h, ok := ctx.Value(progressKey{}).(*progressHolder); ok {
		h.mu.Lock()
		h.p = p
		h.mu.Unlock()
	}
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, p)
	}
}

// logger carries what every line from a step needs: node, workflow and run IDs,
// activity and attempt, trace and span IDs.
func (a *NodeActivities) logger(ctx context.Context, step string) *slog.Logger {
	l := a.Logger
	if l == nil {
		l = slog.Default()
	}
	l = l.With("node", a.Member.Name())
	if step != "" {
		l = l.With("step", step)
	}
	if activity.IsActivity(ctx) {
		info := activity.GetInfo(ctx)
		l = l.With("workflow_id", info.WorkflowExecution.ID, "run_id", info.WorkflowExecution.RunID,
			"activity", info.ActivityType.Name, "attempt", info.Attempt)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		l = l.With("trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
	}
	return l
}

func (a *NodeActivities) tracer() trace.Tracer {
	if a.Tracer != nil {
		return a.Tracer
	}
	return otel.Tracer(tracerName)
}

const tracerName = "github.com/farewell-project/farewell/activities"

// span starts a child span of the step's activity span for a piece of real work.
func (a *NodeActivities) span(ctx context.Context, name string, in StepInput, out StepOutput) (context.Context, trace.Span) {
	return a.tracer().Start(ctx, name, trace.WithAttributes(
		attribute.String("farewell.node", in.Node),
		attribute.String("farewell.step", in.Step),
		attribute.Int("farewell.attempt", int(out.Attempt)),
	))
}

// serviceSpan records one service's stop, after the fact, over the time it took.
func (a *NodeActivities) serviceSpan(ctx context.Context, in StepInput, out StepOutput, r ServiceResult) {
	end := time.Now()
	_, span := a.tracer().Start(ctx, "service stop", trace.WithTimestamp(end.Add(-r.Duration.Std())), trace.WithAttributes(
		attribute.String("farewell.node", in.Node),
		attribute.String("farewell.step", in.Step),
		attribute.Int("farewell.attempt", int(out.Attempt)),
		attribute.String("farewell.service", r.Name),
		attribute.Bool("farewell.already_stopped", r.AlreadyStopped),
	))
	var err error
	if r.Status != ServiceStopped {
		err = fmt.Errorf("%s %s: %s", r.Name, r.Status, r.Error)
	}
	endSpan(span, err, trace.WithTimestamp(end))
}

// endSpan records the outcome on span and ends it.
func endSpan(span trace.Span, err error, opts ...trace.SpanEndOption) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attribute.String("farewell.outcome", "failed"))
	} else {
		span.SetAttributes(attribute.String("farewell.outcome", "ok"))
	}
	span.End(opts...)
}
