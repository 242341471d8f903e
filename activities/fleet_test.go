package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/farewell-project/farewell/plan"
)

// fakeObserver is a fixed view of the cluster.
type fakeObserver struct{ members []MemberInfo }

func (o fakeObserver) Name() string { return "observer" }
func (o fakeObserver) Member(name string) (MemberInfo, bool) {
	for _, m := range o.members {
		if m.Name == name {
			return m, true
		}
	}
	return MemberInfo{}, false
}
func (o fakeObserver) Members() []MemberInfo { return o.members }
func (o fakeObserver) Evict(context.Context, string, string, string) (EvictResult, error) {
	return EvictResult{}, nil
}
func (o fakeObserver) WaitConverged(context.Context, ConvergenceQuery, time.Duration, func(Convergence)) (Convergence, error) {
	return Convergence{}, nil
}

// fakeFleet answers from maps.
type fakeFleet struct {
	running map[string]string // node → run of its running shutdown
	pollers map[string]int
	leased  []string
}

func (f fakeFleet) Running(_ context.Context, node string) (ShutdownInfo, error) {
	if run, ok := f.running[node]; ok {
		return ShutdownInfo{Running: true, RunID: run}, nil
	}
	return ShutdownInfo{}, nil
}
func (f fakeFleet) Latest(ctx context.Context, node string) (ShutdownInfo, error) {
	return f.Running(ctx, node)
}
func (f fakeFleet) Pollers(_ context.Context, node string) (int, error) { return f.pollers[node], nil }
func (f fakeFleet) Leased(context.Context) ([]string, error)            { return f.leased, nil }

func node(name, state string, tags map[string]string) MemberInfo {
	return MemberInfo{Name: name, Role: RoleNode, State: state, Instance: "i-" + name, Tags: tags}
}

