package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
)

// Drain timings.
const (
	// gatePoll is how often the health gate looks again.
	gatePoll = time.Second
	// joinPollMax is the slowest a drain follows a shutdown it joined.
	joinPollMax = 5 * time.Second
	// drainLeaseWait is how long one lease request waits inside the budget.
	drainLeaseWait = 10 * time.Second
)

// drainSetup is what a drain takes from the orchestrator once, recorded in its history.
type drainSetup struct {
	Cluster plan.Limits   `json:"cluster"`
	Budget  plan.Duration `json:"budget"`
}

// Drain takes the chosen nodes out one ordinary GracefulShutdown each (same workflow
// IDs, so status, replay and retry work per node; a node already shutting down is
// joined), at most max-parallel of its own at once and each under a lease of the
// cluster's budget, with a health gate before each start. It stops starting shutdowns
// when the failure threshold is reached, when aborted, or at the min-alive floor, and
// always lets the running ones finish. It continues as new every NodesPerRun starts.
func (w *Shutdowns) Drain(ctx workflow.Context, req DrainRequest) (*DrainReport, error) {
	if err := req.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadRequest, nil)
	}
	info := workflow.GetInfo(ctx)
	d := &drain{req: req, log: log.With(workflow.GetLogger(ctx), "drain", req.Name)}
	if req.Carry != nil {
		d.r = *req.Carry
		d.r.Runs++
	} else {
		d.r = DrainReport{Name: req.Name, Selector: req.Selector, Reason: req.Reason, RequestedBy: req.RequestedBy,
			MaxParallel: req.maxParallel(), MinAlive: req.Limits.MinAlive, FailureThreshold: req.FailureThreshold,
			PauseBetween: req.PauseBetween, Phase: "preflight", Started: workflow.Now(ctx)}
	}
	d.r.WorkflowID, d.r.RunID = info.WorkflowExecution.ID, info.WorkflowExecution.RunID
	if err := d.register(ctx); err != nil {
		return nil, err
	}
	// A lease the cluster's budget cannot grant at once waits in its queue; the budget
	// signals the drain when it grants it (runs of this version on).
	if workflow.GetVersion(ctx, "drain-budget-queue", workflow.DefaultVersion, 1) >= 1 {
		d.queue, d.answers, d.asked = true, map[string]activities.LeaseGrant{}, map[string]time.Time{}
		answers := workflow.GetSignalChannel(ctx, SignalBudget)
		workflow.Go(ctx, func(ctx workflow.Context) {
			var g activities.LeaseGrant
			for answers.Receive(ctx, &g) {
				d.answers[g.Holder] = g
				d.changed()
			}
		})
	}
	// With no limit to keep — none in the cluster's budget, no min-alive of its own —
	// the drain takes no lease: nothing to ask the budget, one round trip less per node
	// (runs of this version on). The cluster's limits are looked at again before each
	// start: set meanwhile, they are kept from then on.
	if workflow.GetVersion(ctx, "drain-unbudgeted", workflow.DefaultVersion, 1) >= 1 {
		same := func(a, c any) bool { return fmt.Sprint(a) == fmt.Sprint(c) }
		d.free = map[string]bool{}
		d.clusterLimits = func(ctx workflow.Context) plan.Limits {
			var l plan.Limits
			if err := workflow.MutableSideEffect(ctx, "drain-cluster-limits", func(workflow.Context) any { return w.Limits }, same).Get(&l); err != nil {
				d.log.Warn("the cluster's limits not read; asking the budget", "error", err)
				return plan.Limits{MaxParallel: -1}
			}
			return l
		}
	}
	if req.Carry == nil {
		if err := d.preflight(ctx, w.setup(ctx)); err != nil {
			return nil, err
		}
	}
	if req.Carry == nil {
		workflow.GetMetricsHandler(ctx).Counter(MetricDrainsStarted).Inc(1)
	}
	d.r.Phase = "running"
	d.details(ctx)
	for i := range d.r.Nodes {
		if s := d.r.Nodes[i].State; s == DrainRunning || s == DrainJoined {
			d.inFlight++
			d.follow(ctx, i) // carried over from the last run
		}
	}
	if err := d.loop(ctx); err != nil {
		return nil, err
	}
	return d.conclude(ctx), nil
}

