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
	"github.com/farewell-project/farewell/plan"
)

// convergenceHeartbeat is how long the convergence check may go silent before its
// worker is taken to be gone (it heartbeats at every poll, ten times a second).
const convergenceHeartbeat = 5 * time.Second

// Nil pointers through which the workflow names its activities (never dereferenced).
var (
	nodeActs    *activities.NodeActivities
	clusterActs *activities.ClusterActivities
)

// Shutdowns runs GracefulShutdown with the plan the orchestrator worker is configured
// with: a request that carries no plan gets it, recorded once in the run's history.
type Shutdowns struct {
	Plan plan.Plan
	// Limits are the cluster's disruption budget (budget.*), which the Budget
	// workflow records whenever they change.
	Limits plan.Limits
}

// GracefulShutdown runs with the default plan as the orchestrator's (tests, replays).
func GracefulShutdown(ctx workflow.Context, req ShutdownRequest) (*ShutdownReport, error) {
	return (&Shutdowns{Plan: plan.Default()}).GracefulShutdown(ctx, req)
}

// GracefulShutdown takes one node out of the cluster: lookup, the graceful steps on the
// node's own task queue (each under its timeouts and bounded retries, a failure never
// blocking the next unless its policy says so), a convergence check, and a forced
// eviction when the graceful steps did not get the node out. It ends with the node out
// of the cluster or, when aborted, back in service; never half-stopped. What it does
// after the steps is plan.Decide's to say; this is the driver.
func (w *Shutdowns) GracefulShutdown(ctx workflow.Context, req ShutdownRequest) (*ShutdownReport, error) {
	s, err := w.newShutdown(ctx, req)
	if err != nil {
		return nil, err
	}
	return s.run(ctx)
}

// shutdown is one run's state. Workflow code: deterministic, no I/O.
type shutdown struct {
	req     ShutdownRequest
	plan    plan.Plan
	version workflow.Version
	report  ShutdownReport
	facts   plan.Facts
	log     log.Logger

	// root is the workflow's context; ctx is the one steps run in: root until
	// deregister is scheduled, a disconnected one after (a cancel is refused from then on).
	root          workflow.Context
	ctx           workflow.Context
	instance      string // the node's process, from the lookup
	cancelCurrent workflow.CancelFunc
	skips         map[string]string // step → why an operator skipped it
	done          bool
	atStep        string      // the step the run is at, for the list's FarewellStep column
	listed        bool        // the column follows the run's steps (see stepColumnAfter)
	listGen       int         // which listAfter may still make it follow them
	leased        bool        // holds a lease of the budget
	limits        plan.Limits // the cluster's budget, as the orchestrator was configured
}

// Versions of the workflow's decisions. A run keeps the version it started with, so
// that its history replays on later code (workflow.GetVersion).
const (
	// versionMemo writes the final step table to the run's memo.
	versionMemo = 1
	// versionProcess acts on the looked-up process only (a newer one is never
	// touched), counts an eviction only when another member confirmed it, checks
	// convergence as a heartbeating activity with a quorum (unverified when too few
	// answer), terminates a node whose services did not all stop, and heartbeats node
	// steps.
	versionProcess = 2
	// versionBudget takes a lease from the cluster's budget before the first step
	// and gives it back at the end.
	versionBudget = 3
	// versionHostSteps asks a node whose host has steps of its own for them, and runs
	// them among the built-in ones; a node forced out after it deregistered (a step
	// after deregister failed, policy force) is still terminated; a run whose drain
	// holds its lease leaves the lease to the drain to give back.
	versionHostSteps = 4
	// versionBudgetQueue asks the budget only when the cluster has limits (budget.*,
	// recorded), and waits for a lease outside the budget: in its queue, until the
	// budget signals that it granted it (or, every budgetRecheck, asking again). And a
	// node that shut its memberlist down and stopped its services by itself is out,
	// though nobody confirmed its leave, eviction or termination (found by the soak).
	versionBudgetQueue = 5
	// versionStepColumn shows the step in the list's FarewellStep column only once the
	// run is stepColumnAfter old (see showStep).
	versionStepColumn = 6
	// versionGiveBackByActivity gives a lease that came by signal back from a local
	// activity (a signal the budget gets at once) instead of a signal command (a transfer
	// task on the server first): the next in the budget's queue starts sooner.
	versionGiveBackByActivity = 7
)

// stepColumnAfter is how old a run is when the list's FarewellStep column starts to
// follow its steps. Before, the column would change faster than anyone reads it, and
// every change is a write to Temporal's visibility store: seven of them were the
// largest cost of a fast shutdown (P4 went from 0.65 to 0.86–0.92 of a no-op workflow's
// throughput without them). A run still going after a second shows its step at once,
// and every step after; the step table in its details is always current.
const stepColumnAfter = time.Second

