package cluster

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/farewell-project/farewell/internal/testkit"
)

// A node is blocked while alive and its own record says its heartbeat has stood still
// for longer than the expiration — not at the expiration, not while leaving, never an
// observer — and the time of its last beat is what the record says, never later than
// now.
func TestLivenessRecordsJudgeTheNode(t *testing.T) {
	w, d := newWitness(t) // expiration testExpiration
	p := newProcess("p", 7001)
	d.NotifyJoin(p.node(t, StateAlive, 1))
	exp := testExpiration.Milliseconds()
	steps := []struct {
		what    string
		seq     uint64
		stalled int64
		blocked bool
	}{
		{"beating", 3, 0, false},
		{"stood still as long as the expiration", 3, exp, false},
		{"stood still longer", 3, exp + 100, true},
		{"beats again", 4, 0, false},
	}
	for _, s := range steps {
		w.onLiveness(p.live(s.seq, s.stalled), false)
		info, _ := w.Member("p")
		if info.Blocked != s.blocked || info.HeartbeatSeq != s.seq || info.stalledMS != s.stalled {
			t.Errorf("%s: blocked %v, seq %d, stalled %d ms", s.what, info.Blocked, info.HeartbeatSeq, info.stalledMS)
		}
		if info.LastHeartbeat.After(time.Now()) {
			t.Errorf("%s: last heartbeat %s is in the future", s.what, info.LastHeartbeat)
		}
	}
	before, _ := w.Member("p")
	w.onLiveness(p.live(5, 10_000), false)
	if info, _ := w.Member("p"); !info.LastHeartbeat.Equal(before.LastHeartbeat) {
		t.Errorf("a record of a beat 10 s ago moved the last heartbeat from %s to %s", before.LastHeartbeat, info.LastHeartbeat)
	}

	w.onState(p.state(StateLeaving, 2))
	w.onLiveness(p.live(5, 20_000), false)
	if info, _ := w.Member("p"); info.Blocked {
		t.Error("a leaving node was flagged blocked")
	}

	o := newProcess("o", 7002)
	o.role = RoleObserver
	d.NotifyJoin(o.node(t, StateAlive, 1))
	w.onLiveness(o.live(5, 20_000), false)
	if info, _ := w.Member("o"); info.Blocked {
		t.Error("an observer was flagged blocked")
	}
}

// An evicted process that still beats did not fence itself: the first fresh beat marks
// it; a record that it stands still does not.
func TestAnEvictedProcessThatBeatsIsMarked(t *testing.T) {
	w, d := newWitness(t) // no verifier: any eviction counts
	p := newProcess("p", 7001)
	d.NotifyJoin(p.node(t, StateAlive, 1))
	w.onEvict(evictionOf("p", p.instance), false, false)
	w.onLiveness(p.live(3, 5_000), false)
	if info, _ := w.Member("p"); !info.EvictedHeartbeat.IsZero() {
		t.Error("a record that the evicted process stands still marked it beating")
	}
	if got := shared(w); len(got) != 0 {
		t.Errorf("records shared for a process that fenced itself: %+v", got)
	}
	w.onLiveness(p.live(4, 0), false)
	info, _ := w.Member("p")
	if info.EvictedHeartbeat.IsZero() || info.State != StateEvicted || info.Blocked {
		t.Errorf("an evicted process that beats: %s, evicted heartbeat %s, blocked %v", info.State, info.EvictedHeartbeat, info.Blocked)
	}
	got := shared(w)
	if len(got) != 1 || got[0].Node != "p" || got[0].Seq != 4 || got[0].StalledMS != 0 {
		t.Errorf("records shared: %+v, want p's fresh beat", got)
	}
}

// shared are the liveness records w shares with newcomers.
func shared(w *Member) []liveness {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.blockedRecords()
}

// evictionOf is an eviction of a process, unsigned: for members without a verifier.
func evictionOf(node, instance string) evictMsg {
	return evictMsg{Node: node, Instance: instance, By: "orchestrator", Reason: "test", At: time.Now().UnixMilli()}
}