// DrainPreflight is a drain's dry run: what would block each node, the waves, the
// worst case. It changes nothing.
func (w *Shutdowns) DrainPreflight(ctx workflow.Context, req DrainRequest) (*activities.DrainPlan, error) {
	if err := req.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadRequest, nil)
	}
	setup := w.setup(ctx)
	p, err := runPreflight(ctx, req, setup)
	if err != nil {
		return nil, err
	}
	workflow.SetCurrentDetails(ctx, PreflightMarkdown(p))
	return &p, nil
}

// setup records the cluster's budget and the plan's budget once in the history.
func (w *Shutdowns) setup(ctx workflow.Context) drainSetup {
	var s drainSetup
	err := workflow.SideEffect(ctx, func(workflow.Context) any {
		return drainSetup{Cluster: w.Limits, Budget: plan.Duration(w.Plan.Budget())}
	}).Get(&s)
	if err != nil {
		workflow.GetLogger(ctx).Warn("setup not read", "error", err)
	}
	return s
}

func runPreflight(ctx workflow.Context, req DrainRequest, setup drainSetup) (activities.DrainPlan, error) {
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: []string{activities.ErrTypeNoTemporal}},
		Summary:             "pre-flight of the drain " + req.Name,
	})
	var p activities.DrainPlan
	err := workflow.ExecuteLocalActivity(lctx, clusterActs.PreflightDrain, activities.PreflightInput{
		Selector: req.Selector, Limits: plan.Limits{MaxParallel: req.maxParallel(), MinAlive: req.Limits.MinAlive},
		Cluster: setup.Cluster, Budget: setup.Budget, Pause: req.PauseBetween,
	}).Get(lctx, &p)
	return p, err
}

// drain is one run's state. Workflow code: deterministic, no I/O.
type drain struct {
	req DrainRequest
	r   DrainReport
	log log.Logger
	// inFlight counts the shutdowns running or joined; startedHere those this run
	// started; gen grows at every change a waiting loop may care about.
	inFlight    int
	startedHere int
	gen         int
	// starting counts the child runs asked for whose start is not confirmed yet.
	starting int
	// returning are the leases of the drain's shutdowns that ended: the next lease
	// request hands them back (one step for the budget), or flush does before a wait.
	returning []activities.LeaseRef
	// queue: lease requests go to the budget as signals, and its answers come back
	// the same way (answers, by holder); asked is when each was last sent.
	queue   bool
	answers map[string]activities.LeaseGrant
	asked   map[string]time.Time
	// clusterLimits reads the cluster's budget (nil in runs before it); free are the
	// nodes started without a lease, there being no limit to keep.
	clusterLimits func(workflow.Context) plan.Limits
	free          map[string]bool
}

func (d *drain) preflight(ctx workflow.Context, setup drainSetup) error {
	d.r.Cluster = setup.Cluster
	d.details(ctx)
	p, err := runPreflight(ctx, d.req, setup)
	if err != nil {
		return err
	}
	if fatal := p.Fatal(); len(fatal) > 0 {
		d.log.Warn("drain refused by its pre-flight", "blockers", fatal)
		return temporal.NewNonRetryableApplicationError("drain refused: "+strings.Join(fatal, "; "), activities.ErrTypeDrainRefused, nil, p)
	}
	d.r.Waves, d.r.WorstCase = p.Waves, p.WorstCase
	for _, c := range p.Nodes {
		n := DrainNode{Node: c.Node, State: DrainPending, Instance: c.Instance, Join: c.Join, RunID: c.RunID}
		switch {
		case c.Skip:
			n.State, n.Note, n.Gated = DrainSkipped, c.Note, true
		case c.Blocker != "":
			n.Note = c.Blocker + ": " + c.Note
		}
		d.r.Nodes = append(d.r.Nodes, n)
	}
	return nil
}

