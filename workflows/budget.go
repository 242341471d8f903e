package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
)

// The budget: one workflow per cluster (per namespace), BudgetWorkflowID, that grants
// and releases leases through updates, so that every way a shutdown starts — the CLI,
// a drain, a node's SIGTERM, the watchdog — counts against the same limits, and the
// leases outlive any orchestrator. Started with update-with-start by the first lease.
const (
	// BudgetWorkflowName is the registered name of Budget.
	BudgetWorkflowName = "Budget"
	// BudgetWorkflowID is the one budget of the cluster.
	BudgetWorkflowID = "farewell-budget"
	// UpdateAcquire asks for a lease (activities.LeaseRequest → activities.LeaseGrant).
	UpdateAcquire = "acquire"
	// UpdateRelease gives one back (activities.LeaseRef).
	UpdateRelease = "release"
	// QueryBudget returns the BudgetView.
	QueryBudget = "budget"
	// SignalAcquire asks the budget for a lease (activities.LeaseRequest with Notify):
	// a signal takes no update slot, however many ask at once. The budget answers it.
	SignalAcquire = "acquire"
	// SignalRelease gives a lease back (activities.LeaseRef): what a shutdown whose
	// lease came by signal sends with its last workflow task.
	SignalRelease = "release"
	// SignalBudget is the budget's answer (activities.LeaseGrant, Holder set) to a
	// request's Notify workflow: at once (granted, queued, or at the floor), and again
	// when a queued request is granted.
	SignalBudget = "budget"
)

// Budget timings.
const (
	// reapEvery is how often the budget looks for leases whose holder closed without
	// giving them back (a run terminated by hand).
	reapEvery = time.Minute
	// reserveGrace is how long a lease a drain reserved may wait for its run to start.
	reserveGrace = time.Minute
)

// budgetUpdatesPerRun bounds one run's history: past it, the budget continues as new.
// A variable so that tests can make it small.
var budgetUpdatesPerRun = 2000

// Lease is leave for one node's shutdown to be in flight.
type Lease struct {
	Holder string `json:"holder"`
	Run    string `json:"run,omitempty"`
	Node   string `json:"node"`
	Drain  string `json:"drain,omitempty"`
	// Since is when it was granted.
	Since time.Time `json:"since"`
	// Over says what an unblockable shutdown (a node's own SIGTERM) went beyond.
	Over string `json:"over,omitempty"`
}

// Waiter is a lease request waiting in the budget's queue.
type Waiter struct {
	Holder  string      `json:"holder"`
	Run     string      `json:"run,omitempty"`
	Node    string      `json:"node"`
	Drain   string      `json:"drain,omitempty"`
	Notify  string      `json:"notify,omitempty"`
	Limits  plan.Limits `json:"limits"`
	Serving []string    `json:"serving,omitempty"`
	Since   time.Time   `json:"since"`
}

// BudgetState is what a budget run carries into the next (continue-as-new).
type BudgetState struct {
	Leases  []Lease  `json:"leases,omitempty"`
	Waiters []Waiter `json:"waiters,omitempty"`
	// Asks and Releases are requests by signal a run of an earlier version took in and
	// left to the next run (it cannot answer them): the first thing the next run does.
	Asks     []activities.LeaseRequest `json:"asks,omitempty"`
	Releases []activities.LeaseRef     `json:"releases,omitempty"`
}

// BudgetView is the budget as the query returns it.
type BudgetView struct {
	Limits plan.Limits `json:"limits"`
	Leases []Lease     `json:"leases"`
	// Waiting counts the requests waiting for a lease right now; Queue lists them,
	// in the order they will be granted.
	Waiting int      `json:"waiting"`
	Queue   []Waiter `json:"queue,omitempty"`
}

