package activities

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/plan"
)

// Error types of the fleet activities.
const (
	// ErrTypeDrainRefused: a drain's pre-flight found a blocker it cannot go past.
	ErrTypeDrainRefused = "DrainRefused"
	// ErrTypeNoBudget: the worker was built without the budget.
	ErrTypeNoBudget = "NoBudget"
)

// LeaseRequest asks the cluster's budget for a lease: leave to shut a node down.
type LeaseRequest struct {
	// Holder is the workflow ID of the node's shutdown the lease is for; Run its run,
	// "" when a drain reserves the lease before the run exists (the run binds it).
	Holder string `json:"holder"`
	Run    string `json:"run,omitempty"`
	Node   string `json:"node"`
	// Drain names the drain the shutdown is part of, if any.
	Drain string `json:"drain,omitempty"`
	// Serving lists the nodes in service (alive, not blocked) as the asker sees them.
	Serving []string `json:"serving,omitempty"`
	// Limits, when set, tighten the cluster's for this request (a drain's own).
	Limits plan.Limits `json:"limits"`
	// Unblockable: the node's own SIGTERM; never held back, but it counts.
	Unblockable bool `json:"unblockable,omitempty"`
	// Wait is how long a budget of an earlier version may wait for a lease to free up
	// before it answers no; 0 answers at once. The budget now never waits: a request it
	// cannot grant joins its queue (see Notify).
	Wait plan.Duration `json:"wait,omitempty"`
	// Notify, when set, makes the request a signal to the budget rather than an update
	// (no update slot is taken, however many ask at once): the budget answers it by
	// signalling Notify — the shutdown itself (Holder), or the drain that asks for it —
	// with a LeaseGrant for Holder, at once and again when a queued request is granted.
	Notify string `json:"notify,omitempty"`
	// Returning are leases the asker gives back first: a drain hands over the leases of
	// its shutdowns that ended, so that the next one takes their place in one step.
	Returning []LeaseRef `json:"returning,omitempty"`
}

// maxReturning bounds the leases one request gives back.
const maxReturning = 1000

// Validate checks a lease request, naming the field.
func (r LeaseRequest) Validate() error {
	switch {
	case !strings.HasPrefix(r.Holder, ShutdownWorkflowIDPrefix):
		return fmt.Errorf("holder %q: not a shutdown's workflow ID", r.Holder)
	case strings.TrimPrefix(r.Holder, ShutdownWorkflowIDPrefix) != r.Node:
		return fmt.Errorf("holder %q is not the shutdown of node %q", r.Holder, r.Node)
	}
	if err := plan.ValidateNodeName(r.Node); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := r.Limits.Validate(); err != nil {
		return err
	}
	if r.Wait < 0 || r.Wait.Std() > time.Minute {
		return fmt.Errorf("wait %s: want 0 to 1m", r.Wait)
	}
	if len(r.Returning) > maxReturning {
		return fmt.Errorf("returning: %d leases; at most %d", len(r.Returning), maxReturning)
	}
	for _, ref := range r.Returning {
		if !strings.HasPrefix(ref.Holder, ShutdownWorkflowIDPrefix) {
			return fmt.Errorf("returning: holder %q: not a shutdown's workflow ID", ref.Holder)
		}
	}
	if r.Notify != "" && r.Notify != r.Holder && !strings.HasPrefix(r.Notify, DrainWorkflowIDPrefix) {
		return fmt.Errorf("notify %q: the holder's own shutdown or a drain", r.Notify)
	}
	return nil
}

// DrainWorkflowIDPrefix starts every drain's workflow ID.
const DrainWorkflowIDPrefix = "farewell-drain-"

