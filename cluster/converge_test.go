package cluster

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// check asks once, giving the peers time to answer on a loaded machine (it returns as
// soon as all did; only a check that expects no answer waits it out).
func check(t *testing.T, m *Member, q ConvergenceQuery) Convergence {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conv, err := m.CheckConvergence(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	return conv
}

func withObserver(t *testing.T, members []*Member) *Member {
	t.Helper()
	observer := newTestMember(t, "observer", withRole(RoleObserver))
	if err := observer.Join(context.Background(), []string{members[0].Addr()}); err != nil {
		t.Fatal(err)
	}
	waitAll(t, append([]*Member{observer}, members...), "everyone sees everyone", func(m *Member) bool {
		alive := 0
		for _, i := range m.Members() {
			if i.State == StateAlive {
				alive++
			}
		}
		return alive == len(members)+1
	})
	return observer
}

// An observer cut off from its peers never reports a vacuous convergence: while the
// others look alive it lacks their answers, and once they look dead it cannot tell
// being cut off from their being gone.
func TestIsolatedObserverIsUnverified(t *testing.T) {
	members := newTestCluster(t, 4)
	observer := withObserver(t, members)
	leaver := members[3]
	q := ConvergenceQuery{Target: leaver.Name(), Instance: leaver.Instance()}
	if err := leaver.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a converged check before the cut", func() bool { return check(t, observer, q).Converged })

	observer.Transport().Set(Fault{Mode: FaultIsolate})
	if conv := check(t, observer, q); conv.Status != Unverified || conv.Answered != 0 || conv.Needed != 2 {
		t.Fatalf("cut off, others alive in its view: %+v", conv)
	}
	eventually(t, 15*time.Second, "the observer to see the others dead", func() bool {
		_, dead := observer.othersBesides(leaver.Name())
		return dead == 3
	})
	if conv := check(t, observer, q); conv.Status != Unverified {
		t.Fatalf("cut off, others dead in its view: %+v", conv)
	}
}

// With force off a dead node is not out: it may be one whose network hangs.
func TestStrictLeftDoesNotCountTheDead(t *testing.T) {
	members := newTestCluster(t, 4)
	observer := withObserver(t, members)
	crashed := members[3]
	crashed.Shutdown() // what a crash looks like: no leave
	waitAll(t, append([]*Member{observer}, members[:3]...), "node-4 seen dead", func(m *Member) bool {
		return stateOf(m, crashed.Name()) == StateDead
	})
	q := ConvergenceQuery{Target: crashed.Name(), Instance: crashed.Instance()}
	if conv := check(t, observer, q); !conv.Converged {
		t.Errorf("dead counts as out by default: %+v", conv)
	}
	q.StrictLeft = true
	if conv := check(t, observer, q); conv.Status != Pending {
		t.Errorf("strict: dead is not out: %+v", conv)
	}
}

// A process replaced by a newer one under the same name is gone for a run that was
// about it; the newer one is never evicted by that run.
func TestReplacedProcessIsOutAndTheNewOneUntouched(t *testing.T) {
	members := newTestCluster(t, 3)
	observer := withObserver(t, members)
	old := members[2]
	oldInstance := old.Instance()
	old.Shutdown()
	waitAll(t, []*Member{observer, members[0], members[1]}, "node-3 seen dead", func(m *Member) bool {
		return stateOf(m, "node-3") == StateDead
	})
	fresh := restart(t, "node-3", members[0], observer, members[0], members[1])

	if conv := check(t, observer, ConvergenceQuery{Target: "node-3", Instance: oldInstance, StrictLeft: true}); !conv.Converged {
		t.Errorf("the replaced process is not out: %+v", conv)
	}
	if conv := check(t, observer, ConvergenceQuery{Target: "node-3", Instance: fresh.Instance()}); conv.Converged {
		t.Errorf("the new process counted out: %+v", conv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := observer.Evict(ctx, "node-3", oldInstance, "stale run")
	if err != nil || res.Gone == "" || res.Confirmed {
		t.Fatalf("evicting the replaced process: %+v %v", res, err)
	}
	for _, m := range []*Member{observer, members[0], members[1]} {
		if info, _ := m.Member("node-3"); !asNoMessageMade(info.State) || info.Instance != fresh.Instance() {
			t.Errorf("%s sees the new node-3 %s (%s)", m.Name(), info.State, info.Instance)
		}
	}
	if _, _, evicted := fresh.Evicted(); evicted {
		t.Error("the new process was evicted by a run about the old one")
	}
}

// An eviction nobody else heard does not count.
func TestEvictionUnconfirmedWhenCutOff(t *testing.T) {
	members := newTestCluster(t, 3)
	observer := withObserver(t, members)
	observer.Transport().Set(Fault{Mode: FaultIsolate})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	res, err := observer.Evict(ctx, "node-3", members[2].Instance(), "cut off")
	if err != nil || res.Confirmed {
		t.Fatalf("an eviction nobody heard: %+v %v", res, err)
	}
	if !asNoMessageMade(stateOf(members[1], "node-3")) {
		t.Error("the eviction got through a dropped network")
	}
}

// A member that joins (or restarts) learns from its peers which processes left, died
// or were evicted before it was there.
func TestNewcomerLearnsWhoLeftDiedOrWasEvicted(t *testing.T) {
	members := newTestCluster(t, 5)
	first := withObserver(t, members)
	left, dead, evicted := members[2], members[3], members[4]
	if err := left.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	dead.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), opDeadline)
	defer cancel()
	if res, err := first.Evict(ctx, evicted.Name(), evicted.Instance(), "test"); err != nil || !res.Confirmed {
		t.Fatalf("evict: %+v %v", res, err)
	}
	waitAll(t, members[:2], "the others to see who is out", func(m *Member) bool {
		return stateOf(m, "node-3") == StateLeft && stateOf(m, "node-4") == StateDead && stateOf(m, "node-5") == StateEvicted
	})

	newcomer := newTestMember(t, "observer-2", withRole(RoleObserver))
	if err := newcomer.Join(context.Background(), []string{members[0].Addr()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the newcomer to know who is out", func() bool {
		l, _ := newcomer.Member("node-3")
		d, _ := newcomer.Member("node-4")
		e, _ := newcomer.Member("node-5")
		return l.State == StateLeft && l.Instance == left.Instance() && d.State == StateDead && d.Instance == dead.Instance() &&
			e.State == StateEvicted && e.Instance == evicted.Instance()
	})
}

// On a cluster without eviction keys (loopback) too, a member that never saw a process
// learns its eviction in push/pull (P2 once had a survivor that never saw the zombie
// out: news of its join had not reached that survivor before it stalled, and the
// eviction of a name it did not know was dropped): should the process come back, it is
// refused there as everywhere.
func TestNewcomerLearnsEvictionsWithoutKeys(t *testing.T) {
	members := newTestCluster(t, 3)
	evicter, target := members[0], members[2]
	// The zombie: its network hangs, so that it neither hears its eviction nor leaves.
	target.Transport().Set(Fault{Mode: FaultStall})
	ctx, cancel := context.WithTimeout(context.Background(), opDeadline)
	defer cancel()
	if res, err := evicter.Evict(ctx, target.Name(), target.Instance(), "test"); err != nil || !res.Confirmed {
		t.Fatalf("evict: %+v %v", res, err)
	}
	waitAll(t, members[:2], "the eviction to count", func(m *Member) bool { return stateOf(m, target.Name()) == StateEvicted })
	// Once memberlist gave the silent zombie up, it tells a newcomer nothing of it.
	waitAll(t, members[:2], "memberlist to find the zombie dead", func(m *Member) bool {
		for _, n := range m.ml.Members() {
			if n.Name == target.Name() {
				return false
			}
		}
		return true
	})
	newcomer := newTestMember(t, "newcomer")
	if err := newcomer.Join(context.Background(), []string{members[0].Addr()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the newcomer to learn the eviction", func() bool {
		e, _ := newcomer.Member(target.Name())
		return e.State == StateEvicted && e.Instance == target.Instance()
	})
}

// The verdict needs a strict majority of the peers seen alive, at every size (every
// end-to-end test has three peers, where ⌈n/2⌉ and ⌊n/2⌋+1 agree).
func TestAnswersNeededIsAStrictMajority(t *testing.T) {
	for _, tc := range []struct{ peers, dead, want int }{
		{0, 0, 0}, {0, 3, 1}, {1, 0, 1}, {2, 0, 2}, {3, 0, 2}, {4, 0, 3}, {4, 5, 3}, {5, 0, 3}, {6, 0, 4}, {10, 0, 6}, {99, 0, 50}, {100, 0, 51},
	} {
		got := answersNeeded(tc.peers, tc.dead)
		if got != tc.want {
			t.Errorf("%d peers alive, %d dead: %d answers needed, want %d", tc.peers, tc.dead, got, tc.want)
		}
		if tc.peers > 0 && (2*got <= tc.peers || 2*(got-1) > tc.peers) {
			t.Errorf("%d of %d is not the smallest strict majority", got, tc.peers)
		}
	}
}

// An eviction that names no process takes the one that has the name now; the same
// process evicted again keeps its first eviction; and a new process under a name
// evicted before is evicted anew: the earlier eviction is of another process.
func TestEvictionByNameTakesTheCurrentProcess(t *testing.T) {
	members := newTestCluster(t, 3)
	observer := withObserver(t, members)
	old := members[2]
	// Each eviction gets its own deadline: the waits between them may be long on a
	// loaded machine.
	evict := func(by *Member, instance, reason string) (EvictResult, error) {
		ctx, cancel := context.WithTimeout(context.Background(), opDeadline)
		defer cancel()
		return by.Evict(ctx, "node-3", instance, reason)
	}
	if res, err := evict(observer, "", "by name"); err != nil || !res.Confirmed || res.Gone != "" {
		t.Fatalf("Evict by name: %+v %v", res, err)
	}
	// Each peer holds the eviction itself (its reason), not only the state the
	// evicted process gossips of itself while it fences.
	evictedEverywhere := func(instance, reason string) func(*Member) bool {
		return func(m *Member) bool {
			info, _ := m.Member("node-3")
			return info.State == StateEvicted && info.Instance == instance && info.EvictReason == reason
		}
	}
	waitAll(t, []*Member{observer, members[0], members[1]}, "the first node-3 evicted", evictedEverywhere(old.Instance(), "by name"))
	eventually(t, 10*time.Second, "the first node-3 to fence itself", func() bool {
		_, _, evicted := old.Evicted()
		return evicted
	})
	// The same process evicted again, by another member: the first eviction stands.
	before, _ := members[0].Member("node-3")
	if res, err := evict(members[0], old.Instance(), "repeat"); err != nil || !res.AlreadyEvicted {
		t.Fatalf("Evict the same process again: %+v %v", res, err)
	}
	if info, _ := members[0].Member("node-3"); info.EvictedBy != "observer" || info.EvictReason != "by name" || !info.Since.Equal(before.Since) {
		t.Errorf("a repeated eviction taken as new: by %s (%q) since %v, was since %v", info.EvictedBy, info.EvictReason, info.Since, before.Since)
	}

	fresh := restart(t, "node-3", members[0], observer, members[0], members[1])
	if res, err := evict(observer, "", "again"); err != nil || !res.Confirmed || res.AlreadyEvicted {
		t.Fatalf("Evict the new process by name: %+v %v", res, err)
	}
	waitAll(t, []*Member{observer, members[0], members[1]}, "the new node-3 evicted", evictedEverywhere(fresh.Instance(), "again"))
	eventually(t, 10*time.Second, "the new node-3 to fence itself", func() bool {
		_, _, evicted := fresh.Evicted()
		return evicted
	})
}

// restart starts a new process of name that joins through seed, beats, and is seen
// alive with its own instance by every one of watchers.
func restart(t *testing.T, name string, seed *Member, watchers ...*Member) *Member {
	t.Helper()
	fresh := newTestMember(t, name)
	if err := fresh.Join(context.Background(), []string{seed.Addr()}); err != nil {
		t.Fatal(err)
	}
	fresh.StartHeartbeat()
	waitAll(t, watchers, "the new "+name+" seen alive", func(m *Member) bool {
		info, _ := m.Member(name)
		return info.State == StateAlive && info.Instance == fresh.Instance()
	})
	return fresh
}

// What a member answers of a process, and the verdict it reaches with nobody else to
// ask: by its own view, but never converged when it sees members dead (it cannot tell
// being cut off from their being gone).
func TestAMembersOwnAnswer(t *testing.T) {
	w, d := newWitness(t)
	p := newProcess("p", 7001)
	d.NotifyJoin(p.node(t, StateAlive, 1))
	for _, c := range []struct {
		instance string
		want     State
	}{
		{p.instance, StateAlive},
		{"", StateAlive},
		{"another", Replaced},
	} {
		if got := w.viewOf("p", c.instance); got != c.want {
			t.Errorf("p, instance %q: %q, want %q", c.instance, got, c.want)
		}
	}
	if got := w.viewOf("nobody", "x"); got != "" {
		t.Errorf("a name never heard of: %q", got)
	}

	q := ConvergenceQuery{Target: "p", Instance: p.instance}
	// Alone but for the target: its own view decides.
	if conv := check(t, w, q); conv.Status != Pending || conv.Converged || conv.Needed != 0 || len(conv.Pending) != 1 || conv.Pending[0] != "witness" {
		t.Errorf("p alive in the only view: %+v", conv)
	}
	w.onLeft(p.left(), false)
	if conv := check(t, w, q); conv.Status != Converged || !conv.Converged || len(conv.Pending) != 0 || conv.Views["witness"] != StateLeft {
		t.Errorf("p left in the only view: %+v", conv)
	}
	// A member it saw die: one answer is needed, and nobody is there to give it.
	dead := newProcess("dead", 7002)
	d.NotifyJoin(dead.node(t, StateAlive, 1))
	d.NotifyLeave(dead.node(t, StateAlive, 1))
	if alive, n := w.othersBesides("p"); len(alive) != 0 || n != 1 {
		t.Errorf("others besides p: %v alive, %d dead; want none alive, one dead", alive, n)
	}
	if conv := check(t, w, q); conv.Status != Unverified || conv.Converged || conv.Needed != 1 || conv.Answered != 0 {
		t.Errorf("p left, a member dead: %+v", conv)
	}
}

// A peer that does not answer is pending, as is one that sees the process in; the
// verdict waits for a majority of the peers seen alive.
func TestPeersThatDoNotAnswerArePending(t *testing.T) {
	w, d := newWitness(t)
	p := newProcess("p", 7001)
	d.NotifyJoin(p.node(t, StateAlive, 1))
	w.onLeft(p.left(), false)
	// Two peers alive in the view, at addresses nothing answers on.
	for i, name := range []string{"b", "a"} {
		d.NotifyJoin(newProcess(name, uint16(7002+i)).node(t, StateAlive, 1))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	conv, err := w.CheckConvergence(ctx, ConvergenceQuery{Target: "p", Instance: p.instance})
	if err != nil {
		t.Fatal(err)
	}
	if conv.Status != Unverified || conv.Needed != 2 || conv.Answered != 0 || len(conv.Pending) != 2 || conv.Pending[0] != "a" || conv.Pending[1] != "b" {
		t.Errorf("p left, two peers silent: %+v", conv)
	}
}

// A check returns as soon as every peer answered, not at its deadline; WaitConverged
// checks until the process is out, and with no interval still gives each check time for
// answers.
func TestChecksEndWithTheirAnswers(t *testing.T) {
	members := newTestCluster(t, 4)
	observer, target := members[0], members[3]
	q := ConvergenceQuery{Target: target.Name(), Instance: target.Instance()}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conv, err := observer.CheckConvergence(ctx, q)
	if err != nil || conv.Answered != 2 || conv.Status != Pending {
		t.Fatalf("target alive: %+v %v", conv, err)
	}
	if ctx.Err() != nil {
		t.Error("the check waited for its deadline though every peer answered")
	}

	wctx, wcancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer wcancel()
	var checks atomic.Int32
	left := make(chan error, 1)
	conv, err = observer.WaitConverged(wctx, q, 0, func(c Convergence) {
		if checks.Add(1) == 1 {
			if c.Converged {
				t.Error("converged before the target left")
			}
			go func() { left <- target.Leave(5 * time.Second) }()
		}
	})
	if err != nil || !conv.Converged || conv.Answered != 2 {
		t.Errorf("waited for the target to leave: %+v %v after %d checks", conv, err, checks.Load())
	}
	if checks.Load() == 0 {
		return // it returned before its first check was done: the target never left
	}
	select {
	case err := <-left:
		if err != nil {
			t.Errorf("leave: %v", err)
		}
	case <-time.After(opDeadline):
		t.Error("the target's Leave did not return")
	}
}

// A confirmation waits, within its round, for the answer that confirms: a quicker peer
// that does not see the state yet does not end the round.
func TestConfirmationWaitsForTheAnswerThatConfirms(t *testing.T) {
	members := newTestCluster(t, 4)
	asker, sees, behind := members[0], members[1], members[2:]
	x := newProcess("x", 7001)
	(&delegate{m: sees}).NotifyJoin(x.node(t, StateLeaving, 1))
	for _, b := range behind {
		(&delegate{m: b}).NotifyJoin(x.node(t, StateAlive, 1))
	}
	// The peer that sees it leaving answers 30 ms late, well within a round (100 ms);
	// the two behind answer at once. Some nine rounds in a second: every one must wait.
	sees.Transport().Set(Fault{Mode: FaultDelay, Delay: 30 * time.Millisecond, StreamsOnly: true})
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := asker.confirmSeen(ctx, "x", x.instance, StateLeaving); err != nil {
		t.Errorf("one peer sees x leaving, yet no round confirmed it: %v", err)
	}
}

// An answer is taken for the question it answers: a late answer to an earlier query is
// not taken for an answer to a later one, whichever kind of query came between.
func TestAnswersAreTakenForTheirOwnQuestion(t *testing.T) {
	members := newTestCluster(t, 3)
	asker, slow, other := members[0], members[1], members[2]
	x, y := newProcess("x", 7001), newProcess("y", 7002)
	(&delegate{m: slow}).NotifyJoin(x.node(t, StateLeaving, 1))
	(&delegate{m: slow}).NotifyJoin(y.node(t, StateAlive, 1))
	slow.Transport().Set(Fault{Mode: FaultDelay, Delay: 300 * time.Millisecond, StreamsOnly: true})
	early, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	asker.ask(early, ConvergenceQuery{Target: "x", Instance: x.instance}, []string{slow.Name()}, nil)
	cancel()
	if _, err := asker.RemoteView(t.Context(), other.Name()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	views := asker.ask(ctx, ConvergenceQuery{Target: "y", Instance: y.instance}, []string{slow.Name()}, func(State) bool { return true })
	if views[slow.Name()] != StateAlive {
		t.Errorf("asked about y, got %v", views)
	}
}

// A peer's view comes with its times as ages, and is read back as times on this
// member's clock: a heartbeat 10 s ago and a state 20 s old stay that old.
func TestARemoteViewKeepsItsAges(t *testing.T) {
	members := newTestCluster(t, 2)
	asker, peer := members[0], members[1]
	p := newProcess("p", 7001)
	(&delegate{m: peer}).NotifyJoin(p.node(t, StateAlive, 1))
	peer.mu.Lock()
	peer.view["p"].LastHeartbeat = time.Now().Add(-10 * time.Second)
	peer.view["p"].Since = time.Now().Add(-20 * time.Second)
	peer.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), opDeadline)
	defer cancel()
	view, err := asker.RemoteView(ctx, peer.Name())
	if err != nil {
		t.Fatal(err)
	}
	near := func(got time.Time, ago time.Duration) bool {
		d := time.Since(got) - ago
		return d > -time.Second && d < 5*time.Second
	}
	for _, info := range view {
		if info.Name == "p" {
			if !near(info.LastHeartbeat, 10*time.Second) || !near(info.Since, 20*time.Second) {
				t.Errorf("p's heartbeat %s ago, state %s old; want about 10 s and 20 s", time.Since(info.LastHeartbeat), time.Since(info.Since))
			}
			return
		}
	}
	t.Errorf("p is not in %s's view: %+v", peer.Name(), view)
}