// loop starts the next shutdown whenever the drain may, until nothing is left to start
// and nothing runs.
func (d *drain) loop(ctx workflow.Context) error {
	for {
		if d.dueToMove(ctx) {
			return d.moveOn(ctx)
		}
		i := d.next()
		if i < 0 || d.r.Aborted != "" || d.r.Stopped != "" {
			d.flush(ctx)
			if d.inFlight == 0 {
				return nil
			}
			d.waitFor(ctx, "", 0)
			continue
		}
		switch {
		case d.r.Paused != "":
			d.flush(ctx)
			d.waitFor(ctx, "paused: "+d.r.Paused, 0)
			continue
		case d.inFlight >= d.r.MaxParallel:
			d.flush(ctx)
			d.waitFor(ctx, fmt.Sprintf("%d in flight: --max-parallel is %d", d.inFlight, d.r.MaxParallel), 0)
			continue
		}
		if !d.gate(ctx) || !d.pauseBetween(ctx) || d.dueToMove(ctx) {
			continue
		}
		n := &d.r.Nodes[i]
		if n.Join {
			d.inFlight++
			n.State = DrainJoined
			d.follow(ctx, i)
			continue
		}
		if !d.lease(ctx, i) {
			continue
		}
		d.start(ctx, i)
	}
}

// next is the index of the first node not started yet, or -1.
func (d *drain) next() int {
	return slices.IndexFunc(d.r.Nodes, func(n DrainNode) bool { return n.State == DrainPending })
}

// show says what the drain waits for.
func (d *drain) show(ctx workflow.Context, why string) {
	if d.r.Waiting != why {
		d.r.Waiting = why
		d.details(ctx)
	}
}

// waitFor shows why the drain waits and waits for any change, or dur when set.
func (d *drain) waitFor(ctx workflow.Context, why string, dur time.Duration) {
	d.show(ctx, why)
	seen := d.gen
	if dur > 0 {
		_, _ = workflow.AwaitWithTimeout(ctx, dur, func() bool { return d.gen != seen })
		return
	}
	_ = workflow.Await(ctx, func() bool { return d.gen != seen })
}

// changed wakes whatever waits.
func (d *drain) changed() { d.gen++ }

// withReason adds an operator's reason, when given, to what they did.
func withReason(what, reason string) string {
	if reason == "" {
		return what
	}
	return what + ": " + reason
}

// gate is the health gate before each start: the drain's finished shutdowns are out
// for the observer and no member is blocked. It waits (with the reason in progress)
// up to the gate timeout, then pauses the drain.
func (d *drain) gate(ctx workflow.Context) bool {
	timeout := d.req.GateTimeout.Std()
	if timeout == 0 {
		timeout = DefaultGateTimeout
	}
	start := workflow.Now(ctx)
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2},
		Summary:             "health gate",
	})
	for {
		var in activities.GateInput
		for _, n := range d.r.Nodes {
			if n.State == DrainDone && !n.Gated {
				in.Out = append(in.Out, activities.ProcessRef{Node: n.Node, Instance: n.Instance})
			}
		}
		var out activities.GateOutput
		if err := workflow.ExecuteLocalActivity(lctx, clusterActs.DrainGate, in).Get(lctx, &out); err != nil {
			out.Why = "the gate could not look: " + errorMessage(err, plan.StepSpec{})
		}
		for _, p := range out.Out {
			if j := d.index(p.Node); j >= 0 {
				d.r.Nodes[j].Gated = true
			}
		}
		if out.Ready {
			return true
		}
		why := "health gate: " + out.Why
		if waited := workflow.Now(ctx).Sub(start); waited >= timeout {
			d.r.Paused = fmt.Sprintf("the health gate waited %s (%s); resume to look again", plan.Millis(waited), out.Why)
			d.log.Warn("drain paused by its health gate", "why", out.Why)
			d.changed()
			d.details(ctx)
			return false
		}
		d.flush(ctx)
		d.waitFor(ctx, why, gatePoll)
		if d.r.Aborted != "" || d.r.Paused != "" || d.r.Stopped != "" {
			return false
		}
	}
}