func (w *Shutdowns) newShutdown(ctx workflow.Context, req ShutdownRequest) (*shutdown, error) {
	if err := req.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadRequest, nil)
	}
	p := req.Plan
	if p == nil {
		// Recorded in the history, so that a change of the worker's plan never changes
		// a replay.
		var recorded plan.Plan
		if err := workflow.SideEffect(ctx, func(workflow.Context) any { return w.Plan }).Get(&recorded); err != nil {
			return nil, err
		}
		p = &recorded
	}
	effective, err := req.Override.Apply(*p)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("bad plan: "+err.Error(), ErrTypeBadRequest, nil)
	}
	info := workflow.GetInfo(ctx)
	s := &shutdown{
		req:     req,
		plan:    effective,
		version: workflow.GetVersion(ctx, "farewell", workflow.DefaultVersion, versionGiveBackByActivity),
		log:     log.With(workflow.GetLogger(ctx), "node", req.Node),
		root:    ctx,
		ctx:     ctx,
		skips:   map[string]string{},
		report: ShutdownReport{
			WorkflowID:  info.WorkflowExecution.ID,
			RunID:       info.WorkflowExecution.RunID,
			Node:        req.Node,
			Reason:      req.Reason,
			RequestedBy: req.RequestedBy,
			Started:     workflow.Now(ctx),
		},
		facts: plan.Facts{CanEvict: true, CanVerify: true, ForceAllowed: effective.Force || req.Force,
			ServicesStopped: effective.Index(plan.StopServices) < 0},
	}
	if s.version >= versionBudgetQueue {
		// Recorded, like the plan: a change of the worker's budget.* never changes a replay.
		if err := workflow.SideEffect(ctx, func(workflow.Context) any { return w.Limits }).Get(&s.limits); err != nil {
			return nil, err
		}
	}
	s.facts.TerminateUnstopped = s.version >= versionProcess
	s.facts.TerminateLeft = s.version >= versionHostSteps
	s.facts.LeftAloneIsOut = s.version >= versionBudgetQueue
	for _, spec := range effective.Steps {
		s.report.Steps = append(s.report.Steps, plan.StepResult{Name: spec.Name, Status: plan.StepPending})
	}
	if err := s.registerHandlers(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *shutdown) run(ctx workflow.Context) (*ShutdownReport, error) {
	if span, ok := temporalotel.SpanFromWorkflowContext(ctx); ok && span.SpanContext().IsValid() {
		s.report.TraceID = span.SpanContext().TraceID().String()
	}
	s.listStart()
	s.details()

	look, err := s.lookup()
	if err != nil {
		return nil, err
	}
	s.report.NodeStateAtStart, s.report.NodeState = look.State, look.State
	s.report.NodeInstance, s.instance = look.Instance, look.Instance
	if s.req.Force {
		s.facts.ForceReason = "force was requested"
	}
	// Left and evicted are final; dead is not: a node whose network hangs looks dead to
	// its peers while it still serves, and comes back when the network does.
	if look.State == activities.StateLeft || look.State == activities.StateEvicted {
		s.facts.AlreadyOut = true
		// A retry runs its steps so each can say its work is done; a forced run still
		// terminates a process that was evicted but lives on (the watchdog's zombie).
		forceZombie := s.req.Force && look.State == activities.StateEvicted && s.version >= versionProcess
		if s.req.RetryOf == "" && !forceZombie {
			s.facts.SkipRest = fmt.Sprintf("node was already %s when the shutdown began", look.State)
		}
	}
	if look.State == activities.StateEvicted {
		s.report.Evicted = true
	}
	if len(s.req.SkipSucceeded) > 0 && s.req.RetryInstance != "" && s.req.RetryInstance != look.Instance {
		// What succeeded was done to another process of that name: it counts for nothing.
		s.log.Warn("the node restarted since the run retried: every step runs again", "was", s.req.RetryInstance, "now", look.Instance)
		s.req.SkipSucceeded = nil
	}

	if s.version >= versionHostSteps && look.Steps > 0 && s.facts.SkipRest == "" {
		s.hostSteps()
	}
	if s.version >= versionBudget && !s.facts.AlreadyOut {
		s.lease()
	}
	for i, spec := range s.plan.Steps {
		if s.facts.AbortReason != "" {
			break // cancelled while waiting for the budget
		}
		if stop := s.step(ctx, i, spec); stop {
			break
		}
	}
	return s.finish(), nil
}

// Waiting for the budget.
const (
	// budgetWait is how long one request waits inside the budget for a lease to free
	// up; the shutdown asks again after it, so that its progress stays current.
	budgetWait = 10 * time.Second
	// budgetRetry is how long a shutdown the floor holds back waits before it asks
	// again (nodes joining is what frees it).
	budgetRetry = 5 * time.Second
	// budgetRecheck is how long a shutdown in the budget's queue waits for its signal
	// before it asks again (in case the signal was lost): it keeps its place.
	budgetRecheck = 30 * time.Second
)