// Budget is the cluster's disruption budget; Shutdowns.Limits (budget.* of the
// orchestrator) are its limits, recorded in its history whenever they change.
func (w *Shutdowns) Budget(ctx workflow.Context, st BudgetState) error {
	b := &budget{w: w, st: st, log: workflow.GetLogger(ctx)}
	// A request the limits hold back joins a queue instead of waiting inside its
	// update: a waiter holds no update slot (Temporal allows ten in flight), and a
	// release always gets in.
	b.queue = workflow.GetVersion(ctx, "budget-queue", workflow.DefaultVersion, 1) >= 1
	// Its answers go out from a local activity, all of a workflow task's in one: a
	// signal from the workflow itself is a transfer task on the server and one more task
	// of the budget (its acknowledgement) per answer, which the next release queued
	// behind (P6, three runs each: 200 at once went from 1.08–1.35× to 1.00–1.10× of the
	// same 200 with no cap).
	b.tellByActivity = b.queue && workflow.GetVersion(ctx, "budget-tell-by-activity", workflow.DefaultVersion, 1) >= 1
	b.limits = b.readLimits(ctx)
	if err := b.register(ctx); err != nil {
		return err
	}
	b.details(ctx)
	if b.queue {
		return b.serve(ctx)
	}
	// A run of an earlier version cannot answer requests by signal (shutdowns of a newer
	// orchestrator send them): it moves to a new run, which can, and hands them over.
	asks, releases := workflow.GetSignalChannel(ctx, SignalAcquire), workflow.GetSignalChannel(ctx, SignalRelease)
	for {
		_, err := workflow.AwaitWithTimeout(ctx, reapEvery, func() bool { return b.dueToMove(ctx) || asks.Len()+releases.Len() > 0 })
		if err != nil {
			return err
		}
		if asks.Len()+releases.Len() > 0 {
			b.moving = true
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return err
			}
			for asks.Len() > 0 {
				var req activities.LeaseRequest
				asks.Receive(ctx, &req)
				b.st.Asks = append(b.st.Asks, req)
			}
			for releases.Len() > 0 {
				var ref activities.LeaseRef
				releases.Receive(ctx, &ref)
				b.st.Releases = append(b.st.Releases, ref)
			}
			return workflow.NewContinueAsNewError(ctx, BudgetWorkflowName, b.st)
		}
		if b.dueToMove(ctx) {
			// Answer everyone waiting (they ask again, of the next run) and move on.
			b.moving = true
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return err
			}
			return workflow.NewContinueAsNewError(ctx, BudgetWorkflowName, b.st)
		}
		b.reap(ctx)
	}
}

type budget struct {
	w      *Shutdowns
	st     BudgetState
	limits plan.Limits
	log    log.Logger
	// released grows with every release: a waiting request looks again.
	released int
	waiting  int
	handled  int
	moving   bool
	// queue: requests the limits hold back wait in st.Waiters (runs of this version on).
	queue bool
	// tellByActivity: answers wait in told for flush, which sends them from a local
	// activity (runs of this version on).
	tellByActivity bool
	told           []activities.Told
	// flushing: a flush is under way; the next waits for it, so that answers go out
	// in the order they were given.
	flushing bool
}

func (b *budget) dueToMove(ctx workflow.Context) bool {
	return b.handled >= budgetUpdatesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

// readLimits reads the worker's limits, recording them when they changed.
func (b *budget) readLimits(ctx workflow.Context) plan.Limits {
	var l plan.Limits
	same := func(a, c any) bool { return fmt.Sprint(a) == fmt.Sprint(c) }
	if err := workflow.MutableSideEffect(ctx, "limits", func(workflow.Context) any { return b.w.Limits }, same).Get(&l); err != nil {
		b.log.Warn("limits not read; keeping the last", "error", err)
		return b.limits
	}
	return l
}

func (b *budget) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryBudget, func() (BudgetView, error) {
		return BudgetView{Limits: b.limits, Leases: slices.Clone(b.st.Leases), Waiting: b.waiting + len(b.st.Waiters),
			Queue: slices.Clone(b.st.Waiters)}, nil
	}, workflow.QueryHandlerOptions{Description: "The budget's limits, the leases held and the requests waiting."}); err != nil {
		return err
	}
	acquire := b.acquire
	if b.queue {
		acquire = func(ctx workflow.Context, req activities.LeaseRequest) (activities.LeaseGrant, error) {
			defer b.flush(ctx)
			return b.acquireOrQueue(ctx, req)
		}
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateAcquire, acquire, workflow.UpdateHandlerOptions{
		Description: "Ask for a lease to shut a node down; a request the limits hold back waits in the queue, and its notify workflow is signalled when it is granted.",
		Validator: func(_ workflow.Context, req activities.LeaseRequest) error {
			return req.Validate()
		},
	}); err != nil {
		return err
	}
	release := func(ctx workflow.Context, ref activities.LeaseRef) error {
		defer b.flush(ctx)
		return b.release(ctx, ref)
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateRelease, release, workflow.UpdateHandlerOptions{
		Description: "Give a lease back.",
		Validator: func(_ workflow.Context, ref activities.LeaseRef) error {
			if !strings.HasPrefix(ref.Holder, activities.ShutdownWorkflowIDPrefix) {
				return fmt.Errorf("holder %q: not a shutdown's workflow ID", ref.Holder)
			}
			return nil
		},
	})
}