// pauseBetween keeps --pause-between between two starts.
func (d *drain) pauseBetween(ctx workflow.Context) bool {
	pause := d.req.PauseBetween.Std()
	if pause == 0 || d.r.LastStart.IsZero() {
		return true
	}
	left := d.r.LastStart.Add(pause).Sub(workflow.Now(ctx))
	if left <= 0 {
		return true
	}
	d.flush(ctx)
	d.waitFor(ctx, fmt.Sprintf("pausing %s between two starts", d.req.PauseBetween), left)
	return false
}

// lease reserves the next node's lease in the cluster's budget, for its run to bind.
// The floor blocks the node for good; a full budget makes the drain wait.
func (d *drain) lease(ctx workflow.Context, i int) bool {
	n := &d.r.Nodes[i]
	if d.clusterLimits != nil && d.req.Limits.MinAlive == 0 && d.clusterLimits(ctx) == (plan.Limits{}) {
		d.flush(ctx) // leases taken while the cluster had limits
		d.free[n.Node] = true
		return true
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: drainLeaseWait + 20*time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2, NonRetryableErrorTypes: []string{activities.ErrTypeNoBudget}},
		Summary:             "lease from the budget for " + n.Node,
	})
	if d.queue {
		return d.leaseBySignal(ctx, lctx, i)
	}
	// With shutdowns of its own in flight the drain does not wait inside the budget: the
	// room it waits for may be their leases, which only it gives back (when one ends, it
	// asks again at once, handing the lease over).
	wait := drainLeaseWait
	if d.inFlight > 0 {
		wait = 0
	}
	var g activities.LeaseGrant
	err := workflow.ExecuteLocalActivity(lctx, clusterActs.AcquireLease, activities.LeaseRequest{
		Holder: WorkflowID(n.Node), Node: n.Node, Drain: d.req.Name,
		Limits: plan.Limits{MinAlive: d.req.Limits.MinAlive}, Wait: plan.Duration(wait),
		Returning: d.returning,
	}).Get(lctx, &g)
	if err == nil {
		d.returning = nil // the budget took them back
	}
	switch {
	case err != nil:
		d.waitFor(ctx, "the budget did not answer: "+errorMessage(err, plan.StepSpec{}), budgetRetry)
		return false
	case g.Retry:
		return false
	}
	if !g.Granted && !g.Floor {
		// The budget is full: ask again in a second, or at once when one of ours ends.
		d.waitFor(ctx, "the cluster's budget: "+g.Why, time.Second)
		return false
	}
	return d.answered(ctx, i, g)
}

// answered acts on the budget's answer g for node i: granted (true), or held back by the
// floor for good.
func (d *drain) answered(ctx workflow.Context, i int, g activities.LeaseGrant) bool {
	n := &d.r.Nodes[i]
	if g.Granted {
		if g.Why != "" {
			n.Note = strings.TrimSpace(n.Note + " " + g.Why)
		}
		return true
	}
	n.State, n.Note = DrainBlocked, "held back by the min-alive floor: "+g.Why
	d.r.Floor = g.Why
	d.log.Warn("node held back by the min-alive floor", "node", n.Node, "why", g.Why)
	d.changed()
	d.details(ctx)
	return false
}

