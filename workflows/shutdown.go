package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/config"
)

// Activity options of the steps around the graceful ones.
const (
	lookupTimeout    = 10 * time.Second
	evictTimeout     = 10 * time.Second
	rollbackTimeout  = 5 * time.Second
	terminateTimeout = 10 * time.Second
	// convergenceSlack is added to the convergence timeout for the activity's own
	// StartToClose, so that the activity reports "not converged" rather than timing out.
	// The cluster activities run as local activities: they use this worker's observer
	// member anyway, and it saves a round trip through the server for each.
	convergenceSlack = 5 * time.Second
)

// Nil pointers through which the workflow names its activities (never dereferenced).
var (
	nodeActs    *activities.NodeActivities
	clusterActs *activities.ClusterActivities
)

// ForceNowRequest is the argument of the force-now update.
type ForceNowRequest struct {
	Reason string `json:"reason,omitempty"`
}

// SkipStepRequest is the argument of the skip-step update.
type SkipStepRequest struct {
	Step   string `json:"step"`
	Reason string `json:"reason,omitempty"`
}

// ExtendTimeoutRequest is the argument of the extend-timeout update.
type ExtendTimeoutRequest struct {
	Step         string        `json:"step"`
	StartToClose time.Duration `json:"start_to_close"`
}

// GracefulShutdown takes one node out of the cluster: lookup, the graceful steps on the
// node's own task queue (each under its timeouts and bounded retries, a failure never
// blocking the next unless its policy says so), a convergence check, and a forced
// eviction when the graceful steps did not get the node out. It ends with the node out
// of the cluster or, when aborted, back in service; never half-stopped.
func GracefulShutdown(ctx workflow.Context, req ShutdownRequest) (*ShutdownReport, error) {
	s, err := newShutdown(ctx, req)
	if err != nil {
		return nil, err
	}
	return s.run(ctx)
}

// shutdown is one run's state. Workflow code: deterministic, no I/O.
type shutdown struct {
	req    ShutdownRequest
	plan   Plan
	report ShutdownReport
	log    log.Logger

	// root is the workflow's context; ctx is the one steps run in: root until
	// deregister is scheduled, a disconnected one after (a cancel is refused from then on).
	root          workflow.Context
	ctx           workflow.Context
	instance      string // the node's process, from the lookup
	deregistered  bool   // the deregister step succeeded
	irreversible  bool   // memberlist on the node shut down: no rollback, cancel refused
	verified      bool   // a convergence check ran
	alreadyOut    bool   // the node was out before the shutdown began
	skipRest      string // why the remaining node steps cannot run (worker gone, node out)
	forceReason   string // set when the graceful steps are to stop and the node be evicted
	cancelCurrent workflow.CancelFunc
	skips         map[string]string // step → why an operator skipped it
	done          bool
}