// lease takes a lease from the cluster's budget before the first step, waiting while
// the budget is full, with the reason in its progress. A node's own SIGTERM is never
// held back; nor is a run whose drain holds its lease. A cancel while waiting aborts
// the shutdown before anything changed.
func (s *shutdown) lease() {
	if s.req.Leased {
		s.leased = true
		return
	}
	if s.version >= versionBudgetQueue {
		s.leaseBySignal()
		return
	}
	start := workflow.Now(s.ctx)
	req := activities.LeaseRequest{Holder: s.report.WorkflowID, Run: s.report.RunID, Node: s.req.Node, Drain: s.req.Drain,
		Unblockable: s.req.Unblockable, Wait: plan.Duration(budgetWait)}
	for {
		lctx := workflow.WithLocalActivityOptions(s.ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: budgetWait + 20*time.Second,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2, NonRetryableErrorTypes: []string{activities.ErrTypeNoBudget}},
			Summary:             "lease from the budget for " + s.req.Node,
		})
		var g activities.LeaseGrant
		err := workflow.ExecuteLocalActivity(lctx, clusterActs.AcquireLease, req).Get(lctx, &g)
		switch {
		case errors.Is(s.ctx.Err(), workflow.ErrCanceled):
			s.facts.AbortReason = "the shutdown was cancelled while it waited for the budget"
			s.report.Waiting = ""
			return
		case err != nil:
			if s.unanswered(err) {
				return
			}
			continue
		case g.Granted:
			s.granted(g, start)
			return
		case g.Retry:
			continue
		case g.Floor:
			s.waitForBudget(g.Why, budgetRetry)
		default:
			// The budget waited already: a short pause, then ask again.
			s.waitForBudget(g.Why, time.Second)
		}
	}
}

// unanswered handles a request the budget did not answer (err): a node's own SIGTERM
// goes on without a lease (true); any other shutdown waits budgetRetry to ask again.
func (s *shutdown) unanswered(err error) bool {
	if s.req.Unblockable {
		s.log.Warn("the budget did not answer; a node's own SIGTERM goes on without a lease", "error", err)
		s.report.Budget = "went on without a lease: the budget did not answer (" + errorMessage(err, plan.StepSpec{}) + ")"
		return true
	}
	s.waitForBudget("the budget did not answer: "+errorMessage(err, plan.StepSpec{}), budgetRetry)
	return false
}

// granted records the lease the budget granted (g), asked for since start.
func (s *shutdown) granted(g activities.LeaseGrant, start time.Time) {
	s.leased = true
	if s.listed && s.version >= versionStepColumn {
		// The column said "budget" while the run waited; from the grant on it follows
		// the steps again only if they last (a queue of 200 shutdowns wrote seven
		// visibility records each instead of two).
		s.listed = false
		s.listAfter()
	}
	waited := workflow.Now(s.ctx).Sub(start)
	switch {
	case g.Why != "":
		s.report.Budget = g.Why
	case waited >= time.Second:
		s.report.Budget = fmt.Sprintf("waited %s for the budget", plan.Millis(waited))
	}
	s.report.Waiting = ""
	s.details()
}

// leaseBySignal takes a lease when the cluster has a budget to keep: it asks by a
// signal (no update slot taken, however many ask at once) and waits for the budget's
// answer, also a signal — granted, at the floor, or queued, and then granted when its
// turn comes. An answer that does not come within budgetRecheck is asked for again (the
// request keeps its place in the queue). A node's own SIGTERM does not wait past
// budgetRetry for an answer: it goes on without a lease.
func (s *shutdown) leaseBySignal() {
	if s.limits == (plan.Limits{}) {
		return // no budget to keep: nothing to ask
	}
	if s.version >= versionStepColumn {
		s.atStep = "budget" // what the list's column shows if the answer takes a while
	}
	start := workflow.Now(s.ctx)
	req := activities.LeaseRequest{Holder: s.report.WorkflowID, Run: s.report.RunID, Node: s.req.Node, Drain: s.req.Drain,
		Unblockable: s.req.Unblockable, Notify: s.report.WorkflowID}
	answers := workflow.GetSignalChannel(s.ctx, SignalBudget)
	patience := budgetRecheck
	if s.req.Unblockable {
		patience = budgetRetry
	}
	cancelled := func() bool {
		if !errors.Is(s.ctx.Err(), workflow.ErrCanceled) {
			return false
		}
		s.facts.AbortReason = "the shutdown was cancelled while it waited for the budget"
		s.report.Waiting = ""
		s.withdraw()
		return true
	}
	for ask := true; ; {
		if cancelled() {
			return
		}
		var g activities.LeaseGrant
		answered := false
		if ask {
			lctx := workflow.WithLocalActivityOptions(s.ctx, workflow.LocalActivityOptions{
				StartToCloseTimeout: 20 * time.Second,
				RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2, NonRetryableErrorTypes: []string{activities.ErrTypeNoBudget}},
				Summary:             "lease from the budget for " + s.req.Node,
			})
			err := workflow.ExecuteLocalActivity(lctx, clusterActs.AcquireLease, req).Get(lctx, &g)
			// A budget that answered at once (not by signal) gave its answer here.
			answered = err == nil && !g.Asked
			switch {
			case cancelled():
				return
			case err != nil:
				if s.unanswered(err) {
					return
				}
				continue
			}
			ask = false
		}
		if !answered {
			g, answered = s.awaitAnswer(answers, req.Holder, patience)
		}
		switch {
		case !answered && s.req.Unblockable:
			s.log.Warn("the budget did not answer; a node's own SIGTERM goes on without a lease")
			s.report.Budget = fmt.Sprintf("went on without a lease: the budget did not answer within %s", patience)
			s.withdraw()
			return
		case !answered:
			ask = true
		case g.Granted:
			s.granted(g, start)
			return
		case g.Floor:
			s.waitForBudget(g.Why, budgetRetry)
			ask = true
		case g.Queued:
			why := g.Why
			if g.Position > 1 {
				why = fmt.Sprintf("%s; %d ahead in the queue", why, g.Position-1)
			}
			s.waitForBudget(why, 0)
		default: // moving to a new run, or an answer it cannot use: ask again
			ask = true
		}
	}
}