// leaseBySignal asks the budget for node i's lease by a signal (no update slot taken)
// and acts on its answer, which comes as a signal too: granted, at the floor, or queued
// — then the drain waits (the budget tells it when its turn comes; one of its own
// shutdowns ending hands a lease over; an answer that does not come is asked again).
func (d *drain) leaseBySignal(ctx, lctx workflow.Context, i int) bool {
	n := &d.r.Nodes[i]
	holder := WorkflowID(n.Node)
	if g, ok := d.answers[holder]; ok {
		delete(d.answers, holder)
		switch {
		case g.Granted, g.Floor:
			delete(d.asked, holder)
			return d.answered(ctx, i, g)
		case len(d.returning) > 0:
			// One of ours ended meanwhile: hand its lease over now.
		case g.Queued:
			d.waitFor(ctx, fmt.Sprintf("the cluster's budget: %s (place %d in its queue)", g.Why, g.Position), budgetRecheck)
			return false
		case !g.Retry:
			// An answer it cannot use: ask again in a moment.
			delete(d.asked, holder)
			d.waitFor(ctx, "the cluster's budget: "+g.Why, time.Second)
			return false
		}
	} else if at, ok := d.asked[holder]; ok && workflow.Now(ctx).Sub(at) < budgetRecheck && len(d.returning) == 0 {
		d.waitFor(ctx, "waiting for the cluster's budget to answer", budgetRecheck-workflow.Now(ctx).Sub(at))
		return false
	}
	var g activities.LeaseGrant
	err := workflow.ExecuteLocalActivity(lctx, clusterActs.AcquireLease, activities.LeaseRequest{
		Holder: holder, Node: n.Node, Drain: d.req.Name, Limits: plan.Limits{MinAlive: d.req.Limits.MinAlive},
		Returning: d.returning, Notify: d.r.WorkflowID,
	}).Get(lctx, &g)
	if err != nil {
		d.waitFor(ctx, "the budget did not answer: "+errorMessage(err, plan.StepSpec{}), budgetRetry)
		return false
	}
	d.returning = nil // the budget takes them back
	d.asked[holder] = workflow.Now(ctx)
	if !g.Asked {
		// A budget that answered at once (not by signal) gave its answer here.
		g.Holder = holder
		d.answers[holder] = g
		return false
	}
	if _, ok := d.answers[holder]; !ok {
		d.waitFor(ctx, "waiting for the cluster's budget to answer", budgetRecheck)
	}
	return false
}

// start runs the node's shutdown as a child run; one already running is joined.
func (d *drain) start(ctx workflow.Context, i int) {
	n := &d.r.Nodes[i]
	now := workflow.Now(ctx)
	n.State, n.Started = DrainRunning, now
	d.r.LastStart, d.r.Waiting = now, ""
	d.inFlight++
	d.startedHere++
	d.changed()
	d.details(ctx)
	sreq := ShutdownRequest{Node: n.Node, Reason: d.reason(), RequestedBy: d.requester(), Drain: d.req.Name, Leased: true}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            WorkflowID(n.Node),
		TaskQueue:             TaskQueue,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON, // a shutdown never stops half-way with its drain
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(NodeKey.ValueSet(n.Node), DrainKey.ValueSet(d.req.Name)),
		StaticSummary:         Summary(sreq),
		StaticDetails:         Details(sreq),
	})
	node := n.Node
	d.starting++
	workflow.Go(ctx, func(gctx workflow.Context) {
		f := workflow.ExecuteChildWorkflow(cctx, WorkflowName, sreq)
		var exec workflow.Execution
		err := f.GetChildWorkflowExecution().Get(gctx, &exec)
		d.starting--
		if err != nil {
			var already *temporal.ChildWorkflowExecutionAlreadyStartedError
			if errors.As(err, &already) {
				// Someone started it meanwhile: follow theirs (it binds the lease).
				d.r.Nodes[d.index(node)].State = DrainJoined
				d.follow(gctx, d.index(node))
				return
			}
			d.release(gctx, node, "")
			d.finish(gctx, node, nil, "not started: "+errorMessage(err, plan.StepSpec{}))
			return
		}
		d.r.Nodes[d.index(node)].RunID = exec.RunID
		d.changed()
		var r ShutdownReport
		if err := f.Get(gctx, &r); err != nil {
			// The run failed before its end (refused): it never gave the lease back.
			d.release(gctx, node, exec.RunID)
			d.finish(gctx, node, nil, errorMessage(err, plan.StepSpec{}))
			return
		}
		// Its lease is the drain's to give back: with the next lease request.
		if !d.free[node] {
			d.returning = append(d.returning, activities.LeaseRef{Holder: WorkflowID(node), Run: exec.RunID})
		}
		delete(d.free, node)
		d.finish(gctx, node, &r, "")
	})
}