func TestPreflightNamesEachBlocker(t *testing.T) {
	obs := fakeObserver{members: []MemberInfo{
		{Name: "observer", Role: RoleObserver, State: StateAlive},
		node("a", StateAlive, map[string]string{"rack": "r1"}),
		node("b", StateAlive, map[string]string{"rack": "r1"}),
		node("c", StateAlive, map[string]string{"rack": "r2"}),
		node("d", StateLeft, nil),
		node("e", StateAlive, nil),
		node("f", StateAlive, nil),
	}}
	fleet := fakeFleet{running: map[string]string{"c": "run-c"}, pollers: map[string]int{"a": 1, "b": 1, "c": 1, "f": 1}}
	acts := &ClusterActivities{Observer: obs, Fleet: fleet}
	p, err := acts.PreflightDrain(context.Background(), PreflightInput{
		Selector: Selector{Nodes: []string{"a", "b", "c", "d", "e", "f", "zz", "observer"}},
		Limits:   plan.Limits{MaxParallel: 2, MinAlive: 1}, Budget: plan.Duration(time.Minute),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "", "b": "", "c": BlockRunning, "d": BlockNotAlive, "e": BlockNoWorker, "f": BlockFloor,
		"zz": BlockUnknown, "observer": BlockNotANode}
	for _, c := range p.Nodes {
		if c.Blocker != want[c.Node] {
			t.Errorf("%s: blocker %q (%s), want %q", c.Node, c.Blocker, c.Note, want[c.Node])
		}
	}
	// 5 in service (a b c e f): a, b, c (joined) and e leave 1; f would leave none.
	if fatal := p.Fatal(); len(fatal) != 2 || !strings.Contains(fatal[0], "zz") || !strings.Contains(fatal[1], "observer") {
		t.Errorf("fatal: %v", fatal)
	}
	if p.Takes != 4 || p.Waves != 2 || p.WorstCase.Std() != 2*time.Minute {
		t.Errorf("takes %d in %d waves, worst case %s", p.Takes, p.Waves, p.WorstCase)
	}

	p, err = acts.PreflightDrain(context.Background(), PreflightInput{Selector: Selector{Tags: map[string]string{"rack": "r1"}}})
	if err != nil || len(p.Nodes) != 2 || p.Nodes[0].Node != "a" || p.Nodes[1].Node != "b" {
		t.Errorf("by tag: %+v %v", p.Nodes, err)
	}
	p, err = acts.PreflightDrain(context.Background(), PreflightInput{Selector: Selector{Glob: "x*"}})
	if err != nil || len(p.Fatal()) != 1 || p.Nodes[0].Blocker != BlockNoneChosen {
		t.Errorf("nothing chosen: %+v %v", p.Nodes, err)
	}
}

func TestDrainGateWaitsForOutAndUnblocked(t *testing.T) {
	blocked := node("b", StateAlive, nil)
	blocked.Blocked, blocked.HeartbeatAge = true, 7*time.Second
	acts := &ClusterActivities{Observer: fakeObserver{members: []MemberInfo{node("a", StateLeaving, nil), blocked, node("c", StateLeft, nil)}}}
	out, err := acts.DrainGate(context.Background(), GateInput{Out: []ProcessRef{{Node: "a", Instance: "i-a"}, {Node: "c", Instance: "i-c"}, {Node: "gone", Instance: "x"}}})
	if err != nil || out.Ready || !strings.Contains(out.Why, "a is still leaving") || !strings.Contains(out.Why, "b is blocked") || len(out.Out) != 2 {
		t.Errorf("%+v %v", out, err)
	}
}

func TestSelectorValidate(t *testing.T) {
	for sel, want := range map[string]Selector{
		"no nodes chosen":   {},
		"one way only":      {All: true, Glob: "a*"},
		"named twice":       {Nodes: []string{"a", "a"}},
		"glob":              {Glob: "[a"},
		"tag":               {Tags: map[string]string{"rack": "r 1"}},
		"node: \"a b\" has": {Nodes: []string{"a b"}},
	} {
		if err := want.Validate(); err == nil || !strings.Contains(err.Error(), sel) {
			t.Errorf("%+v: %v, want %q", want, err, sel)
		}
	}
	if err := (Selector{Nodes: []string{"a"}, All: true}).Validate(); err == nil || !strings.Contains(err.Error(), "one way only") {
		t.Errorf("names and all: %v", err)
	}
	if err := (Selector{Tags: map[string]string{"rack": "r1"}}).Validate(); err != nil {
		t.Error(err)
	}
}

// A selector reads as what it chooses; a long list of names as its first few and how
// many more, a list one name longer than that in full.
func TestSelectorString(t *testing.T) {
	names := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("n%d", i+1))
		}
		return out
	}
	for want, sel := range map[string]Selector{
		"all nodes":                       {All: true},
		"nodes matching web-*":            {Glob: "web-*"},
		"nodes tagged rack=r1,zone=a":     {Tags: map[string]string{"zone": "a", "rack": "r1"}},
		"n1, n2":                          {Nodes: names(2)},
		"n1, n2, n3, n4, n5, n6":          {Nodes: names(6)},
		"n1, n2, n3, n4, n5 and 2 more":   {Nodes: names(7)},
		"n1, n2, n3, n4, n5 and 995 more": {Nodes: names(1000)},
	} {
		if got := sel.String(); got != want {
			t.Errorf("%+v: %q, want %q", sel, got, want)
		}
	}
}