// awaitAnswer waits up to d for the budget's answer about holder.
func (s *shutdown) awaitAnswer(answers workflow.ReceiveChannel, holder string, d time.Duration) (activities.LeaseGrant, bool) {
	tctx, cancel := workflow.WithCancel(s.ctx)
	defer cancel()
	timer := workflow.NewTimer(tctx, d)
	for {
		var g activities.LeaseGrant
		got := false
		sel := workflow.NewSelector(s.ctx)
		sel.AddReceive(answers, func(c workflow.ReceiveChannel, _ bool) { c.Receive(s.ctx, &g); got = true })
		sel.AddFuture(timer, func(workflow.Future) {})
		sel.Select(s.ctx)
		switch {
		case !got:
			return g, false
		case g.Holder == holder && (g.Run == "" || g.Run == s.report.RunID):
			// (An answer for another run of this ID — late, or told again — is not this
			// run's; budgets before budget-tell-by-activity name no run.)
			return g, true
		}
	}
}

// withdraw takes the shutdown out of the budget's queue (it was cancelled there).
func (s *shutdown) withdraw() {
	dctx, cancel := workflow.NewDisconnectedContext(s.ctx)
	defer cancel()
	lctx := workflow.WithLocalActivityOptions(dctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 20 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: []string{activities.ErrTypeNoBudget}},
		Summary:             "leave the budget's queue",
	})
	ref := activities.LeaseRef{Holder: s.report.WorkflowID, Run: s.report.RunID}
	if err := workflow.ExecuteLocalActivity(lctx, clusterActs.ReleaseLease, ref).Get(lctx, nil); err != nil {
		s.log.Warn("the budget's queue not left; the budget reaps the place", "error", err)
	}
}

// waitForBudget shows why the shutdown waits, and waits d before asking again.
func (s *shutdown) waitForBudget(why string, d time.Duration) {
	if s.report.Waiting != why {
		s.log.Info("waiting for the budget", "why", why)
		s.report.Waiting = why
		s.showStep("budget")
		s.details()
	}
	if d > 0 {
		_ = workflow.Sleep(s.ctx, d)
	}
}

// releaseLease gives the lease back; when that fails the budget reaps it once it sees
// the run closed. A lease a drain holds is the drain's to give back (it hands it to its
// next shutdown in the same request).
func (s *shutdown) releaseLease() {
	if !s.leased || s.req.Leased && s.version >= versionHostSteps {
		return
	}
	ref := activities.LeaseRef{Holder: s.report.WorkflowID, Run: s.report.RunID}
	if s.version >= versionBudgetQueue {
		// Its lease came from a budget that takes signals: give it back the same way —
		// from a local activity (runs of versionGiveBackByActivity on), which signals at
		// once, or from the workflow itself (a signal command must be waited for: one
		// left with the run's completing task is dropped). The budget hands it to the
		// next in its queue as soon as the signal reaches it. Should it fail, the budget
		// reaps the lease once it sees the run closed.
		dctx, cancel := workflow.NewDisconnectedContext(s.ctx)
		defer cancel()
		var err error
		if s.version >= versionGiveBackByActivity {
			lctx := workflow.WithLocalActivityOptions(dctx, workflow.LocalActivityOptions{
				StartToCloseTimeout: 10 * time.Second,
				RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: []string{activities.ErrTypeNoBudget}},
				Summary:             "give the lease of " + s.req.Node + " back",
			})
			err = workflow.ExecuteLocalActivity(lctx, clusterActs.GiveBackLease, ref).Get(lctx, nil)
		} else {
			err = workflow.SignalExternalWorkflow(dctx, BudgetWorkflowID, "", SignalRelease, ref).Get(dctx, nil)
		}
		if err != nil {
			s.log.Warn("lease not given back; the budget reaps it", "error", err)
		}
		s.leased = false
		return
	}
	lctx := workflow.WithLocalActivityOptions(s.ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 20 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: []string{activities.ErrTypeNoBudget}},
		Summary:             "give the lease back",
	})
	if err := workflow.ExecuteLocalActivity(lctx, clusterActs.ReleaseLease, ref).Get(lctx, nil); err != nil {
		s.log.Warn("lease not given back; the budget reaps it", "error", err)
	}
	s.leased = false
}