// serve answers lease requests that come as signals (SignalAcquire), every one pending
// at a time in one workflow task, reaps every reapEvery, and continues as new when due —
// having taken in every signal sent to this run first.
func (b *budget) serve(ctx workflow.Context) error {
	for _, ref := range b.st.Releases {
		_ = b.release(ctx, ref)
	}
	for _, req := range b.st.Asks {
		b.onAsk(ctx, req)
	}
	b.st.Asks, b.st.Releases = nil, nil
	b.flush(ctx)
	asks, releases := workflow.GetSignalChannel(ctx, SignalAcquire), workflow.GetSignalChannel(ctx, SignalRelease)
	take := func(c workflow.ReceiveChannel) {
		var req activities.LeaseRequest
		c.Receive(ctx, &req)
		b.onAsk(ctx, req)
	}
	give := func(c workflow.ReceiveChannel) {
		var ref activities.LeaseRef
		c.Receive(ctx, &ref)
		if strings.HasPrefix(ref.Holder, activities.ShutdownWorkflowIDPrefix) {
			_ = b.release(ctx, ref)
		}
	}
	takeAll := func() {
		// Releases first: the room they make goes to those already waiting.
		for releases.Len() > 0 {
			give(releases)
		}
		for asks.Len() > 0 {
			take(asks)
		}
	}
	reap := workflow.NewTimer(ctx, reapEvery)
	for {
		reaping := false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(releases, func(c workflow.ReceiveChannel, _ bool) { give(c) })
		sel.AddReceive(asks, func(c workflow.ReceiveChannel, _ bool) { take(c) })
		sel.AddFuture(reap, func(workflow.Future) { reaping = true })
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		sel.Select(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		takeAll()
		if reaping {
			b.reap(ctx)
			reap = workflow.NewTimer(ctx, reapEvery)
		}
		b.flush(ctx)
		if b.dueToMove(ctx) {
			b.moving = true
			// Nothing may block between the last signal taken in and the move: a flush
			// is followed by another look at the channels and the handlers.
			for {
				if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) && !b.flushing }); err != nil {
					return err
				}
				takeAll()
				if len(b.told) == 0 {
					break
				}
				b.flush(ctx)
			}
			return workflow.NewContinueAsNewError(ctx, BudgetWorkflowName, b.st)
		}
	}
}

// tell answers the request whose Notify workflow is notify: now by a signal, or (runs
// of budget-tell-by-activity on) with the next flush.
func (b *budget) tell(ctx workflow.Context, notify string, g activities.LeaseGrant) {
	if b.tellByActivity {
		b.told = append(b.told, activities.Told{Notify: notify, Grant: g})
		return
	}
	// Fire and forget: a workflow that closed meanwhile leaves its lease to the reaper.
	workflow.SignalExternalWorkflow(ctx, notify, "", SignalBudget, g)
}

// flush sends the answers told since the last flush, in one local activity. Should it
// fail, those waiting ask again within budgetRecheck and hear the answer then.
func (b *budget) flush(ctx workflow.Context) {
	if err := workflow.Await(ctx, func() bool { return !b.flushing }); err != nil || len(b.told) == 0 {
		return
	}
	b.flushing = true
	defer func() { b.flushing = false }()
	told := b.told
	b.told = nil
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10*time.Second + time.Duration(len(told))*50*time.Millisecond,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
		Summary:             fmt.Sprintf("tell %d lease request(s) the budget's answer", len(told)),
	})
	if err := workflow.ExecuteLocalActivity(lctx, clusterActs.TellLeases, told).Get(lctx, nil); err != nil {
		b.log.Warn("answers not told; those waiting ask again", "error", err, "answers", len(told))
	}
}