// LeaseGrant is the budget's answer.
type LeaseGrant struct {
	// Holder is whom it answers (a drain hears of several).
	Holder  string `json:"holder,omitempty"`
	Granted bool   `json:"granted"`
	// Why says what holds the shutdown back, or what an unblockable one goes beyond.
	Why string `json:"why,omitempty"`
	// Floor: the min-alive floor holds it back; waiting for others to finish will not
	// help.
	Floor bool `json:"floor,omitempty"`
	// Retry: the budget is moving to a new run; ask again at once.
	Retry bool `json:"retry,omitempty"`
	// Queued: the request waits in the budget's queue, Position of them (1 is next);
	// the budget signals Notify when it grants it.
	Queued   bool `json:"queued,omitempty"`
	Position int  `json:"position,omitempty"`
	// Asked: the request went to the budget as a signal (Notify); its answer comes the
	// same way.
	Asked bool `json:"asked,omitempty"`
	// Run is the run of Holder the answer is for, when the request named one: an answer
	// that comes late (a retried signal) is not taken by a later run of the same ID.
	Run      string      `json:"run,omitempty"`
	InFlight int         `json:"in_flight"`
	Limits   plan.Limits `json:"limits"`
}

// LeaseRef names a lease by its holder and run.
type LeaseRef struct {
	Holder string `json:"holder"`
	Run    string `json:"run,omitempty"`
}

// Budget reaches the cluster's disruption budget (a workflow, through Temporal). Its
// methods are safe for concurrent use.
type Budget interface {
	Acquire(ctx context.Context, req LeaseRequest) (LeaseGrant, error)
	// Ask sends a request with Notify set to the budget (starting it if it does not
	// run); its answer comes to Notify as a signal.
	Ask(ctx context.Context, req LeaseRequest) error
	Release(ctx context.Context, ref LeaseRef) error
	// Closed returns the leases whose holder has no open run any more (the run given,
	// or, for a lease not bound to a run, any).
	Closed(ctx context.Context, refs []LeaseRef) ([]LeaseRef, error)
	// Tell signals the budget's answer g to the workflow that asked (notify); a
	// workflow that closed meanwhile is not an error.
	Tell(ctx context.Context, notify string, g LeaseGrant) error
	// GiveBack gives a lease back by a signal to the budget.
	GiveBack(ctx context.Context, ref LeaseRef) error
}

// Told is one answer of the budget, for the workflow that asked.
type Told struct {
	Notify string     `json:"notify"`
	Grant  LeaseGrant `json:"grant"`
}

// TellLeases signals the budget's answers, each to the workflow that asked,
// tellAtOnce at a time: what the budget runs as a local activity instead of signalling
// from the workflow, which takes a transfer task and one more workflow task of the
// budget per answer. It tells every one it can and returns the first error; a retry
// tells them all again (an answer carries its holder's run, and the same answer heard
// twice changes nothing).
func (a *ClusterActivities) TellLeases(ctx context.Context, told []Told) error {
	if a.Budget == nil {
		return temporal.NewNonRetryableApplicationError("this worker has no budget", ErrTypeNoBudget, nil)
	}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		first error
		slots = make(chan struct{}, tellAtOnce)
	)
	for _, t := range told {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := a.Budget.Tell(ctx, t.Notify, t.Grant); err != nil {
				mu.Lock()
				defer mu.Unlock()
				if first == nil {
					first = fmt.Errorf("tell %s: %w", t.Notify, err)
				}
			}
		})
	}
	wg.Wait()
	return first
}

// tellAtOnce is how many answers TellLeases signals at a time.
const tellAtOnce = 16

// GiveBackLease gives a lease back by a signal to the budget.
func (a *ClusterActivities) GiveBackLease(ctx context.Context, ref LeaseRef) error {
	if a.Budget == nil {
		return temporal.NewNonRetryableApplicationError("this worker has no budget", ErrTypeNoBudget, nil)
	}
	return a.Budget.GiveBack(ctx, ref)
}

// AcquireLease asks the budget for a lease, telling it the nodes in service as this
// observer sees them.
func (a *ClusterActivities) AcquireLease(ctx context.Context, req LeaseRequest) (LeaseGrant, error) {
	if a.Budget == nil {
		return LeaseGrant{}, temporal.NewNonRetryableApplicationError("this worker has no budget", ErrTypeNoBudget, nil)
	}
	req.Serving = a.serving()
	if req.Notify != "" {
		if err := a.Budget.Ask(ctx, req); err != nil {
			return LeaseGrant{}, err
		}
		return LeaseGrant{Holder: req.Holder, Asked: true}, nil
	}
	return a.Budget.Acquire(ctx, req)
}