func (d *drain) reason() string {
	if d.req.Reason != "" {
		return d.req.Reason
	}
	return "drain " + d.req.Name
}

// requester is who asked for a node's shutdown: the person who started the drain, and
// the drain ("ops@example (drain d1)"), or the drain alone when nobody is named.
func (d *drain) requester() string {
	both := d.req.RequestedBy + " (drain " + d.req.Name + ")"
	if d.req.RequestedBy == "" || len(both) > plan.MaxReason {
		return "drain " + d.req.Name // a requester near the bound would make the child's request invalid
	}
	return both
}

// follow waits for the end of a shutdown the drain did not start (or started in an
// earlier run), polling its status.
func (d *drain) follow(ctx workflow.Context, i int) {
	node := d.r.Nodes[i].Node
	workflow.Go(ctx, func(gctx workflow.Context) {
		lctx := workflow.WithLocalActivityOptions(gctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 10 * time.Second,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2},
			Summary:             "follow the shutdown of " + node,
		})
		delay := 500 * time.Millisecond
		for {
			var info activities.ShutdownInfo
			err := workflow.ExecuteLocalActivity(lctx, clusterActs.LatestShutdown, node).Get(lctx, &info)
			if err == nil {
				n := &d.r.Nodes[d.index(node)]
				if n.RunID == "" {
					n.RunID = info.RunID
				}
				if !info.Running {
					r := &ShutdownReport{Node: node, RunID: info.RunID, Outcome: info.Outcome, Total: info.Total,
						NodeInstance: info.Instance, Converged: info.Converged, Error: info.Error}
					note := ""
					if info.RunID == "" {
						r, note = nil, "no shutdown found"
					}
					d.release(gctx, node, info.RunID)
					d.finish(gctx, node, r, note)
					return
				}
			}
			if workflow.Sleep(gctx, delay) != nil {
				return
			}
			delay = min(2*delay, joinPollMax)
		}
	})
}

// flush gives back the leases of the drain's ended shutdowns now, before the drain
// waits: nobody else's shutdown waits on them meanwhile.
func (d *drain) flush(ctx workflow.Context) {
	refs := d.returning
	d.returning = nil
	for _, ref := range refs {
		d.release(ctx, strings.TrimPrefix(ref.Holder, activities.ShutdownWorkflowIDPrefix), ref.Run)
	}
}

// release gives back a lease the run did not (it never started, or failed early).
func (d *drain) release(ctx workflow.Context, node, run string) {
	if d.free[node] {
		delete(d.free, node) // started without a lease
		return
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 20 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: []string{activities.ErrTypeNoBudget}},
		Summary:             "give the lease of " + node + " back",
	})
	ref := activities.LeaseRef{Holder: WorkflowID(node), Run: run}
	if err := workflow.ExecuteLocalActivity(lctx, clusterActs.ReleaseLease, ref).Get(lctx, nil); err != nil {
		d.log.Warn("lease not given back; the budget reaps it", "node", node, "error", err)
	}
}

// finish records a node's end: its outcome, or why it has none.
func (d *drain) finish(ctx workflow.Context, node string, r *ShutdownReport, problem string) {
	n := &d.r.Nodes[d.index(node)]
	n.State = DrainDone
	d.inFlight--
	failed := true
	if r != nil {
		n.Outcome, n.Took, n.Instance, n.RunID = r.Outcome, r.Total, r.NodeInstance, r.RunID
		n.Note = r.Error
		// Nothing for the gate to look at when the members saw it out, or when it is
		// not out (aborted: back in service; failed: counted below).
		n.Gated = r.Converged || !r.Outcome.Out()
		failed = r.Outcome != plan.Graceful && r.Outcome != plan.Degraded
	} else {
		n.Note, n.Gated = problem, true
	}
	if !n.Started.IsZero() && n.Took == 0 {
		n.Took = plan.Millis(workflow.Now(ctx).Sub(n.Started))
	}
	if failed {
		d.r.Failures++
		if t := d.req.FailureThreshold; t > 0 && d.r.Failures >= t && d.r.Stopped == "" {
			d.r.Stopped = fmt.Sprintf("failure threshold: %s did not end graceful or degraded (--failure-threshold %d)", count(d.r.Failures, "shutdown"), t)
			d.log.Warn("drain stops starting shutdowns", "why", d.r.Stopped)
		}
	}
	d.log.Info("node done", "node", node, "outcome", n.Outcome, "note", n.Note)
	d.changed()
	d.details(ctx)
}