// The watchdog's thresholds: a node is a zombie only once it is past its state's
// threshold (blocked_after, leaving_after, evicted_after), never at it; orchestrators and
// the observer itself are never zombies; an evicted node is one only when it was heard
// heartbeating after its eviction was evicted_after old.
func TestFindZombiesThresholds(t *testing.T) {
	const (
		blocked = time.Minute
		leaving = 5 * time.Minute
		evicted = 30 * time.Second
		ms      = time.Millisecond
	)
	q := ZombieQuery{BlockedAfter: plan.Duration(blocked), LeavingAfter: plan.Duration(leaving), EvictedAfter: plan.Duration(evicted)}
	members := []MemberInfo{
		{Name: "observer", Role: RoleNode, State: StateAlive, HeartbeatAge: time.Hour}, // itself
		{Name: "orch", Role: RoleObserver, State: StateAlive, HeartbeatAge: time.Hour},
		{Name: "at-blocked", Role: RoleNode, State: StateAlive, Blocked: true, HeartbeatAge: blocked},
		{Name: "past-blocked", Role: RoleNode, State: StateAlive, Blocked: true, HeartbeatAge: blocked + ms},
		// Not heard from for long, but not flagged: this observer has not probed it
		// lately (in a big cluster it probes each node once every few intervals).
		{Name: "unheard-not-blocked", Role: RoleNode, State: StateAlive, HeartbeatAge: blocked + time.Hour},
		{Name: "leaving-long-ago-beating", Role: RoleNode, State: StateLeaving, StateAge: leaving, HeartbeatAge: blocked + ms},
		{Name: "past-leaving", Role: RoleNode, State: StateLeaving, StateAge: leaving + ms},
		{Name: "evicted-silent", Role: RoleNode, State: StateEvicted, StateAge: time.Hour},
		{Name: "evicted-beat-early", Role: RoleNode, State: StateEvicted, StateAge: evicted + 10*time.Second, EvictedHeartbeatAge: 10 * time.Second},
		{Name: "evicted-beat-late", Role: RoleNode, State: StateEvicted, StateAge: evicted + 10*time.Second, EvictedHeartbeatAge: 10*time.Second - ms},
		{Name: "evicted-young", Role: RoleNode, State: StateEvicted, StateAge: evicted, EvictedHeartbeatAge: ms},
		{Name: "left", Role: RoleNode, State: StateLeft, StateAge: time.Hour, HeartbeatAge: time.Hour},
		{Name: "dead", Role: RoleNode, State: StateDead, StateAge: time.Hour, HeartbeatAge: time.Hour},
	}
	acts := &ClusterActivities{Observer: fakeObserver{members: members}}
	out, err := acts.FindZombies(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, z := range out.Zombies {
		got[z.Node] = z.Kind
	}
	want := map[string]string{"past-blocked": ZombieBlocked, "past-leaving": ZombieLeaving, "evicted-beat-late": ZombieEvictedAlive}
	if !maps.Equal(got, want) {
		t.Errorf("zombies %v, want %v", got, want)
	}
	if out.Nodes != len(members)-2 {
		t.Errorf("looked at %d nodes, want %d (not itself, not the orchestrator)", out.Nodes, len(members)-2)
	}
}

// The min-alive floor at its edge: a node whose shutdown leaves exactly min-alive nodes
// in service goes; the next, which would leave one fewer, is held back, and its note
// says how many it would leave. Nodes a lease already holds count as gone.
func TestPreflightFloorAtItsEdge(t *testing.T) {
	blocked := node("x", StateAlive, nil)
	blocked.Blocked = true
	obs := fakeObserver{members: []MemberInfo{
		{Name: "observer", Role: RoleObserver, State: StateAlive},
		{Name: "orch", Role: "orchestrator", State: StateAlive},
		node("a", StateAlive, nil), node("b", StateAlive, nil), node("c", StateAlive, nil), node("d", StateAlive, nil),
		node("gone", StateDead, nil), blocked,
	}}
	pollers := map[string]int{"a": 1, "b": 1, "c": 1, "d": 1}
	acts := &ClusterActivities{Observer: obs, Fleet: fakeFleet{pollers: pollers, leased: []string{"d"}}}
	p, err := acts.PreflightDrain(context.Background(), PreflightInput{
		Selector: Selector{Nodes: []string{"a", "b", "c"}}, Limits: plan.Limits{MinAlive: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Serving != 4 || p.InFlight != 1 {
		t.Errorf("serving %d (want a, b, c, d: 4; not the observer, the orchestrator, the dead or the blocked), in flight %d", p.Serving, p.InFlight)
	}
	// d is leased (on its way out): a leaves 2 in service, b leaves 1 = min-alive, c none.
	want := map[string]string{"a": "", "b": "", "c": BlockFloor}
	for _, c := range p.Nodes {
		if c.Blocker != want[c.Node] {
			t.Errorf("%s: blocker %q (%s), want %q", c.Node, c.Blocker, c.Note, want[c.Node])
		}
		if c.Node == "c" && !strings.Contains(c.Note, "it would leave 0 nodes in service, fewer than min-alive 1") {
			t.Errorf("c's note: %q", c.Note)
		}
	}

	// Without a floor, nothing is held back — not even the last node in service when
	// every other is leased.
	acts.Fleet = fakeFleet{pollers: pollers, leased: []string{"a", "b", "d"}}
	p, err = acts.PreflightDrain(context.Background(), PreflightInput{Selector: Selector{Nodes: []string{"a", "c"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Nodes {
		if c.Blocker != "" {
			t.Errorf("no floor: %s held back (%s)", c.Node, c.Note)
		}
	}
}

// A drain's waves: at most the tighter of its own and the cluster's max_parallel
// (either may be unset) at once.
func TestPreflightWavesUseTheTighterMaxParallel(t *testing.T) {
	var members []MemberInfo
	pollers := map[string]int{}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		members = append(members, node(n, StateAlive, nil))
		pollers[n] = 1
	}
	acts := &ClusterActivities{Observer: fakeObserver{members: members}, Fleet: fakeFleet{pollers: pollers}}
	for _, tt := range []struct{ own, cluster, waves int }{
		{2, 0, 3}, {0, 2, 3}, {2, 3, 3}, {3, 2, 3}, {0, 0, 1}, {5, 1, 5},
	} {
		p, err := acts.PreflightDrain(context.Background(), PreflightInput{Selector: Selector{All: true},
			Limits: plan.Limits{MaxParallel: tt.own}, Cluster: plan.Limits{MaxParallel: tt.cluster}})
		if err != nil || p.Takes != 5 || p.Waves != tt.waves {
			t.Errorf("own %d, cluster %d: %d nodes in %d waves, want 5 in %d (%v)", tt.own, tt.cluster, p.Takes, p.Waves, tt.waves, err)
		}
	}
}

// failingFleet cannot look a node up.
type failingFleet struct{ fakeFleet }

func (failingFleet) Running(_ context.Context, node string) (ShutdownInfo, error) {
	if node == "b" {
		return ShutdownInfo{}, errors.New("temporal is away")
	}
	return ShutdownInfo{}, nil
}

// A pre-flight that could not look every node up fails, saying which — it does not
// read a node it never asked about as one without a worker.
func TestPreflightFailsWhenALookupFails(t *testing.T) {
	members := []MemberInfo{node("a", StateAlive, nil), node("b", StateAlive, nil)}
	acts := &ClusterActivities{Observer: fakeObserver{members: members}, Fleet: failingFleet{}}
	_, err := acts.PreflightDrain(context.Background(), PreflightInput{Selector: Selector{All: true}})
	if err == nil || !strings.Contains(err.Error(), "look up the shutdown of b") {
		t.Errorf("a failed lookup: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	acts.Fleet = fakeFleet{pollers: map[string]int{"a": 1, "b": 1}}
	if _, err := acts.PreflightDrain(ctx, PreflightInput{Selector: Selector{All: true}}); !errors.Is(err, context.Canceled) {
		t.Errorf("a pre-flight stopped before its lookups: %v, want the context's error", err)
	}
}

// An observer that sees only itself has not joined: a drain's pre-flight refuses to
// plan on what it cannot see; with one other member, it plans.
func TestPreflightNeedsAnObserverThatJoined(t *testing.T) {
	self := MemberInfo{Name: "observer", Role: "observer", State: StateAlive}
	alone := &ClusterActivities{Observer: fakeObserver{members: []MemberInfo{self}}, Fleet: fakeFleet{}}
	if _, err := alone.PreflightDrain(context.Background(), PreflightInput{Selector: Selector{All: true}}); err == nil || !strings.Contains(err.Error(), "has not joined the cluster yet") {
		t.Errorf("an observer alone: %v; want it said it has not joined", err)
	}
	joined := &ClusterActivities{Observer: fakeObserver{members: []MemberInfo{self, node("a", StateAlive, nil)}}, Fleet: fakeFleet{pollers: map[string]int{"a": 1}}}
	if p, err := joined.PreflightDrain(context.Background(), PreflightInput{Selector: Selector{All: true}}); err != nil || len(p.Nodes) != 1 {
		t.Errorf("an observer with one node: %+v, %v; want a plan of that node", p.Nodes, err)
	}
}
