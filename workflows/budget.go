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

// BudgetState is what a budget run carries into the next (continue-as-new).
type BudgetState struct {
	Leases []Lease `json:"leases,omitempty"`
}

// BudgetView is the budget as the query returns it.
type BudgetView struct {
	Limits plan.Limits `json:"limits"`
	Leases []Lease     `json:"leases"`
	// Waiting counts the requests waiting for a lease right now.
	Waiting int `json:"waiting"`
}

// Budget is the cluster's disruption budget; Shutdowns.Limits (budget.* of the
// orchestrator) are its limits, recorded in its history whenever they change.
func (w *Shutdowns) Budget(ctx workflow.Context, st BudgetState) error {
	b := &budget{w: w, st: st, log: workflow.GetLogger(ctx)}
	b.limits = b.readLimits(ctx)
	if err := b.register(ctx); err != nil {
		return err
	}
	b.details(ctx)
	for {
		_, err := workflow.AwaitWithTimeout(ctx, reapEvery, func() bool { return b.dueToMove(ctx) })
		if err != nil {
			return err
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
		return BudgetView{Limits: b.limits, Leases: slices.Clone(b.st.Leases), Waiting: b.waiting}, nil
	}, workflow.QueryHandlerOptions{Description: "The budget's limits, the leases held and the requests waiting."}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateAcquire, b.acquire, workflow.UpdateHandlerOptions{
		Description: "Ask for a lease to shut a node down; waits up to the request's wait for one to free up.",
		Validator: func(_ workflow.Context, req activities.LeaseRequest) error {
			return req.Validate()
		},
	}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateRelease, b.release, workflow.UpdateHandlerOptions{
		Description: "Give a lease back.",
		Validator: func(_ workflow.Context, ref activities.LeaseRef) error {
			if !strings.HasPrefix(ref.Holder, activities.ShutdownWorkflowIDPrefix) {
				return fmt.Errorf("holder %q: not a shutdown's workflow ID", ref.Holder)
			}
			return nil
		},
	})
}

// acquire grants a lease when the limits allow it, else waits up to req.Wait for a
// release and looks again. A holder that has a lease (a drain reserved it, or the run
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
	}
	b.details(ctx)
}

// details shows the budget in the Temporal UI.
func (b *budget) details(ctx workflow.Context) {
	var s strings.Builder
	fmt.Fprintf(&s, "**Disruption budget**: %s; %d in flight\n\n", b.limits, len(b.st.Leases))
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