func (d *drain) index(node string) int {
	return slices.IndexFunc(d.r.Nodes, func(n DrainNode) bool { return n.Node == node })
}

// dueToMove says the run should continue as new: it started its share, or the server
// suggests it; and every child run it asked for has started, so the next run can
// follow it (as the latest run of its workflow ID).
func (d *drain) dueToMove(ctx workflow.Context) bool {
	per := d.req.NodesPerRun
	if per == 0 {
		per = DefaultNodesPerRun
	}
	if d.startedHere < per && !workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
		return false
	}
	return d.starting == 0 && d.next() >= 0 // nothing left to start: just finish
}

// moveOn continues as new, carrying the drain; the shutdowns in flight run on (their
// parent close policy abandons them) and the next run follows them.
func (d *drain) moveOn(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	d.flush(ctx)
	carry := d.r
	carry.Nodes = slices.Clone(d.r.Nodes)
	carry.Waiting = ""
	for i := range carry.Nodes {
		if carry.Nodes[i].State == DrainRunning {
			carry.Nodes[i].State = DrainJoined
		}
	}
	req := d.req
	req.Carry = &carry
	d.log.Info("drain continues as new", "started_here", d.startedHere)
	return workflow.NewContinueAsNewError(ctx, DrainWorkflowName, req)
}

// conclude says how the drain ended.
func (d *drain) conclude(ctx workflow.Context) *DrainReport {
	r := &d.r
	r.Phase, r.Waiting = "done", ""
	r.Finished = workflow.Now(ctx)
	r.Total = plan.Millis(r.Finished.Sub(r.Started))
	switch {
	case r.Aborted != "":
		r.Outcome, r.Why = DrainAborted, "aborted: "+r.Aborted
	case r.Stopped != "":
		r.Outcome, r.Why = DrainStopped, r.Stopped
	case r.Floor != "":
		r.Outcome = DrainStopped
		r.Why = fmt.Sprintf("stopped at the min-alive floor: %s held back (%s)", count(r.Count()[DrainBlocked], "node"), r.Floor)
	default:
		r.Outcome = DrainCompleted
	}
	for i := range r.Nodes {
		if r.Nodes[i].State == DrainPending {
			r.Nodes[i].State, r.Nodes[i].Note = DrainSkipped, "not started: "+r.Why
		}
	}
	d.log.Info("drain finished", "outcome", r.Outcome, "why", r.Why, "failures", r.Failures)
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"outcome": string(r.Outcome)}).Counter(MetricDrains).Inc(1)
	d.details(ctx)
	// What it did stays readable in the UI after it closed (runs of this version on).
	if workflow.GetVersion(ctx, "drain-memo", workflow.DefaultVersion, 1) >= 1 {
		if err := workflow.UpsertMemo(ctx, map[string]any{MemoDrain: r.Lines()}); err != nil {
			d.log.Warn("memo not updated", "error", err)
		}
	}
	return r
}