// step runs one graceful step, or records why it is skipped. It reports whether the
// graceful steps stop here (an abort).
func (s *shutdown) step(ctx workflow.Context, i int, spec plan.StepSpec) bool {
	res := &s.report.Steps[i]
	if why := s.skipReason(spec.Name); why != "" {
		res.Status, res.Note = plan.StepSkipped, why
		if slices.Contains(s.req.SkipSucceeded, spec.Name) {
			res.Status = plan.StepSucceeded
		}
		s.details()
		return false
	}

	if spec.Name == plan.Deregister {
		// Once the node starts leaving memberlist it cannot be put back: from here on a
		// cancel is refused (and never races a rollback with the leave).
		s.refuseCancel(ctx)
	}
	res.Status, res.Started = plan.StepRunning, workflow.Now(s.ctx)
	s.showStep(spec.Name)
	s.details()
	out, err := s.runNodeStep(s.ctx, i, spec)
	s.record(res, spec, out, err)
	defer s.details()

	if err == nil {
		s.facts.Succeeded(spec.Name)
		if s.facts.Irreversible {
			s.refuseCancel(ctx)
		}
		return false
	}
	eff := plan.AfterFailure(spec, res.Status, s.failure(err), s.facts.Irreversible)
	res.Note = strings.TrimSpace(res.Note + " " + eff.Note)
	stop := s.facts.Failed(eff)
	if eff.EvictedByOther {
		s.report.Evicted = true
	}
	if eff.Gone && s.report.Gone == "" {
		s.report.Gone = res.Error
	}
	if s.facts.Irreversible {
		s.refuseCancel(ctx)
	}
	return stop
}

// failure tells why a step did not succeed, as the decisions need it.
func (s *shutdown) failure(err error) plan.Failure {
	if s.ctx == s.root && errors.Is(s.root.Err(), workflow.ErrCanceled) {
		return plan.FailCancelled
	}
	if f := activities.Classify(err); f != plan.FailStep {
		return f
	}
	switch {
	case s.facts.ForceReason != "" && isCanceled(err):
		return plan.FailCutShort
	case isScheduleToStart(err):
		return plan.FailWorkerGone
	}
	return plan.FailStep
}

func (s *shutdown) skipReason(step string) string {
	switch {
	case slices.Contains(s.req.SkipSucceeded, step):
		return "succeeded in an earlier run (" + s.req.RetryOf + ")"
	case s.skips[step] != "":
		return s.skips[step]
	case s.facts.SkipRest != "":
		return "skipped: " + s.facts.SkipRest
	case s.facts.ForceReason != "":
		return "skipped: forcing eviction (" + s.facts.ForceReason + ")"
	}
	return ""
}

// hostSteps asks the node for the steps of its host's own and puts them in the plan, so
// that the run records which steps it planned. A node whose worker does not answer is
// treated as one whose worker is gone: its steps cannot run.
func (s *shutdown) hostSteps() {
	first := s.plan.Steps[0]
	ctx := workflow.WithActivityOptions(s.ctx, workflow.ActivityOptions{
		TaskQueue:              NodeTaskQueue(s.req.Node),
		ScheduleToStartTimeout: first.ScheduleToStart,
		StartToCloseTimeout:    5 * time.Second,
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 2, NonRetryableErrorTypes: activities.NonRetryable},
		Summary:                "the steps of " + s.req.Node + "'s host",
	})
	var host []plan.HostStep
	err := workflow.ExecuteActivity(ctx, nodeActs.HostSteps, s.stepInput("host-steps")).Get(ctx, &host)
	switch {
	case isScheduleToStart(err):
		s.facts.SkipRest = fmt.Sprintf("the node's worker did not answer within %s (asked for its host's steps)", first.ScheduleToStart)
		return
	case isType(err, activities.ErrTypeProcessGone):
		s.facts.SkipRest, s.facts.Gone = "the node's process is gone: another process has its name", true
		s.report.Gone = errorMessage(err, plan.StepSpec{})
		return
	case err != nil:
		// Its steps cannot be known: the built-in ones run, under their rules.
		s.log.Warn("the node's host steps are unknown; the built-in steps run", "error", err)
		return
	}
	merged, err := plan.WithHostSteps(s.plan, host)
	if err != nil {
		// Its agent refuses bad steps at start: these did not come from one. The node is
		// shut down all the same, with the built-in steps.
		s.log.Warn("the node's host steps are refused; the built-in steps run", "error", err)
		return
	}
	s.plan = merged
	s.report.Steps = s.report.Steps[:0]
	for _, spec := range merged.Steps {
		s.report.Steps = append(s.report.Steps, plan.StepResult{Name: spec.Name, Status: plan.StepPending})
	}
	s.details()
}