// Only a blocked node's record is shared with newcomers, as its own process signed it.
func TestBlockedRecordsAreShared(t *testing.T) {
	w, d := newWitness(t)
	stuck, fine, also := newProcess("stuck", 7001), newProcess("fine", 7002), newProcess("also", 7003)
	for _, p := range []*process{stuck, fine, also} {
		d.NotifyJoin(p.node(t, StateAlive, 1))
	}
	w.onLiveness(stuck.live(7, 60_000), false)
	w.onLiveness(fine.live(9, 0), false)
	w.onLiveness(also.live(8, 30_000), false)
	got := shared(w)
	slices.SortFunc(got, func(a, b liveness) int { return strings.Compare(a.Node, b.Node) })
	if len(got) != 2 || got[1].Node != "stuck" || got[1].Seq != 7 || got[1].StalledMS != 60_000 || got[1].Instance != stuck.instance || got[0].Node != "also" {
		t.Fatalf("records shared: %+v, want also's and stuck's", got)
	}
	// Relayed to a newcomer in push/pull, it checks: the newcomer flags the node too.
	n := newTestMember(t, "newcomer")
	nd := &delegate{m: n}
	nd.NotifyJoin(stuck.node(t, StateAlive, 1))
	nd.MergeRemoteState(d.LocalState(false), false)
	if info, _ := n.Member("stuck"); !info.Blocked {
		t.Error("a newcomer did not take the shared record of a blocked node")
	}
}

// A probe's answer counts only as the liveness of the node probed, and only when it is
// one: nothing, more than maxMessage bytes, or another node's record is ignored.
func TestProbeAnswersAreTheProbedNodes(t *testing.T) {
	w, d := newWitness(t)
	p, q := newProcess("p", 7001), newProcess("q", 7002)
	d.NotifyJoin(p.node(t, StateAlive, 1))
	d.NotifyJoin(q.node(t, StateAlive, 1))
	probed := &memberlist.Node{Name: "p"}
	// padded is p's record as JSON with trailing spaces (still valid JSON), size bytes long.
	padded := func(r liveness, size int) []byte {
		b := mustJSON(t, r)
		return append(b, bytes.Repeat([]byte(" "), size-len(b))...)
	}
	d.NotifyPingComplete(probed, time.Millisecond, nil)
	d.NotifyPingComplete(probed, time.Millisecond, mustJSON(t, q.live(5, 60_000)))
	d.NotifyPingComplete(probed, time.Millisecond, padded(p.live(5, 60_000), maxMessage+1))
	for _, name := range []string{"p", "q"} {
		if info, _ := w.Member(name); info.Blocked || info.HeartbeatSeq != 0 {
			t.Errorf("%s: blocked %v, seq %d after answers that were not its own", name, info.Blocked, info.HeartbeatSeq)
		}
	}
	d.NotifyPingComplete(probed, time.Millisecond, padded(p.live(5, 60_000), maxMessage))
	if info, _ := w.Member("p"); !info.Blocked || info.HeartbeatSeq != 5 {
		t.Errorf("p's own answer of maxMessage bytes: blocked %v, seq %d", info.Blocked, info.HeartbeatSeq)
	}
}

// A member's own record: none before its first beat; while it beats, it has not stood
// still; once stopped, how long it has, to the 100 ms; signed anew only when it changes.
func TestOwnLiveness(t *testing.T) {
	// Beats a second apart: the first comes at once, and no pause of the machine makes
	// the next one late before the checks below.
	m := newTestMember(t, "self", func(o *Options) { o.HeartbeatInterval = time.Second; o.ReconnectInterval = -1 })
	if b := m.ownLiveness(); b != nil {
		t.Fatalf("a member that never beat answers probes with %s", b)
	}
	m.StartHeartbeat()
	eventually(t, opDeadline, "a beat", func() bool { return m.ownLiveness() != nil })
	var r liveness
	first := m.ownLiveness()
	if err := json.Unmarshal(first, &r); err != nil || r.Node != "self" || r.Instance != m.Instance() || r.Seq == 0 || r.StalledMS != 0 {
		t.Fatalf("record while beating: %+v %v", r, err)
	}
	if again := m.ownLiveness(); &again[0] != &first[0] {
		t.Error("the record was made anew with nothing new to say")
	}
	// Between two beats, a while after the last: it has not stood still.
	sinceBeat := func() time.Duration { m.mu.Lock(); defer m.mu.Unlock(); return time.Since(m.lastBeat) }
	eventually(t, opDeadline, "150 ms to 900 ms after a beat", func() bool {
		if since := sinceBeat(); since < 150*time.Millisecond || since > 900*time.Millisecond {
			return false
		}
		_ = json.Unmarshal(m.ownLiveness(), &r)
		return sinceBeat() <= 900*time.Millisecond
	})
	if r.StalledMS != 0 {
		t.Errorf("between two beats its record says it stood still %d ms", r.StalledMS)
	}
	m.StopHeartbeat()
	eventually(t, opDeadline, "the record to say it stands still", func() bool {
		_ = json.Unmarshal(m.ownLiveness(), &r)
		return r.StalledMS >= 200
	})
	if r.StalledMS%100 != 0 {
		t.Errorf("stood still %d ms: not to the 100 ms", r.StalledMS)
	}
	sig := r.Sig
	r.Sig = nil
	if !verify(m.key.Public().(ed25519.PublicKey), domainLiveness, r, sig) {
		t.Error("the record is not signed by the process")
	}
}