// ReleaseLease gives a lease back.
func (a *ClusterActivities) ReleaseLease(ctx context.Context, ref LeaseRef) error {
	if a.Budget == nil {
		return temporal.NewNonRetryableApplicationError("this worker has no budget", ErrTypeNoBudget, nil)
	}
	return a.Budget.Release(ctx, ref)
}

// ClosedLeases returns the leases whose holder closed without giving them back.
func (a *ClusterActivities) ClosedLeases(ctx context.Context, refs []LeaseRef) ([]LeaseRef, error) {
	if a.Budget == nil {
		return nil, temporal.NewNonRetryableApplicationError("this worker has no budget", ErrTypeNoBudget, nil)
	}
	return a.Budget.Closed(ctx, refs)
}

// serving lists the nodes in service in the observer's view: alive and not blocked.
func (a *ClusterActivities) serving() []string {
	var out []string
	for _, m := range a.Observer.Members() {
		if m.Role == RoleNode && m.State == StateAlive && !m.Blocked {
			out = append(out, m.Name)
		}
	}
	slices.Sort(out)
	return out
}

// Selector chooses the nodes of a drain: those named, or all, or by name glob, or by
// metadata tags (every tag given must match). Observers are never chosen.
type Selector struct {
	Nodes []string          `json:"nodes,omitempty"`
	All   bool              `json:"all,omitempty"`
	Glob  string            `json:"glob,omitempty"`
	Tags  map[string]string `json:"tags,omitempty"`
}

// Validate checks a selector: exactly one way of choosing, each well formed.
func (s Selector) Validate() error {
	ways := 0
	if len(s.Nodes) > 0 {
		ways++
		seen := map[string]bool{}
		for _, n := range s.Nodes {
			if err := plan.ValidateNodeName(n); err != nil {
				return fmt.Errorf("node: %w", err)
			}
			if seen[n] {
				return fmt.Errorf("node %q is named twice", n)
			}
			seen[n] = true
		}
	}
	if s.All {
		ways++
	}
	if s.Glob != "" {
		ways++
		if _, err := path.Match(s.Glob, ""); err != nil {
			return fmt.Errorf("glob %q: %v", s.Glob, err)
		}
	}
	if len(s.Tags) > 0 {
		ways++
		for _, k := range plan.SortedKeys(s.Tags) {
			if err := plan.ValidateTag(k, s.Tags[k]); err != nil {
				return err
			}
		}
	}
	switch ways {
	case 0:
		return fmt.Errorf("no nodes chosen: name them, or use all, a glob or tags")
	case 1:
		return nil
	}
	return fmt.Errorf("choose nodes one way only: by name, all, a glob or tags")
}

// String says what the selector chooses.
func (s Selector) String() string {
	switch {
	case s.All:
		return "all nodes"
	case s.Glob != "":
		return "nodes matching " + s.Glob
	case len(s.Tags) > 0:
		var kv []string
		for _, k := range plan.SortedKeys(s.Tags) {
			kv = append(kv, k+"="+s.Tags[k])
		}
		return "nodes tagged " + strings.Join(kv, ",")
	}
	if len(s.Nodes) > selectorNamesShown+1 {
		// A drain of a thousand named nodes reads as its first few and a count, not as
		// a page of names in front of its table (`farewell drain status` lists them all).
		return fmt.Sprintf("%s and %d more", strings.Join(s.Nodes[:selectorNamesShown], ", "), len(s.Nodes)-selectorNamesShown)
	}
	return strings.Join(s.Nodes, ", ")
}

// selectorNamesShown is how many of a long list of named nodes a selector's String
// names.
const selectorNamesShown = 5

// Match reports whether the selector chooses m (named nodes are matched by the
// caller, in their order).
func (s Selector) Match(m MemberInfo) bool {
	if m.Role != RoleNode {
		return false
	}
	switch {
	case s.All:
		return true
	case s.Glob != "":
		ok, _ := path.Match(s.Glob, m.Name)
		return ok
	case len(s.Tags) > 0:
		for _, k := range plan.SortedKeys(s.Tags) {
			if m.Tags[k] != s.Tags[k] {
				return false
			}
		}
		return true
	}
	return false
}