// runNodeStep runs a step's activity on the node's task queue with the step's budget.
func (s *shutdown) runNodeStep(ctx workflow.Context, i int, spec plan.StepSpec) (activities.StepOutput, error) {
	stepCtx, cancel := workflow.WithCancel(ctx)
	s.cancelCurrent = cancel
	defer func() { s.cancelCurrent = nil; cancel() }()
	stepCtx = workflow.WithActivityOptions(stepCtx, workflow.ActivityOptions{
		TaskQueue:              NodeTaskQueue(s.req.Node),
		StartToCloseTimeout:    spec.StartToClose,
		ScheduleToStartTimeout: spec.ScheduleToStart,
		ScheduleToCloseTimeout: spec.Budget(),
		HeartbeatTimeout:       s.plan.HeartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        max(spec.Backoff, time.Millisecond),
			BackoffCoefficient:     2,
			MaximumInterval:        spec.RetryBackoffCap(),
			MaximumAttempts:        int32(spec.MaxAttempts),
			NonRetryableErrorTypes: activities.NonRetryable,
		},
		Summary: fmt.Sprintf("%d/%d %s on %s", i+1, len(s.plan.Steps), spec.Name, s.req.Node),
	})
	step, ok := activities.StepNamed(spec.Name)
	if !ok {
		return activities.StepOutput{}, temporal.NewNonRetryableApplicationError("no activity for step "+spec.Name, ErrTypeBadRequest, nil)
	}
	var out activities.StepOutput
	err := workflow.ExecuteActivity(stepCtx, step.Activity, s.stepInput(spec.Name)).Get(stepCtx, &out)
	return out, err
}

func (s *shutdown) stepInput(step string) activities.StepInput {
	return activities.StepInput{Node: s.req.Node, Instance: s.instance, Step: step, WorkflowID: s.report.WorkflowID}
}

// record fills a step's result from its activity's outcome.
func (s *shutdown) record(res *plan.StepResult, spec plan.StepSpec, out activities.StepOutput, err error) {
	took := workflow.Now(s.ctx).Sub(res.Started)
	res.Duration = plan.Millis(took)
	defer func() {
		workflow.GetMetricsHandler(s.ctx).WithTags(map[string]string{"step": spec.Name, "status": string(res.Status)}).
			Timer(MetricStepDuration).Record(took)
	}()
	if err == nil {
		res.Status, res.Attempts = plan.StepSucceeded, int(out.Attempt)
		res.Note = noteFor(out)
		s.log.Info("step succeeded", "step", spec.Name, "attempts", res.Attempts, "duration", res.Duration)
		return
	}
	res.Status, res.Attempts, res.Error = plan.StepFailed, attempts(err, spec), errorMessage(err, spec)
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		res.Status = plan.StepTimedOut
	}
	if isCanceled(err) && s.facts.ForceReason != "" {
		res.Note = "cut short: " + s.facts.ForceReason
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
func attempts(err error, spec plan.StepSpec) int {
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
func errorMessage(err error, spec plan.StepSpec) string {
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

// refuseCancel switches the steps to a disconnected context once the node is leaving
// for good: it cannot be put back, so a cancel from then on is logged and refused.
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
		StartToCloseTimeout: plan.LookupTimeout,
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

// finish runs what follows the graceful steps, as plan.Decide says, until it concludes.
func (s *shutdown) finish() *ShutdownReport {
	if s.facts.AbortReason == "" && s.ctx == s.root && errors.Is(s.root.Err(), workflow.ErrCanceled) && !s.facts.Irreversible {
		s.facts.AbortReason = "the shutdown was cancelled" // cancelled between two steps
	}
	if s.facts.AbortReason != "" {
		s.aborting()
	} else {
		s.refuseCancel(s.root) // from here the node is taken out, whatever happens
	}
	for {
		s.facts.AllSucceeded, s.facts.Changed = plan.StepsState(s.report.Steps)
		d := plan.Decide(s.facts)
		switch d.Do {
		case plan.DoRollback:
			s.rollback()
		case plan.DoVerify:
			s.verify()
		case plan.DoAbort:
			s.facts.AbortReason = d.Why
			s.log.Warn("the node is not known to be out and force is disabled: putting it back", "why", d.Why)
			s.aborting()
		case plan.DoForce:
			s.facts.ForceReason = d.Why
		case plan.DoEvict:
			s.evict()
		case plan.DoTerminate:
			s.terminate()
		case plan.DoConclude:
			return s.conclude(d.Outcome, d.Why)
		}
	}
}

// aborting marks the steps that will not run, and lets the rollback run whatever the
// workflow's own cancellation.
func (s *shutdown) aborting() {
	if s.ctx == s.root {
		s.ctx, _ = workflow.NewDisconnectedContext(s.root)
	}
	for i := range s.report.Steps {
		if s.report.Steps[i].Status == plan.StepPending {
			s.report.Steps[i].Status, s.report.Steps[i].Note = plan.StepSkipped, "skipped: shutdown aborted"
		}
	}
}

// rollback puts the node back in service (state alive, heartbeat restarted).
func (s *shutdown) rollback() {
	s.log.Warn("aborting the shutdown: rolling back", "why", s.facts.AbortReason)
	spec, _ := s.plan.Step(plan.SetGracefullyLeft)
	rctx := workflow.WithActivityOptions(s.ctx, workflow.ActivityOptions{
		TaskQueue:              NodeTaskQueue(s.req.Node),
		StartToCloseTimeout:    plan.RollbackTimeout,
		ScheduleToStartTimeout: max(spec.ScheduleToStart, time.Second),
		HeartbeatTimeout:       s.plan.HeartbeatTimeout,
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 2, NonRetryableErrorTypes: activities.NonRetryable},
		Summary:                "roll back " + s.req.Node,
	})
	err := workflow.ExecuteActivity(rctx, nodeActs.Rollback, s.stepInput(plan.Rollback)).Get(rctx, nil)
	s.facts.RollbackTried, s.facts.RolledBack = true, err == nil
	s.report.RolledBack = err == nil
	if err != nil {
		s.report.Error = fmt.Sprintf("the rollback failed: %s", errorMessage(err, spec))
		s.log.Error("rollback failed: the node may be half-stopped unless it is forced out", "error", err)
	}
}

// evict has a healthy peer (the observer) force the node out.
func (s *shutdown) evict() {
	s.log.Warn("force-evicting the node", "why", s.facts.ForceReason)
	s.report.ForceReason = s.facts.ForceReason
	s.showStep("force")
	s.details()
	ectx := workflow.WithLocalActivityOptions(s.ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: plan.EvictTimeout,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: activities.NonRetryable},
		Summary:             "force-evict " + s.req.Node,
	})
	in := activities.EvictInput{Node: s.req.Node, Reason: "farewell: " + s.facts.ForceReason, WorkflowID: s.report.WorkflowID}
	if s.version >= versionProcess {
		in.Instance = s.instance
	}
	var ev activities.EvictOutput
	err := workflow.ExecuteLocalActivity(ectx, clusterActs.ForceEvict, in).Get(ectx, &ev)
	s.facts.EvictTried = true
	switch {
	case err != nil:
		s.report.Error = "force-evict failed: " + errorMessage(err, plan.StepSpec{})
		s.log.Error("force-evict failed", "error", err)
	case ev.Gone != "":
		s.facts.Gone, s.report.Gone = true, ev.Gone
	case ev.Confirmed || s.version < versionProcess:
		s.facts.Evicted, s.report.Evicted, s.report.EvictedBy = true, true, ev.By
	default:
		s.report.Error = "the eviction was not confirmed by any other member"
		s.log.Error("the eviction was not confirmed by any other member: it may have reached no one")
	}
}