// A heartbeat does not start while the member leaves, once it left, or once it was
// evicted — each alone is enough.
func TestNoHeartbeatAfterTheEnd(t *testing.T) {
	m := newTestMember(t, "m", func(o *Options) { o.ReconnectInterval = -1 })
	for _, c := range []struct {
		what string
		set  func(on bool)
	}{
		{"leaving", func(on bool) { m.departing = on }},
		{"left", func(on bool) { m.left = on }},
		{"evicted", func(on bool) {
			m.evicted = nil
			if on {
				m.evicted = &evictMsg{Node: "m", Instance: m.Instance(), By: "orchestrator"}
			}
		}},
	} {
		m.mu.Lock()
		c.set(true)
		m.mu.Unlock()
		m.StartHeartbeat()
		if m.HeartbeatRunning() {
			t.Errorf("%s: the heartbeat started", c.what)
			m.StopHeartbeat()
		}
		m.mu.Lock()
		c.set(false)
		m.mu.Unlock()
	}
	m.StartHeartbeat()
	if !m.HeartbeatRunning() {
		t.Error("the heartbeat of a member in service did not start")
	}
}

// A member out for longer than ForgetAfter is forgotten with its leave, one alive is
// kept whatever its age, and an eviction is kept 24 times longer.
func TestForgetting(t *testing.T) {
	w, d := newWitness(t, func(o *Options) { o.ForgetAfter = time.Minute })
	gone, alive, evicted := newProcess("gone", 7001), newProcess("alive", 7002), newProcess("evicted", 7003)
	gone.dmax = 0 // an older Farewell's: forgetting it uncounts it
	for _, p := range []*process{gone, alive, evicted} {
		d.NotifyJoin(p.node(t, StateAlive, 1))
	}
	w.onLeft(gone.left(), false)
	w.onEvict(evictionOf("evicted", evicted.instance), false, false)
	d.MergeRemoteState(mustJSON(t, sharedState{Deads: []deadMsg{{Node: "ghost", Instance: "i", Addr: "127.0.0.1:1"}}}), false)
	// Out since one moment, so that the edges below are exact.
	since := time.Now()
	w.mu.Lock()
	w.view["gone"].Since, w.view["evicted"].Since, w.evictSeen["evicted"] = since, since, since
	w.view["ghost"].Since = since
	evictedAt := since
	w.mu.Unlock()
	known := func(name string) bool { _, ok := w.Member(name); return ok }
	forget := func(at time.Time) {
		w.mu.Lock()
		w.forgetLocked(at)
		w.mu.Unlock()
	}

	forget(since.Add(time.Minute))
	if !known("gone") {
		t.Error("forgotten at ForgetAfter, not after it")
	}
	forget(since.Add(time.Minute + time.Millisecond))
	w.mu.Lock()
	_, leaveKept := w.lefts["gone"]
	_, evictionKept := w.evictions["evicted"]
	w.mu.Unlock()
	if known("gone") || leaveKept {
		t.Errorf("out past ForgetAfter: still known %v, its leave kept %v", known("gone"), leaveKept)
	}
	if known("ghost") {
		t.Error("a death learned from a peer is kept past ForgetAfter")
	}
	checkCounts(t, w)
	if !known("alive") || !known("witness") {
		t.Error("a member in service was forgotten")
	}
	if known("evicted") || !evictionKept {
		t.Errorf("evicted past ForgetAfter: still in the view %v, eviction kept %v (want gone, kept)", known("evicted"), evictionKept)
	}
	forget(evictedAt.Add(24 * time.Minute))
	w.mu.Lock()
	_, evictionKept = w.evictions["evicted"]
	w.mu.Unlock()
	if !evictionKept {
		t.Error("an eviction forgotten at 24 × ForgetAfter, not after it")
	}
	forget(evictedAt.Add(24*time.Minute + time.Millisecond))
	w.mu.Lock()
	_, evictionKept = w.evictions["evicted"]
	_, seenKept := w.evictSeen["evicted"]
	w.mu.Unlock()
	if evictionKept || seenKept {
		t.Error("an eviction kept past 24 × ForgetAfter")
	}
}