func newShutdown(ctx workflow.Context, req ShutdownRequest) (*shutdown, error) {
	if strings.TrimSpace(req.Node) == "" {
		return nil, temporal.NewNonRetryableApplicationError("shutdown request names no node", ErrTypeBadRequest, nil)
	}
	plan := req.Plan
	if plan == nil {
		// Recorded in the history, so that a change of defaults never changes a replay.
		var p Plan
		if err := workflow.SideEffect(ctx, func(workflow.Context) any { return DefaultPlan() }).Get(&p); err != nil {
			return nil, err
		}
		plan = &p
	}
	if err := plan.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError("bad plan: "+err.Error(), ErrTypeBadRequest, nil)
	}
	info := workflow.GetInfo(ctx)
	s := &shutdown{
		req:   req,
		plan:  *plan,
		log:   log.With(workflow.GetLogger(ctx), "node", req.Node),
		root:  ctx,
		ctx:   ctx,
		skips: map[string]string{},
		report: ShutdownReport{
			WorkflowID:  info.WorkflowExecution.ID,
			RunID:       info.WorkflowExecution.RunID,
			Node:        req.Node,
			Reason:      req.Reason,
			RequestedBy: req.RequestedBy,
			Started:     workflow.Now(ctx),
		},
	}
	for _, spec := range plan.Steps {
		s.report.Steps = append(s.report.Steps, StepResult{Name: spec.Name, Status: StepPending})
	}
	if err := s.registerHandlers(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// ErrTypeBadRequest: the request or its plan cannot be run.
const ErrTypeBadRequest = "BadRequest"

func (s *shutdown) run(ctx workflow.Context) (*ShutdownReport, error) {
	if span, ok := temporalotel.SpanFromWorkflowContext(ctx); ok && span.SpanContext().IsValid() {
		s.report.TraceID = span.SpanContext().TraceID().String()
	}
	s.upsert(NodeKey.ValueSet(s.req.Node), StepKey.ValueSet("lookup"))
	s.details()

	look, err := s.lookup()
	if err != nil {
		return nil, err
	}
	s.report.NodeState, s.report.NodeInstance, s.instance = string(look.State), look.Instance, look.Instance
	if s.req.Force {
		s.forceReason = "requested: force"
	}
	// Left and evicted are final; dead is not: a node whose network hangs looks dead to
	// its peers while it still serves, and comes back when the network does.
	if look.State == cluster.StateLeft || look.State == cluster.StateEvicted {
		s.alreadyOut = true
		if s.req.RetryOf == "" {
			s.skipRest = fmt.Sprintf("node was already %s when the shutdown began", look.State)
		}
	}
	if look.State == cluster.StateEvicted {
		s.report.Evicted = true
	}
	if len(s.req.SkipSucceeded) > 0 && s.req.RetryInstance != "" && s.req.RetryInstance != look.Instance {
		// What succeeded was done to another process of that name: it counts for nothing.
		s.log.Warn("the node restarted since the run retried: every step runs again", "was", s.req.RetryInstance, "now", look.Instance)
		s.req.SkipSucceeded = nil
	}

	for i, spec := range s.plan.Steps {
		if aborted, report := s.step(ctx, i, spec); aborted {
			return report, nil
		}
	}
	return s.finish(), nil
}

// step runs one graceful step, or records why it is skipped. It reports whether the
// shutdown was aborted (and then the final report).
func (s *shutdown) step(ctx workflow.Context, i int, spec StepSpec) (bool, *ShutdownReport) {
	res := &s.report.Steps[i]
	if why := s.skipReason(spec.Name); why != "" {
		res.Status, res.Note = StepSkipped, why
		if slices.Contains(s.req.SkipSucceeded, spec.Name) {
			res.Status = StepSucceeded
		}
		s.details()
		return false, nil
	}

	if spec.Name == config.StepDeregister {
		// Once the node starts leaving memberlist it cannot be put back: from here on a
		// cancel is refused (and never races a rollback with the leave).
		s.refuseCancel(ctx)
	}
	res.Status, res.Started = StepRunning, workflow.Now(s.ctx)
	s.upsert(StepKey.ValueSet(spec.Name))
	s.details()
	out, err := s.runNodeStep(s.ctx, i, spec)
	s.record(res, spec, out, err)

	if err != nil && s.ctx == s.root && errors.Is(s.root.Err(), workflow.ErrCanceled) {
		// Cancelled before deregister: compensate.
		res.Note = strings.TrimSpace(res.Note + " cancelled by the operator")
		return true, s.abort(ctx, "the shutdown was cancelled")
	}
	switch {
	case err == nil:
		if spec.Name == config.StepDeregister {
			s.deregistered, s.irreversible = true, true
			s.refuseCancel(ctx)
		}
	case isType(err, activities.ErrTypeEvicted):
		s.skipRest = "node was evicted during the shutdown"
		s.report.Evicted = true
	case isType(err, activities.ErrTypeLeaveFailed):
		// memberlist shut down after an unconfirmed leave: the node cannot be put back,
		// but it did not deregister either; the force fallback takes it from here.
		s.irreversible = true
		s.refuseCancel(ctx)
		s.applyPolicy(ctx, spec, res)
	case s.forceReason != "" && isCanceled(err):
		// force-now cut this step short: the eviction comes next.
	default:
		if s.skipRest == "" && isScheduleToStart(err) {
			s.skipRest = fmt.Sprintf("the node's worker did not pick up %s within %s", spec.Name, spec.ScheduleToStart)
		}
		if aborted := s.applyPolicy(ctx, spec, res); aborted {
			return true, s.abort(ctx, fmt.Sprintf("%s %s (policy abort)", spec.Name, res.Status))
		}
	}
	s.details()
	return false, nil
}

// applyPolicy acts on a failed step's on_failure. It reports whether to abort.
func (s *shutdown) applyPolicy(ctx workflow.Context, spec StepSpec, res *StepResult) bool {
	switch spec.OnFailure {
	case config.OnFailureForce:
		if s.forceReason == "" {
			s.forceReason = fmt.Sprintf("%s %s (policy force)", spec.Name, res.Status)
		}
	case config.OnFailureAbort:
		if !s.irreversible {
			return true
		}
		res.Note = strings.TrimSpace(res.Note + " policy abort acts as continue: the node already left memberlist")
	}
	return false
}

func (s *shutdown) skipReason(step string) string {
	switch {
	case slices.Contains(s.req.SkipSucceeded, step):
		return "succeeded in an earlier run (" + s.req.RetryOf + ")"
	case s.skips[step] != "":
		return s.skips[step]
	case s.skipRest != "":
		return "skipped: " + s.skipRest
	case s.forceReason != "":
		return "skipped: forcing eviction (" + s.forceReason + ")"
	}
	return ""
}

// runNodeStep runs a step's activity on the node's task queue with the step's budget.
func (s *shutdown) runNodeStep(ctx workflow.Context, i int, spec StepSpec) (activities.StepOutput, error) {
	stepCtx, cancel := workflow.WithCancel(ctx)
	s.cancelCurrent = cancel
	defer func() { s.cancelCurrent = nil; cancel() }()
	stepCtx = workflow.WithActivityOptions(stepCtx, workflow.ActivityOptions{
		TaskQueue:              NodeTaskQueue(s.req.Node),
		StartToCloseTimeout:    spec.StartToClose,
		ScheduleToStartTimeout: spec.ScheduleToStart,
		ScheduleToCloseTimeout: spec.Budget(),
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        max(spec.Backoff, time.Millisecond),
			BackoffCoefficient:     2,
			MaximumAttempts:        int32(spec.MaxAttempts),
			NonRetryableErrorTypes: activities.NonRetryable,
		},
		Summary: fmt.Sprintf("%d/%d %s on %s", i+1, len(s.plan.Steps), spec.Name, s.req.Node),
	})
	var out activities.StepOutput
	err := workflow.ExecuteActivity(stepCtx, nodeStep(spec.Name), s.stepInput(spec.Name)).Get(stepCtx, &out)
	return out, err
}