// terminate asks the node itself to stop for good, best effort: it may be the very
// thing that is broken.
func (s *shutdown) terminate() {
	s.facts.TerminateTried = true
	spec, _ := s.plan.Step(plan.StopServices)
	tctx := workflow.WithActivityOptions(s.ctx, workflow.ActivityOptions{
		TaskQueue:              NodeTaskQueue(s.req.Node),
		StartToCloseTimeout:    max(spec.StartToClose, plan.TerminateTimeout),
		ScheduleToStartTimeout: max(spec.ScheduleToStart, time.Second),
		HeartbeatTimeout:       s.plan.HeartbeatTimeout,
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 1},
		Summary:                "terminate " + s.req.Node,
	})
	if err := workflow.ExecuteActivity(tctx, nodeActs.Terminate, s.stepInput(plan.Terminate)).Get(tctx, nil); err != nil {
		if isType(err, activities.ErrTypeProcessGone) {
			s.facts.Gone, s.report.Gone = true, errorMessage(err, spec)
		}
		s.log.Warn("the node's own termination did not run", "error", errorMessage(err, spec))
		return
	}
	s.facts.Terminated, s.facts.Irreversible, s.facts.ServicesStopped = true, true, true
	s.report.Terminated = true
}

// verify waits until every surviving member sees the node out, or the convergence
// timeout, and records what they said.
func (s *shutdown) verify() {
	s.facts.Checks++
	if s.facts.ForceReason != "" {
		s.facts.ChecksAfterForce++
	}
	s.showStep("convergence")
	s.details()
	in := activities.ConvergenceInput{Node: s.req.Node, Timeout: plan.Duration(s.plan.ConvergenceTimeout)}
	var out activities.ConvergenceOutput
	var err error
	if s.version >= versionProcess {
		// A regular activity that heartbeats: any orchestrator worker can run it, one
		// that dies is noticed in seconds, and it may outlast a workflow task.
		in.Instance, in.StrictLeft = s.instance, !s.facts.ForceAllowed
		vctx := workflow.WithActivityOptions(s.ctx, workflow.ActivityOptions{
			TaskQueue:           TaskQueue,
			StartToCloseTimeout: s.plan.ConvergenceTimeout + plan.ConvergenceSlack,
			HeartbeatTimeout:    convergenceHeartbeat,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2},
			Summary:             "verify convergence on " + s.req.Node,
		})
		err = workflow.ExecuteActivity(vctx, clusterActs.VerifyConvergence, in).Get(vctx, &out)
	} else {
		vctx := workflow.WithLocalActivityOptions(s.ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: s.plan.ConvergenceTimeout + plan.ConvergenceSlack,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2},
			Summary:             "verify convergence on " + s.req.Node,
		})
		err = workflow.ExecuteLocalActivity(vctx, clusterActs.VerifyConvergence, in).Get(vctx, &out)
	}
	if err != nil {
		s.log.Warn("convergence check failed", "error", err)
		s.report.Converged, s.report.Convergence = false, plan.Pending
		s.report.Pending = []string{"(check failed: " + errorMessage(err, plan.StepSpec{}) + ")"}
		s.facts.Convergence, s.facts.Pending = plan.Pending, s.report.Pending
		return
	}
	s.report.Converged, s.report.Pending = out.Converged, out.Pending
	s.report.ConvergenceTook = plan.Millis(time.Duration(out.TookMS) * time.Millisecond)
	s.report.Convergence = plan.Pending
	switch {
	case out.Converged:
		s.report.Convergence = plan.Converged
	case out.Status == string(plan.Unverified):
		s.report.Convergence = plan.Unverified
		s.report.Pending = append([]string{fmt.Sprintf("(%d of the %d answers needed)", out.Answered, out.Needed)}, out.Pending...)
	}
	s.facts.Convergence, s.facts.Pending = s.report.Convergence, out.Pending
	workflow.GetMetricsHandler(s.ctx).WithTags(map[string]string{"converged": fmt.Sprint(out.Converged)}).
		Timer(MetricConvergenceDuration).Record(time.Duration(out.TookMS) * time.Millisecond)
	s.report.Views = out.Views
}