// A heartbeat is sent straight only to the peers of an older Farewell that are alive or
// leaving, signed by this process; with none, nothing is made to send.
func TestBeatsGoStraightOnlyToOlderMembersInService(t *testing.T) {
	w, d := newWitness(t)
	if legacy, msg := w.count(time.Now()); legacy != nil || msg != nil {
		t.Errorf("with no older member: %d targets, message %q", len(legacy), msg)
	}
	procs := joinProcesses(t, d, func(p *process) {
		if p.name != "new-alive" {
			p.dmax = 0
		}
	}, "old-alive", "old-leaving", "old-dead", "new-alive")
	w.onState(procs["old-leaving"].state(StateLeaving, 2))
	d.NotifyLeave(procs["old-dead"].node(t, StateAlive, 1))

	legacy, msg := w.count(time.Now())
	if to := nodeNames(legacy); to != "old-alive old-leaving" {
		t.Errorf("heartbeats go straight to %q, want old-alive and old-leaving", to)
	}
	if len(msg) == 0 || msg[0] != msgHeartbeat {
		t.Fatalf("message %q is not a heartbeat", msg)
	}
	var hb heartbeatMsg
	if err := json.Unmarshal(msg[1:], &hb); err != nil {
		t.Fatal(err)
	}
	sig := hb.Sig
	hb.Sig = nil
	if hb.Node != "witness" || hb.Seq != 2 || !verify(w.key.Public().(ed25519.PublicKey), domainHeartbeat, hb, sig) {
		t.Errorf("heartbeat %+v (the second counted), signed by the process: %v", hb, verify(w.key.Public().(ed25519.PublicKey), domainHeartbeat, hb, sig))
	}
}

// An older Farewell's node is blocked once its last heartbeat is older than the
// expiration — not at it — while alive, and only a node: never a leaving one, an
// observer, or this member itself.
func TestOlderMembersAreJudgedByTheirHeartbeats(t *testing.T) {
	w, d := newWitness(t)
	procs := joinProcesses(t, d, func(p *process) {
		p.dmax = 0
		if p.name == "observer" {
			p.role = RoleObserver
		}
	}, "node", "leaving", "observer")
	w.onState(procs["leaving"].state(StateLeaving, 2))
	w.mu.Lock()
	last := time.Now()
	for _, info := range w.view {
		info.LastHeartbeat, info.Blocked = last, false // whatever the member's own watch saw meanwhile
		if info.Name == "witness" {
			w.setLegacyLocked(info, true) // as if: a member never judges itself
		}
	}
	atExpiration := w.judgeLegacyLocked(last.Add(testExpiration))
	past := w.judgeLegacyLocked(last.Add(testExpiration + time.Millisecond))
	again := w.judgeLegacyLocked(last.Add(testExpiration + time.Second))
	w.mu.Unlock()
	if len(atExpiration) != 0 {
		t.Errorf("blocked at the expiration: %v", atExpiration)
	}
	if len(past) != 1 || past[0].Name != "node" {
		t.Errorf("blocked past the expiration: %+v, want the alive node alone", past)
	}
	if len(again) != 0 {
		t.Errorf("flagged again: %+v", again)
	}
	for name, want := range map[string]bool{"node": true, "leaving": false, "observer": false, "witness": false} {
		if info, _ := w.Member(name); info.Blocked != want {
			t.Errorf("%s blocked %v, want %v", name, info.Blocked, want)
		}
	}
}