func nodeStep(name string) any {
	switch name {
	case config.StepSetGracefullyLeft:
		return nodeActs.SetGracefullyLeft
	case config.StepStopHeartbeat:
		return nodeActs.StopHeartbeat
	case config.StepDeregister:
		return nodeActs.Deregister
	default:
		return nodeActs.StopServices
	}
}

func (s *shutdown) stepInput(step string) activities.StepInput {
	return activities.StepInput{Node: s.req.Node, Instance: s.instance, Step: step, WorkflowID: s.report.WorkflowID}
}

// record fills a step's result from its activity's outcome.
func (s *shutdown) record(res *StepResult, spec StepSpec, out activities.StepOutput, err error) {
	res.DurationMS = workflow.Now(s.ctx).Sub(res.Started).Milliseconds()
	defer func() {
		workflow.GetMetricsHandler(s.ctx).WithTags(map[string]string{"step": spec.Name, "status": string(res.Status)}).
			Timer(MetricStepDuration).Record(time.Duration(res.DurationMS) * time.Millisecond)
	}()
	if err == nil {
		res.Status, res.Attempts = StepSucceeded, int(out.Attempt)
		res.Note = noteFor(out)
		s.log.Info("step succeeded", "step", spec.Name, "attempts", res.Attempts, "duration_ms", res.DurationMS)
		return
	}
	res.Status, res.Attempts, res.Error = StepFailed, attempts(err, spec), errorMessage(err, spec)
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		res.Status = StepTimedOut
	}
	if isCanceled(err) && s.forceReason != "" {
		res.Note = "cut short: " + s.forceReason
	}
	s.log.Warn("step did not succeed; going on", "step", spec.Name, "status", res.Status, "attempts", res.Attempts, "error", res.Error)
}

func noteFor(out activities.StepOutput) string {
	note := out.Note
	if out.AlreadyDone && note == "" {
		note = "work already done"
	}
	var stopped []string
	for _, r := range out.Services {
		if r.AlreadyStopped {
			stopped = append(stopped, r.Name+" (already)")
		} else {
			stopped = append(stopped, r.Name)
		}
	}
	if len(stopped) > 0 && !out.AlreadyDone {
		note = strings.TrimSpace(note + " stopped " + strings.Join(stopped, ", "))
	}
	return note
}