// onAsk answers a request that came as a signal, by a signal to its Notify workflow.
func (b *budget) onAsk(ctx workflow.Context, req activities.LeaseRequest) {
	if err := req.Validate(); err != nil || req.Notify == "" {
		b.log.Warn("lease request ignored", "holder", req.Holder, "error", err)
		return
	}
	wasMoving := b.moving
	b.moving = false // a request taken in before the move is answered by this run
	g, _ := b.acquireOrQueue(ctx, req)
	b.moving = wasMoving
	g.Holder, g.Run = req.Holder, req.Run
	b.tell(ctx, req.Notify, g)
}

// acquireOrQueue grants a lease when the limits allow it, and otherwise puts the request
// in the queue (once: asking again keeps its place) and answers at once. Whenever a
// lease is given back, the queue is granted in order, as far as the limits allow, and
// each request granted is told (SignalBudget to its Notify workflow). A holder that has
// a lease (a drain reserved it, the queue granted it, or the run asks again) is granted
// it, bound to its run.
func (b *budget) acquireOrQueue(ctx workflow.Context, req activities.LeaseRequest) (activities.LeaseGrant, error) {
	b.handled++
	for _, ref := range req.Returning {
		b.giveBack(ctx, ref)
	}
	if b.moving {
		return activities.LeaseGrant{Retry: true, Why: "the budget is moving to a new run"}, nil
	}
	b.limits = b.readLimits(ctx)
	limits := b.limits.Tighten(req.Limits)
	if g, ok := b.held(req, limits); ok {
		b.grantQueue(ctx, req.Holder)
		return g, nil
	}
	w := Waiter{Holder: req.Holder, Run: req.Run, Node: req.Node, Drain: req.Drain, Notify: req.Notify, Limits: req.Limits,
		Serving: req.Serving, Since: workflow.Now(ctx)}
	queued := false
	if req.Unblockable {
		// A node's own SIGTERM: never held back, never behind anyone.
		adm := plan.Admit(limits, b.ask(req))
		b.grant(ctx, w, adm.Why)
		b.grantQueue(ctx, req.Holder)
		return activities.LeaseGrant{Granted: true, Why: adm.Why, InFlight: len(b.st.Leases), Limits: limits}, nil
	}
	if i := b.waiterIndex(req.Holder); i >= 0 {
		w.Since = b.st.Waiters[i].Since // it keeps its place
		b.st.Waiters[i] = w
	} else {
		b.st.Waiters = append(b.st.Waiters, w)
		queued = true
	}
	floors := b.grantQueue(ctx, req.Holder)
	if g, ok := b.held(req, limits); ok {
		return g, nil
	}
	if why, ok := floors[req.Holder]; ok {
		return activities.LeaseGrant{Why: why, Floor: true, InFlight: len(b.st.Leases), Limits: limits}, nil
	}
	i := b.waiterIndex(req.Holder)
	why := plan.Admit(limits, b.askWaiter(b.st.Waiters[i])).Why
	if queued {
		workflow.GetMetricsHandler(ctx).Counter(MetricBudgetQueued).Inc(1)
	}
	b.details(ctx)
	return activities.LeaseGrant{Queued: true, Position: i + 1, Why: why, InFlight: len(b.st.Leases), Limits: limits}, nil
}

// held answers a holder that has a lease: granted, bound to req's run.
func (b *budget) held(req activities.LeaseRequest, limits plan.Limits) (activities.LeaseGrant, bool) {
	i := b.find(req.Holder)
	if i < 0 {
		return activities.LeaseGrant{}, false
	}
	if l := &b.st.Leases[i]; req.Run != "" && l.Run != req.Run {
		// Bound to no run yet (reserved), or to an earlier run of the same ID, which
		// is closed: one run of an ID is open at a time.
		l.Run = req.Run
	}
	return activities.LeaseGrant{Granted: true, Why: b.st.Leases[i].Over, InFlight: len(b.st.Leases), Limits: limits}, true
}

// grant gives w a lease.
func (b *budget) grant(ctx workflow.Context, w Waiter, over string) {
	b.st.Leases = append(b.st.Leases, Lease{Holder: w.Holder, Run: w.Run, Node: w.Node, Drain: w.Drain,
		Since: workflow.Now(ctx), Over: over})
	if over != "" {
		b.log.Warn("lease granted beyond the budget", "node", w.Node, "why", over)
	}
}