// conclude sets the outcome and the totals, and publishes them.
func (s *shutdown) conclude(o plan.Outcome, why string) *ShutdownReport {
	s.done = true
	r := &s.report
	if why != "" && r.Error != why {
		// Keep what went wrong before (a failed eviction or rollback) after the reason.
		r.Error = strings.TrimSuffix(why+"; "+r.Error, "; ")
	}
	r.Outcome = o
	r.Finished = workflow.Now(s.ctx)
	total := r.Finished.Sub(r.Started)
	r.Total = plan.Millis(total)
	r.SlowestStep = plan.Slowest(r.Steps)
	r.Slow = s.plan.Slow(total)
	r.Why = r.Explain()
	s.upsert(OutcomeKey.ValueSet(string(o)), StepKey.ValueSet("done"), SlowKey.ValueSet(r.Slow))
	metrics := workflow.GetMetricsHandler(s.ctx)
	byOutcome := metrics.WithTags(map[string]string{"outcome": string(o)})
	byOutcome.Timer(MetricShutdownDuration).Record(total)
	byOutcome.Counter(MetricShutdowns).Inc(1)
	if r.Slow {
		metrics.Counter(MetricSlowShutdowns).Inc(1)
		s.log.Warn("slow shutdown", "total", r.Total, "threshold", s.plan.SlowThreshold, "slowest_step", r.SlowestStep)
	}
	switch o {
	case plan.Failed:
		s.log.Error("SHUTDOWN FAILED: the node is neither out of the cluster nor back in service", "error", r.Error)
	default:
		s.log.Info("shutdown finished", "outcome", o, "total", r.Total, "converged", r.Converged)
	}
	s.details()
	s.releaseLease()
	if s.version >= versionMemo {
		if err := workflow.UpsertMemo(s.ctx, map[string]any{MemoSteps: r.StepLines()}); err != nil {
			s.log.Warn("memo not updated", "error", err)
		}
	}
	return r
}

// listStart puts the run in the list: its node (a starter sets it already) and, in runs
// before versionStepColumn, its first step; later runs show their step once they are
// stepColumnAfter old.
func (s *shutdown) listStart() {
	if s.version < versionStepColumn {
		s.upsert(NodeKey.ValueSet(s.req.Node), StepKey.ValueSet("lookup"))
		return
	}
	s.atStep = "lookup"
	if v, ok := workflow.GetTypedSearchAttributes(s.ctx).GetKeyword(NodeKey); !ok || v != s.req.Node {
		s.upsert(NodeKey.ValueSet(s.req.Node))
	}
	s.listAfter()
}

// listAfter has the list's FarewellStep column follow the run from stepColumnAfter on,
// showing the step it is at then.
func (s *shutdown) listAfter() {
	s.listGen++
	gen := s.listGen
	// Disconnected: a cancel request (refused after deregister) must not stop the column.
	tctx, _ := workflow.NewDisconnectedContext(s.ctx)
	timer := workflow.NewTimer(tctx, stepColumnAfter)
	workflow.Go(tctx, func(ctx workflow.Context) {
		if timer.Get(ctx, nil) == nil && !s.done && s.listGen == gen {
			s.listed = true
			s.upsert(StepKey.ValueSet(s.atStep))
		}
	})
}

// showStep records the step the run is at, and shows it in the list's FarewellStep
// column when the column follows the run (see stepColumnAfter).
func (s *shutdown) showStep(name string) {
	if s.version >= versionStepColumn && name == s.atStep {
		return // shown already, or to be shown by the timer
	}
	s.atStep = name
	if s.version < versionStepColumn || s.listed {
		s.upsert(StepKey.ValueSet(name))
	}
}

func (s *shutdown) upsert(updates ...temporal.SearchAttributeUpdate) {
	if err := workflow.UpsertTypedSearchAttributes(s.ctx, updates...); err != nil {
		s.log.Warn("search attributes not updated", "error", err)
	}
}

// details publishes the step table shown in the Temporal UI.
func (s *shutdown) details() {
	workflow.SetCurrentDetails(s.ctx, s.report.Markdown(s.plan))
}