// attempts tells how many attempts of a failed step started: from the attempt the
// activity attached to its error or heartbeat, else from the retry state.
func attempts(err error, spec StepSpec) int {
	var p activities.Progress
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.HasDetails() && appErr.Details(&p) == nil && p.Attempt > 0 {
		return int(p.Attempt)
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		if timeout.HasLastHeartbeatDetails() && timeout.LastHeartbeatDetails(&p) == nil && p.Attempt > 0 {
			return int(p.Attempt)
		}
		if timeout.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START {
			return 0
		}
	}
	var actErr *temporal.ActivityError
	if errors.As(err, &actErr) && actErr.RetryState() == enumspb.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED {
		return spec.MaxAttempts
	}
	return 1
}

// errorMessage says plainly why a step failed, without the activity error's wrapping.
func errorMessage(err error, spec StepSpec) string {
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		switch timeout.TimeoutType() {
		case enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START:
			return fmt.Sprintf("not picked up by the node's worker within %s (schedule-to-start)", spec.ScheduleToStart)
		case enumspb.TIMEOUT_TYPE_START_TO_CLOSE:
			return fmt.Sprintf("timed out after %s (start-to-close)", spec.StartToClose)
		case enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE:
			return fmt.Sprintf("step budget of %s used up (schedule-to-close)", spec.Budget())
		}
		return timeout.Message()
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) {
		return "cancelled"
	}
	return err.Error()
}

func isType(err error, typ string) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == typ
}

func isCanceled(err error) bool {
	var canceled *temporal.CanceledError
	return errors.As(err, &canceled)
}

func isScheduleToStart(err error) bool {
	var timeout *temporal.TimeoutError
	return errors.As(err, &timeout) && timeout.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START
}

// refuseCancel switches the steps to a disconnected context once the node has
// deregistered: it cannot be put back, so a cancel from then on is logged and refused.
func (s *shutdown) refuseCancel(ctx workflow.Context) {
	if s.ctx != ctx {
		return
	}
	s.ctx, _ = workflow.NewDisconnectedContext(ctx)
	workflow.Go(ctx, func(gctx workflow.Context) {
		gctx.Done().Receive(gctx, nil)
		if errors.Is(gctx.Err(), workflow.ErrCanceled) && !s.done {
			s.log.Warn("cancel refused: the node already deregistered; the shutdown runs to its end")
		}
	})
}

func (s *shutdown) lookup() (activities.LookupOutput, error) {
	ctx := workflow.WithLocalActivityOptions(s.ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: lookupTimeout,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: activities.NonRetryable},
		Summary:             "lookup " + s.req.Node,
	})
	var out activities.LookupOutput
	err := workflow.ExecuteLocalActivity(ctx, clusterActs.Lookup, activities.LookupInput{Node: s.req.Node}).Get(ctx, &out)
	if err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && (appErr.Type() == activities.ErrTypeUnknownNode || appErr.Type() == activities.ErrTypeNotANode) {
			s.log.Warn("shutdown refused", "error", appErr.Message())
			return out, temporal.NewNonRetryableApplicationError(appErr.Message(), appErr.Type(), nil)
		}
		return out, err
	}
	return out, nil
}

// abort stops the graceful steps and puts the node back in service (state alive,
// heartbeat restarted). If that fails the node may be half-stopped, so it is forced
// out instead: an aborted shutdown never leaves a zombie.
func (s *shutdown) abort(ctx workflow.Context, why string) *ShutdownReport {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	s.ctx = dctx
	for i := range s.report.Steps {
		if s.report.Steps[i].Status == StepPending {
			s.report.Steps[i].Status, s.report.Steps[i].Note = StepSkipped, "skipped: shutdown aborted"
		}
	}
	if !s.changedAnything() {
		s.report.Error = "aborted before any step changed the node: " + why
		return s.conclude(OutcomeAborted)
	}
	s.log.Warn("aborting the shutdown: rolling back", "why", why)
	spec, _ := s.plan.Step(config.StepSetGracefullyLeft)
	rctx := workflow.WithActivityOptions(dctx, workflow.ActivityOptions{
		TaskQueue:              NodeTaskQueue(s.req.Node),
		StartToCloseTimeout:    rollbackTimeout,
		ScheduleToStartTimeout: max(spec.ScheduleToStart, time.Second),
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 2, NonRetryableErrorTypes: activities.NonRetryable},
		Summary:                "roll back " + s.req.Node,
	})
	err := workflow.ExecuteActivity(rctx, nodeActs.Rollback, s.stepInput(activities.StepRollback)).Get(rctx, nil)
	if err == nil {
		s.report.RolledBack = true
		s.report.Error = "aborted: " + why
		s.conclude(OutcomeAborted)
		return &s.report
	}
	s.report.Error = fmt.Sprintf("aborted (%s), but the rollback failed: %s", why, errorMessage(err, spec))
	if !s.plan.Force && !s.req.Force {
		s.log.Error("rollback failed and force is disabled: the node may be half-stopped", "error", err)
		if s.verify() {
			return s.conclude(OutcomeDegraded)
		}
		return s.conclude(OutcomeFailed)
	}
	s.log.Error("rollback failed; forcing the node out so that it is not left half-stopped", "error", err)
	s.forceReason = "rollback after abort failed"
	return s.finish()
}