// grantQueue grants the queue in order, as far as the limits allow, and tells each
// waiter granted — but asking, which hears it in its answer. A waiter the min-alive
// floor holds back leaves the queue (and is told: it asks again with a fresh view of
// the nodes in service); it returns those, with why.
func (b *budget) grantQueue(ctx workflow.Context, asking string) map[string]string {
	floors := map[string]string{}
	for i := 0; i < len(b.st.Waiters); {
		w := b.st.Waiters[i]
		adm := plan.Admit(b.limits.Tighten(w.Limits), b.askWaiter(w))
		switch {
		case adm.Granted:
			b.grant(ctx, w, adm.Why)
		case adm.Floor:
			floors[w.Holder] = adm.Why
		default:
			// max_parallel is the cluster's, the same for every waiter: nobody behind
			// this one gets in either.
			b.details(ctx)
			return floors
		}
		b.st.Waiters = slices.Delete(b.st.Waiters, i, i+1)
		if w.Notify != "" && w.Holder != asking {
			g := activities.LeaseGrant{Holder: w.Holder, Run: w.Run, Granted: adm.Granted, Why: adm.Why, Floor: adm.Floor,
				InFlight: len(b.st.Leases), Limits: b.limits.Tighten(w.Limits)}
			b.tell(ctx, w.Notify, g)
		}
	}
	b.details(ctx)
	return floors
}

// askWaiter tells Admit how the cluster stands for a waiter.
func (b *budget) askWaiter(w Waiter) plan.Ask {
	return b.ask(activities.LeaseRequest{Node: w.Node, Serving: w.Serving})
}

func (b *budget) waiterIndex(holder string) int {
	return slices.IndexFunc(b.st.Waiters, func(w Waiter) bool { return w.Holder == holder })
}

// acquire (budget runs before the queue) grants a lease when the limits allow it, else
// waits up to req.Wait for a release and looks again. A holder that has a lease (a drain reserved it, or the run
// asks again) is granted it, bound to its run.
func (b *budget) acquire(ctx workflow.Context, req activities.LeaseRequest) (activities.LeaseGrant, error) {
	b.handled++
	for _, ref := range req.Returning {
		b.giveBack(ctx, ref)
	}
	deadline := workflow.Now(ctx).Add(req.Wait.Std())
	for {
		if b.moving {
			return activities.LeaseGrant{Retry: true, Why: "the budget is moving to a new run"}, nil
		}
		b.limits = b.readLimits(ctx)
		limits := b.limits.Tighten(req.Limits)
		if i := b.find(req.Holder); i >= 0 {
			l := &b.st.Leases[i]
			if req.Run != "" && l.Run != req.Run {
				// Bound to no run yet (reserved), or to an earlier run of the same
				// ID, which is closed: one run of an ID is open at a time.
				l.Run = req.Run
			}
			return activities.LeaseGrant{Granted: true, InFlight: len(b.st.Leases), Limits: limits}, nil
		}
		adm := plan.Admit(limits, b.ask(req))
		if adm.Granted {
			b.st.Leases = append(b.st.Leases, Lease{Holder: req.Holder, Run: req.Run, Node: req.Node, Drain: req.Drain,
				Since: workflow.Now(ctx), Over: adm.Why})
			if adm.Why != "" {
				b.log.Warn("lease granted beyond the budget", "node", req.Node, "why", adm.Why)
			}
			b.details(ctx)
			return activities.LeaseGrant{Granted: true, Why: adm.Why, InFlight: len(b.st.Leases), Limits: limits}, nil
		}
		left := deadline.Sub(workflow.Now(ctx))
		if adm.Floor || left <= 0 {
			return activities.LeaseGrant{Why: adm.Why, Floor: adm.Floor, InFlight: len(b.st.Leases), Limits: limits}, nil
		}
		seen := b.released
		b.waiting++
		_, err := workflow.AwaitWithTimeout(ctx, left, func() bool { return b.released != seen || b.moving })
		b.waiting--
		if err != nil {
			return activities.LeaseGrant{}, err
		}
	}
}

// ask tells Admit how the cluster stands for req.
func (b *budget) ask(req activities.LeaseRequest) plan.Ask {
	leased := map[string]bool{}
	for _, l := range b.st.Leases {
		leased[l.Node] = true
	}
	a := plan.Ask{InFlight: len(b.st.Leases), Unblockable: req.Unblockable}
	for _, n := range req.Serving {
		switch {
		case n == req.Node:
			a.Serving = true
		case !leased[n]:
			a.ServingAfter++
		}
	}
	return a
}