// PreflightInput asks what would block a drain.
type PreflightInput struct {
	Selector Selector `json:"selector"`
	// Limits are the drain's own; Cluster the cluster's budget.
	Limits  plan.Limits `json:"limits"`
	Cluster plan.Limits `json:"cluster"`
	// Budget is the most one shutdown may take (the plan's budget); Pause the pause
	// between two starts.
	Budget plan.Duration `json:"budget"`
	Pause  plan.Duration `json:"pause,omitempty"`
}

// Blockers a drain's pre-flight names.
const (
	BlockUnknown    = "unknown"
	BlockNotANode   = "not a node"
	BlockNotAlive   = "not alive"
	BlockNoWorker   = "no worker"
	BlockRunning    = "already shutting down"
	BlockFloor      = "would break min-alive"
	BlockNoneChosen = "nothing chosen"
)

// NodeCheck is what the pre-flight found for one node.
type NodeCheck struct {
	Node     string `json:"node"`
	State    string `json:"state,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Blocker names what stands in the way ("" for nothing); Note says more.
	Blocker string `json:"blocker,omitempty"`
	Note    string `json:"note,omitempty"`
	// Fatal: the drain cannot start while this stands.
	Fatal bool `json:"fatal,omitempty"`
	// Skip: nothing to do for this node (it is out already).
	Skip bool `json:"skip,omitempty"`
	// Join: a shutdown of it runs; the drain joins it.
	Join bool `json:"join,omitempty"`
	// RunID of the running shutdown joined.
	RunID string `json:"run_id,omitempty"`
}

// DrainPlan is the pre-flight's answer: per node what blocks it, the waves and the
// worst case.
type DrainPlan struct {
	Selector Selector    `json:"selector"`
	Nodes    []NodeCheck `json:"nodes"`
	// Serving counts the nodes in service now; InFlight the cluster's shutdowns
	// holding a lease.
	Serving  int         `json:"serving"`
	InFlight int         `json:"in_flight"`
	Limits   plan.Limits `json:"limits"`
	Cluster  plan.Limits `json:"cluster"`
	// Takes counts the nodes the drain would take out; Waves the rounds it needs at
	// most max-parallel at once; WorstCase their time if every shutdown used its
	// whole budget.
	Takes     int           `json:"takes"`
	Waves     int           `json:"waves"`
	WorstCase plan.Duration `json:"worst_case"`
	Budget    plan.Duration `json:"budget"`
}

// Fatal lists the blockers the drain cannot start with.
func (p DrainPlan) Fatal() []string {
	var out []string
	for _, c := range p.Nodes {
		if c.Fatal {
			out = append(out, c.Node+": "+c.Note)
		}
	}
	return out
}

// ShutdownInfo is what the pre-flight and a drain need to know of a node's shutdown.
type ShutdownInfo struct {
	Running bool   `json:"running"`
	RunID   string `json:"run_id,omitempty"`
	// Outcome of the latest run, once closed.
	Outcome  plan.Outcome  `json:"outcome,omitempty"`
	Total    plan.Duration `json:"total,omitempty"`
	Instance string        `json:"instance,omitempty"`
	// Converged: the members saw the node out at the run's end.
	Converged bool   `json:"converged,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Fleet looks at the shutdowns and workers of a fleet in Temporal, for drains. Its
// methods are safe for concurrent use.
type Fleet interface {
	// Running reports whether node's latest shutdown runs, and its run (no RunID: it
	// never had one).
	Running(ctx context.Context, node string) (ShutdownInfo, error)
	// Latest reports node's latest shutdown with its outcome once closed.
	Latest(ctx context.Context, node string) (ShutdownInfo, error)
	// Pollers counts the workers polling node's task queue.
	Pollers(ctx context.Context, node string) (int, error)
	// Leased lists the nodes whose shutdown holds a lease of the budget.
	Leased(ctx context.Context) ([]string, error)
}

// PreflightDrain says, per chosen node, what would block its shutdown: unknown, not
// alive, no worker polling its task queue, already shutting down (joined), below the
// min-alive floor; and the waves and worst case of the drain.
func (a *ClusterActivities) PreflightDrain(ctx context.Context, in PreflightInput) (DrainPlan, error) {
	if a.Fleet == nil {
		return DrainPlan{}, temporal.NewNonRetryableApplicationError("this worker cannot look at the fleet", ErrTypeNoTemporal, nil)
	}
	limits := in.Cluster.Tighten(in.Limits)
	p := DrainPlan{Selector: in.Selector, Limits: in.Limits, Cluster: in.Cluster, Budget: in.Budget}
	all := a.Observer.Members()
	if len(all) <= 1 {
		return p, fmt.Errorf("the observer %s has not joined the cluster yet", a.Observer.Name())
	}
	byName := map[string]MemberInfo{}
	for _, m := range all {
		byName[m.Name] = m
		if m.Role == RoleNode && m.State == StateAlive && !m.Blocked {
			p.Serving++
		}
	}
	var chosen []string
	if len(in.Selector.Nodes) > 0 {
		chosen = in.Selector.Nodes
	} else {
		for _, m := range all {
			if in.Selector.Match(m) && m.Name != a.Observer.Name() {
				chosen = append(chosen, m.Name)
			}
		}
		slices.Sort(chosen)
	}
	if len(chosen) == 0 {
		p.Nodes = []NodeCheck{{Node: "(" + in.Selector.String() + ")", Blocker: BlockNoneChosen, Fatal: true,
			Note: "no node of the cluster is chosen by " + in.Selector.String()}}
		return p, nil
	}
	leased, err := a.Fleet.Leased(ctx)
	if err != nil {
		return p, fmt.Errorf("read the budget: %w", err)
	}
	p.InFlight = len(leased)
	gone := map[string]bool{} // in service now, but on their way out
	for _, n := range leased {
		gone[n] = true
	}
	left := 0 // in service once those in flight are gone
	for _, m := range all {
		if m.Role == RoleNode && m.State == StateAlive && !m.Blocked && !gone[m.Name] {
			left++
		}
	}
	looked, err := a.lookUp(ctx, chosen, byName)
	if err != nil {
		return p, err
	}
	for _, name := range chosen {
		c := NodeCheck{Node: name}
		m, known := byName[name]
		switch {
		case !known:
			c.Blocker, c.Fatal, c.Note = BlockUnknown, true, "no member of that name in the cluster"
		case m.Role != RoleNode:
			c.Blocker, c.Fatal, c.Note = BlockNotANode, true, "an "+m.Role+": it cannot be shut down"
		}
		if c.Fatal {
			p.Nodes = append(p.Nodes, c)
			continue
		}
		c.State, c.Instance = m.State, m.Instance
		info := looked[name].running
		serving := m.State == StateAlive && !m.Blocked
		switch {
		case info.Running:
			c.Blocker, c.Join, c.RunID = BlockRunning, true, info.RunID
			c.Note = "its shutdown runs already (run " + info.RunID + "): the drain joins it"
			if serving && !gone[name] {
				left--
			}
		case m.State == StateLeft || m.State == StateEvicted:
			c.Blocker, c.Skip, c.Note = BlockNotAlive, true, m.State+" already: nothing to do"
		case m.State == StateDead:
			c.Blocker, c.Note = BlockNotAlive, "dead (unreachable): its steps cannot run, it will be forced out"
		case m.State == StateLeaving:
			c.Blocker, c.Note = BlockNotAlive, "leaving with no shutdown running: the drain shuts it down"
		case m.Blocked:
			c.Blocker, c.Note = BlockNotAlive, "blocked (no heartbeat): not in service, the floor does not hold it back"
		}
		if !c.Skip && !c.Join {
			if looked[name].pollers == 0 {
				c.Blocker = BlockNoWorker
				c.Note = strings.TrimSpace(c.Note + " no worker polls its task queue: its graceful steps cannot run, it will be forced out")
			}
			if serving && limits.MinAlive > 0 && left-1 < limits.MinAlive {
				c.Blocker = BlockFloor
				c.Note = fmt.Sprintf("it would leave %d nodes in service, fewer than min-alive %d: the drain stops before it", left-1, limits.MinAlive)
			} else if serving {
				left--
			}
		}
		if c.Blocker != BlockFloor && !c.Skip {
			p.Takes++
		}
		p.Nodes = append(p.Nodes, c)
	}
	k := in.Limits.MaxParallel
	if in.Cluster.MaxParallel > 0 && (k == 0 || in.Cluster.MaxParallel < k) {
		k = in.Cluster.MaxParallel
	}
	p.Waves = plan.Waves(p.Takes, k)
	p.WorstCase = plan.Duration(plan.WorstCase(p.Takes, k, in.Budget.Std(), in.Pause.Std()))
	return p, nil
}

// lookups is what Temporal says of one chosen node.
type lookups struct {
	running ShutdownInfo
	pollers int
}

// preflightLookups is how many chosen nodes a pre-flight looks up in Temporal at once:
// one after the other, a thousand nodes' two lookups each took longer than the
// pre-flight may.
const preflightLookups = 16

// lookUp asks Temporal, preflightLookups nodes at a time, whether each chosen member
// has a shutdown running and how many workers poll its task queue.
func (a *ClusterActivities) lookUp(ctx context.Context, chosen []string, members map[string]MemberInfo) (map[string]lookups, error) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		first error
		out   = map[string]lookups{}
		slots = make(chan struct{}, preflightLookups)
	)
	for _, name := range chosen {
		m, ok := members[name]
		if !ok || m.Role != RoleNode {
			continue // refused without a lookup
		}
		slots <- struct{}{}
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			<-slots
			break // the pre-flight fails anyway
		}
		wg.Add(1)
		gone := m.State == StateLeft || m.State == StateEvicted // skipped: no worker to count
		go func() {
			defer func() { <-slots; wg.Done() }()
			var l lookups
			info, err := a.Fleet.Running(ctx, name)
			if err != nil {
				err = fmt.Errorf("look up the shutdown of %s: %w", name, err)
			} else if l.running = info; !info.Running && !gone {
				if l.pollers, err = a.Fleet.Pollers(ctx, name); err != nil {
					err = fmt.Errorf("look up the workers of %s: %w", name, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			out[name] = l
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err() // stopped early: what was not looked up would read as no worker
	}
	return out, first
}

// GateInput asks whether a drain may start its next shutdown.
type GateInput struct {
	// Out lists the processes of the drain's finished shutdowns not yet seen out.
	Out []ProcessRef `json:"out,omitempty"`
}

// ProcessRef is one process of a node.
type ProcessRef struct {
	Node     string `json:"node"`
	Instance string `json:"instance,omitempty"`
}

// GateOutput says whether the cluster is healthy enough for the next shutdown.
type GateOutput struct {
	Ready bool `json:"ready"`
	// Why says what the gate waits for.
	Why string `json:"why,omitempty"`
	// Out lists the processes of the input now seen out.
	Out []ProcessRef `json:"out,omitempty"`
}

// DrainGate is a drain's health gate: the processes its earlier shutdowns took out are
// out for the observer, and no member is blocked.
func (a *ClusterActivities) DrainGate(ctx context.Context, in GateInput) (GateOutput, error) {
	var out GateOutput
	var why []string
	for _, p := range in.Out {
		m, ok := a.Observer.Member(p.Node)
		if !ok || m.Instance != p.Instance || m.State == StateLeft || m.State == StateEvicted || m.State == StateDead {
			out.Out = append(out.Out, p)
			continue
		}
		why = append(why, fmt.Sprintf("%s is still %s", p.Node, m.State))
	}
	for _, m := range a.Observer.Members() {
		if m.Role == RoleNode && m.State == StateAlive && m.Blocked {
			why = append(why, fmt.Sprintf("%s is blocked (no heartbeat for %s)", m.Name, plan.Millis(m.HeartbeatAge)))
		}
	}
	out.Ready = len(why) == 0
	out.Why = strings.Join(why, "; ")
	return out, nil
}

// LatestShutdown reports node's latest shutdown, for a drain that joined it.
func (a *ClusterActivities) LatestShutdown(ctx context.Context, node string) (ShutdownInfo, error) {
	if a.Fleet == nil {
		return ShutdownInfo{}, temporal.NewNonRetryableApplicationError("this worker cannot look at the fleet", ErrTypeNoTemporal, nil)
	}
	return a.Fleet.Latest(ctx, node)
}