// changedAnything reports whether any graceful step succeeded, or ran and may have
// done part of its work.
func (s *shutdown) changedAnything() bool {
	for _, r := range s.report.Steps {
		if r.Status == StepSucceeded || r.Status == StepFailed || (r.Status == StepTimedOut && r.Attempts > 0) {
			return true
		}
	}
	return false
}

// finish checks that the node is out, forces it out when it is not, and concludes.
func (s *shutdown) finish() *ShutdownReport {
	if s.ctx == s.root && errors.Is(s.root.Err(), workflow.ErrCanceled) && !s.irreversible {
		return s.abort(s.root, "the shutdown was cancelled")
	}
	s.refuseCancel(s.root) // from here the node is taken out, whatever happens
	if s.forceReason == "" {
		if s.deregistered || s.alreadyOut || s.report.Evicted {
			if s.verify() {
				if s.report.Evicted {
					return s.conclude(OutcomeForced) // evicted by someone else meanwhile
				}
				return s.conclude(s.gracefulOrDegraded())
			}
			s.forceReason = fmt.Sprintf("not every member saw the node out within %s (pending: %s)",
				s.plan.ConvergenceTimeout, strings.Join(s.report.Pending, ", "))
		} else if s.skipRest != "" {
			s.forceReason = s.skipRest
		} else {
			s.forceReason = "deregister did not succeed"
		}
		if !s.plan.Force {
			s.log.Warn("the node is not known to be out and force is disabled", "why", s.forceReason)
			if !s.irreversible && !s.alreadyOut {
				// Not out, and nobody may force it: put it back in service instead.
				why := "force is disabled and " + s.forceReason
				s.forceReason = ""
				return s.abort(s.root, why)
			}
			if !s.verified && s.verify() {
				s.forceReason = ""
				return s.conclude(OutcomeDegraded)
			}
			s.report.Error = "force disabled and " + s.forceReason
			s.forceReason = ""
			return s.conclude(OutcomeFailed)
		}
	}

	s.log.Warn("force-evicting the node", "why", s.forceReason)
	s.report.ForceReason = s.forceReason
	s.upsert(StepKey.ValueSet("force"))
	s.details()
	ectx := workflow.WithLocalActivityOptions(s.ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: evictTimeout,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: activities.NonRetryable},
		Summary:             "force-evict " + s.req.Node,
	})
	var ev activities.EvictOutput
	reason := "farewell: " + s.forceReason
	if err := workflow.ExecuteLocalActivity(ectx, clusterActs.ForceEvict, activities.EvictInput{
		Node: s.req.Node, Reason: reason, WorkflowID: s.report.WorkflowID,
	}).Get(ectx, &ev); err != nil {
		s.report.Error = "force-evict failed: " + errorMessage(err, StepSpec{})
		s.log.Error("force-evict failed", "error", err)
	} else {
		s.report.Evicted = true
	}
	s.terminate()
	if s.verify() && s.report.Evicted {
		return s.conclude(OutcomeForced)
	}
	if s.report.Error == "" {
		s.report.Error = "the node was evicted, but not every member saw it out: pending " + strings.Join(s.report.Pending, ", ")
	}
	return s.conclude(OutcomeFailed)
}