func (b *budget) find(holder string) int {
	return slices.IndexFunc(b.st.Leases, func(l Lease) bool { return l.Holder == holder })
}

// release removes the lease of ref's holder when it is bound to ref's run, or to no
// run (reserved). Releasing what is not held is not an error: a retry may release twice.
func (b *budget) release(ctx workflow.Context, ref activities.LeaseRef) error {
	b.handled++
	b.giveBack(ctx, ref)
	if b.queue {
		// A waiter that gives up (its shutdown was cancelled) leaves the queue.
		if i := b.waiterIndex(ref.Holder); i >= 0 && (ref.Run == "" || b.st.Waiters[i].Run == ref.Run) {
			b.st.Waiters = slices.Delete(b.st.Waiters, i, i+1)
		}
		b.grantQueue(ctx, "")
	}
	return nil
}

// giveBack removes ref's lease, if it holds one (see release).
func (b *budget) giveBack(ctx workflow.Context, ref activities.LeaseRef) {
	i := b.find(ref.Holder)
	if i < 0 {
		return
	}
	if l := b.st.Leases[i]; l.Run != "" && ref.Run != "" && l.Run != ref.Run {
		return // another run's
	}
	b.st.Leases = slices.Delete(b.st.Leases, i, i+1)
	b.released++
	b.details(ctx)
}

// reap drops the leases whose holder closed without giving them back.
func (b *budget) reap(ctx workflow.Context) {
	now := workflow.Now(ctx)
	var refs []activities.LeaseRef
	for _, l := range b.st.Leases {
		if l.Run != "" || now.Sub(l.Since) > reserveGrace {
			refs = append(refs, activities.LeaseRef{Holder: l.Holder, Run: l.Run})
		}
	}
	for _, w := range b.st.Waiters {
		if w.Run != "" || now.Sub(w.Since) > reserveGrace {
			refs = append(refs, activities.LeaseRef{Holder: w.Holder, Run: w.Run})
		}
	}
	if len(refs) == 0 {
		return
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2},
		Summary:             "look for leases whose shutdown closed",
	})
	var closed []activities.LeaseRef
	if err := workflow.ExecuteLocalActivity(lctx, clusterActs.ClosedLeases, refs).Get(lctx, &closed); err != nil {
		var canceled *temporal.CanceledError
		if !errors.As(err, &canceled) {
			b.log.Warn("leases not reaped", "error", err)
		}
		return
	}
	for _, ref := range closed {
		if i := b.find(ref.Holder); i >= 0 && b.st.Leases[i].Run == ref.Run {
			b.log.Warn("lease reaped: its shutdown closed without giving it back", "holder", ref.Holder, "run", ref.Run)
			b.st.Leases = slices.Delete(b.st.Leases, i, i+1)
			b.released++
		}
		if i := b.waiterIndex(ref.Holder); i >= 0 && b.st.Waiters[i].Run == ref.Run {
			b.log.Warn("waiter reaped: its shutdown closed while it waited", "holder", ref.Holder, "run", ref.Run)
			b.st.Waiters = slices.Delete(b.st.Waiters, i, i+1)
		}
	}
	if b.queue {
		b.grantQueue(ctx, "")
	}
	b.details(ctx)
}

// details shows the budget in the Temporal UI, and in its gauges.
func (b *budget) details(ctx workflow.Context) {
	metrics := workflow.GetMetricsHandler(ctx)
	metrics.Gauge(MetricBudgetLeases).Update(float64(len(b.st.Leases)))
	metrics.Gauge(MetricBudgetWaiting).Update(float64(len(b.st.Waiters)))
	var s strings.Builder
	fmt.Fprintf(&s, "**Disruption budget**: %s; %d in flight, %d waiting\n\n", b.limits, len(b.st.Leases), len(b.st.Waiters))
	if len(b.st.Leases) > 0 {
		s.WriteString("| node | drain | since | note |\n|---|---|---|---|\n")
		for _, l := range b.st.Leases {
			fmt.Fprintf(&s, "| %s | %s | %s | %s |\n", escapeMarkdown(l.Node), orDash(escapeMarkdown(l.Drain)),
				l.Since.UTC().Format(time.TimeOnly), orDash(escapeMarkdown(l.Over)))
		}
	}
	workflow.SetCurrentDetails(ctx, s.String())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