// What counts as news: a later beat, or the same beat standing still for longer. A
// replay of what is known, or of an earlier account of the same beat, changes nothing —
// for an evicted process either: it does not look as if it still beats.
func TestOnlyNewsCounts(t *testing.T) {
	w, d := newWitness(t)
	p, e := newProcess("p", 7001), newProcess("e", 7002)
	d.NotifyJoin(p.node(t, StateAlive, 1))
	d.NotifyJoin(e.node(t, StateAlive, 1))
	w.onLiveness(p.live(5, 60_000), false)
	w.onLiveness(p.live(5, 0), true) // the same beat, before it stood still
	if info, _ := w.Member("p"); !info.Blocked || info.stalledMS != 60_000 {
		t.Errorf("an earlier account of the same beat counted: blocked %v, stalled %d", info.Blocked, info.stalledMS)
	}

	w.onEvict(evictionOf("e", e.instance), false, false)
	w.onLiveness(e.live(4, 0), false)
	first, _ := w.Member("e")
	eventually(t, opDeadline, "the clock to move", func() bool { return time.Since(first.EvictedHeartbeat) > time.Millisecond })
	w.onLiveness(e.live(4, 0), true)
	if info, _ := w.Member("e"); !info.EvictedHeartbeat.Equal(first.EvictedHeartbeat) {
		t.Errorf("a replayed record of an evicted process moved its last beat from %s to %s", first.EvictedHeartbeat, info.EvictedHeartbeat)
	}
}

// A member that first hears of a node long up — more beats than the bound on a jump —
// takes its count: the bound is on jumps from a count it knows.
func TestAFirstCountIsNotAJump(t *testing.T) {
	w, d := newWitness(t)
	p, old := newProcess("p", 7001), newProcess("old", 7002)
	old.dmax = 0
	d.NotifyJoin(p.node(t, StateAlive, 1))
	d.NotifyJoin(old.node(t, StateAlive, 1))
	w.onLiveness(p.live(maxSeqJump+5, 0), false)
	w.onHeartbeat(old.beat(maxSeqJump + 5))
	for _, name := range []string{"p", "old"} {
		if info, _ := w.Member(name); info.HeartbeatSeq != maxSeqJump+5 {
			t.Errorf("%s: count %d, want its first, %d", name, info.HeartbeatSeq, maxSeqJump+5)
		}
	}
}

// A member gossips a node's record on when it changes its mind — blocked, unblocked,
// evicted yet beating — and only then.
func TestRecordsAreGossipedOnWhenTheyChangeAMind(t *testing.T) {
	w, d := newWitness(t)
	p, e := newProcess("p", 7001), newProcess("e", 7002)
	d.NotifyJoin(p.node(t, StateAlive, 1))
	d.NotifyJoin(e.node(t, StateAlive, 1))
	queued := func() int { return w.queue.NumQueued() }
	for _, c := range []struct {
		what   string
		r      liveness
		gossip bool
	}{
		{"beating, as known", p.live(2, 0), false},
		{"blocked", p.live(2, 60_000), true},
		{"still blocked", p.live(2, 70_000), false},
		{"beating again", p.live(3, 0), true},
	} {
		w.queue.Reset()
		w.onLiveness(c.r, false)
		if got := queued() > 0; got != c.gossip {
			t.Errorf("%s: gossiped %v, want %v", c.what, got, c.gossip)
		}
	}
	w.onEvict(evictionOf("e", e.instance), false, false)
	w.queue.Reset()
	w.onLiveness(e.live(3, 0), false)
	if queued() == 0 {
		t.Error("an evicted process found beating was not gossiped")
	}
}

// An older Farewell's node that stands still is flagged within a look or two after the
// expiration — even when it beats again soon after.
func TestAnOlderMembersStallIsFlaggedInTime(t *testing.T) {
	w, d := newWitness(t)
	old := newProcess("old", 7001)
	old.dmax = 0
	d.NotifyJoin(old.node(t, StateAlive, 1))
	w.onHeartbeat(old.beat(1))
	flagged := testkit.Within(3*testExpiration, func() bool { info, _ := w.Member("old"); return info.Blocked })
	w.onHeartbeat(old.beat(2))
	if !flagged {
		t.Errorf("a node standing still for three expirations (%s) was not flagged", 3*testExpiration)
	}
	if info, _ := w.Member("old"); info.Blocked {
		t.Error("a node that beats again is still flagged")
	}
}