// terminate asks the node itself to stop for good, best effort: it may be the very
// thing that is broken.
func (s *shutdown) terminate() {
	if s.skipRest != "" {
		return
	}
	spec, _ := s.plan.Step(config.StepStopServices)
	tctx := workflow.WithActivityOptions(s.ctx, workflow.ActivityOptions{
		TaskQueue:              NodeTaskQueue(s.req.Node),
		StartToCloseTimeout:    max(spec.StartToClose, terminateTimeout),
		ScheduleToStartTimeout: max(spec.ScheduleToStart, time.Second),
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 1},
		Summary:                "terminate " + s.req.Node,
	})
	if err := workflow.ExecuteActivity(tctx, nodeActs.Terminate, s.stepInput(activities.StepTerminate)).Get(tctx, nil); err != nil {
		s.log.Warn("the node's own termination did not run; the eviction stands", "error", errorMessage(err, spec))
		return
	}
	s.report.Terminated = true
}

// verify waits until every surviving member sees the node out, or the convergence
// timeout, and records what they said.
func (s *shutdown) verify() bool {
	s.verified = true
	s.upsert(StepKey.ValueSet("convergence"))
	s.details()
	vctx := workflow.WithLocalActivityOptions(s.ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: s.plan.ConvergenceTimeout + convergenceSlack,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2},
		Summary:             "verify convergence on " + s.req.Node,
	})
	var out activities.ConvergenceOutput
	err := workflow.ExecuteLocalActivity(vctx, clusterActs.VerifyConvergence, activities.ConvergenceInput{
		Node: s.req.Node, Timeout: s.plan.ConvergenceTimeout,
	}).Get(vctx, &out)
	if err != nil {
		s.log.Warn("convergence check failed", "error", err)
		s.report.Converged, s.report.Pending = false, []string{"(check failed: " + errorMessage(err, StepSpec{}) + ")"}
		return false
	}
	s.report.Converged, s.report.ConvergenceMS, s.report.Pending = out.Converged, out.TookMS, out.Pending
	workflow.GetMetricsHandler(s.ctx).WithTags(map[string]string{"converged": fmt.Sprint(out.Converged)}).
		Timer(MetricConvergenceDuration).Record(time.Duration(out.TookMS) * time.Millisecond)
	s.report.Views = map[string]string{}
	for member, st := range out.Views {
		s.report.Views[member] = string(st)
	}
	return out.Converged
}

func (s *shutdown) gracefulOrDegraded() Outcome {
	for _, r := range s.report.Steps {
		if r.Status != StepSucceeded {
			return OutcomeDegraded
		}
	}
	return OutcomeGraceful
}

// conclude sets the outcome and the totals, and publishes them.
func (s *shutdown) conclude(o Outcome) *ShutdownReport {
	s.done = true
	r := &s.report
	r.Outcome = o
	r.Finished = workflow.Now(s.ctx)
	r.TotalMS = r.Finished.Sub(r.Started).Milliseconds()
	var slowest int64 = -1
	for _, st := range r.Steps {
		if st.DurationMS > slowest {
			slowest, r.SlowestStep = st.DurationMS, st.Name
		}
	}
	r.Slow = r.TotalMS > s.plan.SlowThreshold.Milliseconds()
	s.upsert(OutcomeKey.ValueSet(string(o)), StepKey.ValueSet("done"), SlowKey.ValueSet(r.Slow))
	metrics := workflow.GetMetricsHandler(s.ctx)
	byOutcome := metrics.WithTags(map[string]string{"outcome": string(o)})
	byOutcome.Timer(MetricShutdownDuration).Record(time.Duration(r.TotalMS) * time.Millisecond)
	byOutcome.Counter(MetricShutdowns).Inc(1)
	if r.Slow {
		metrics.Counter(MetricSlowShutdowns).Inc(1)
		s.log.Warn("slow shutdown", "total_ms", r.TotalMS, "threshold", s.plan.SlowThreshold, "slowest_step", r.SlowestStep)
	}
	switch o {
	case OutcomeFailed:
		s.log.Error("SHUTDOWN FAILED: the node is neither out of the cluster nor back in service", "error", r.Error)
	default:
		s.log.Info("shutdown finished", "outcome", o, "total_ms", r.TotalMS, "converged", r.Converged)
	}
	s.details()
	return r
}

func (s *shutdown) upsert(updates ...temporal.SearchAttributeUpdate) {
	if err := workflow.UpsertTypedSearchAttributes(s.ctx, updates...); err != nil {
		s.log.Warn("search attributes not updated", "error", err)
	}
}

// details publishes the step table shown in the Temporal UI.
func (s *shutdown) details() {
	workflow.SetCurrentDetails(s.ctx, s.report.Markdown())
}