// register sets up the progress query and the control updates.
func (d *drain) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryProgress, func() (DrainReport, error) {
		r := d.r
		r.Nodes = slices.Clone(d.r.Nodes)
		if r.Finished.IsZero() {
			//workflowcheck:ignore
			r.Total = plan.Millis(time.Since(r.Started))
		}
		return r, nil
	}, workflow.QueryHandlerOptions{Description: "The drain so far: each node's state and outcome, and what the drain waits for."}); err != nil {
		return err
	}
	running := func() error {
		if d.r.Phase == "done" {
			return fmt.Errorf("the drain %s already finished", d.req.Name)
		}
		return nil
	}
	updates := []struct {
		name, desc string
		handler    any
		validator  any
	}{
		{UpdateDrainPause, "Start no new shutdown until resumed; those running go on.",
			func(ctx workflow.Context, c DrainControl) error {
				d.r.Paused = withReason("by the operator", c.Reason)
				d.changed()
				d.details(ctx)
				return nil
			},
			func(ctx workflow.Context, c DrainControl) error {
				if err := plan.ValidateText(c.Reason); err != nil {
					return fmt.Errorf("reason: %w", err)
				}
				if d.r.Paused != "" {
					return fmt.Errorf("the drain %s is paused already (%s)", d.req.Name, d.r.Paused)
				}
				return running()
			}},
		{UpdateDrainResume, "Start shutdowns again after a pause (the health gate looks again).",
			func(ctx workflow.Context, c DrainControl) error {
				d.r.Paused = ""
				d.changed()
				d.details(ctx)
				return nil
			},
			func(ctx workflow.Context, c DrainControl) error {
				if d.r.Paused == "" {
					return fmt.Errorf("the drain %s is not paused", d.req.Name)
				}
				return running()
			}},
		{UpdateDrainSetMaxParallel, "Change how many of the drain's shutdowns may be in flight at once.",
			func(ctx workflow.Context, r SetMaxParallelRequest) error {
				d.r.MaxParallel = r.MaxParallel
				d.changed()
				d.details(ctx)
				return nil
			},
			func(ctx workflow.Context, r SetMaxParallelRequest) error {
				if r.MaxParallel < 1 || r.MaxParallel > plan.MaxLimit {
					return fmt.Errorf("max_parallel %d: want 1 to %d", r.MaxParallel, plan.MaxLimit)
				}
				return running()
			}},
		{UpdateDrainSkipNode, "Leave a node the drain has not started yet alone.",
			func(ctx workflow.Context, r SkipNodeRequest) error {
				n := &d.r.Nodes[d.index(r.Node)]
				n.State, n.Note = DrainSkipped, withReason("skipped by the operator", r.Reason)
				d.changed()
				d.details(ctx)
				return nil
			},
			func(ctx workflow.Context, r SkipNodeRequest) error {
				if err := plan.ValidateText(r.Reason); err != nil {
					return fmt.Errorf("reason: %w", err)
				}
				i := d.index(r.Node)
				switch {
				case i < 0:
					return fmt.Errorf("node %q is not part of the drain %s", r.Node, d.req.Name)
				case d.r.Nodes[i].State == DrainRunning || d.r.Nodes[i].State == DrainJoined:
					return fmt.Errorf("the shutdown of %s runs already: farewell cancel %s stops it", r.Node, r.Node)
				case d.r.Nodes[i].State != DrainPending:
					return fmt.Errorf("node %s is %s already", r.Node, d.r.Nodes[i].State)
				}
				return running()
			}},
		{UpdateDrainAbort, "Start no new shutdown; those running finish, then the drain ends.",
			func(ctx workflow.Context, c DrainControl) error {
				d.r.Aborted = withReason("by the operator", c.Reason)
				d.log.Warn("drain aborted", "why", d.r.Aborted)
				d.changed()
				d.details(ctx)
				return nil
			},
			func(ctx workflow.Context, c DrainControl) error {
				if err := plan.ValidateText(c.Reason); err != nil {
					return fmt.Errorf("reason: %w", err)
				}
				if d.r.Aborted != "" {
					return fmt.Errorf("the drain %s is aborted already", d.req.Name)
				}
				return running()
			}},
	}
	for _, u := range updates {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler, workflow.UpdateHandlerOptions{
			Description: u.desc, Validator: u.validator,
		}); err != nil {
			return err
		}
	}
	return nil
}

// details publishes the drain's table in the Temporal UI.
func (d *drain) details(ctx workflow.Context) {
	workflow.SetCurrentDetails(ctx, d.r.Markdown())
}
