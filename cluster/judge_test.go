package cluster

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
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
		info, _ := seen(w, "p")
		if info.Blocked != s.blocked || info.HeartbeatSeq != s.seq || info.stalledMS != s.stalled {
			t.Errorf("%s: blocked %v, seq %d, stalled %d ms", s.what, info.Blocked, info.HeartbeatSeq, info.stalledMS)
		}
		if info.LastHeartbeat.After(time.Now()) {
			t.Errorf("%s: last heartbeat %s is in the future", s.what, info.LastHeartbeat)
		}
	}
	before, _ := seen(w, "p")
	w.onLiveness(p.live(5, 10_000), false)
	if info, _ := seen(w, "p"); !info.LastHeartbeat.Equal(before.LastHeartbeat) {
		t.Errorf("a record of a beat 10 s ago moved the last heartbeat from %s to %s", before.LastHeartbeat, info.LastHeartbeat)
	}

	w.onState(p.state(StateLeaving, 2))
	w.onLiveness(p.live(5, 20_000), false)
	if info, _ := seen(w, "p"); info.Blocked {
		t.Error("a leaving node was flagged blocked")
	}

	o := newProcess("o", 7002)
	o.role = RoleObserver
	d.NotifyJoin(o.node(t, StateAlive, 1))
	w.onLiveness(o.live(5, 20_000), false)
	if info, _ := seen(w, "o"); info.Blocked {
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
	if info, _ := seen(w, "p"); !info.EvictedHeartbeat.IsZero() {
		t.Error("a record that the evicted process stands still marked it beating")
	}
	if got := shared(w); len(got) != 0 {
		t.Errorf("records shared for a process that fenced itself: %+v", got)
	}
	w.onLiveness(p.live(4, 0), false)
	info, _ := seen(w, "p")
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
	stuck, fine := newProcess("stuck", 7001), newProcess("fine", 7002)
	d.NotifyJoin(stuck.node(t, StateAlive, 1))
	d.NotifyJoin(fine.node(t, StateAlive, 1))
	w.onLiveness(stuck.live(7, 60_000), false)
	w.onLiveness(fine.live(9, 0), false)
	got := shared(w)
	if len(got) != 1 || got[0].Node != "stuck" || got[0].Seq != 7 || got[0].StalledMS != 60_000 || got[0].Instance != stuck.instance {
		t.Fatalf("records shared: %+v", got)
	}
	// Relayed to a newcomer in push/pull, it checks: the newcomer flags the node too.
	n := newTestMember(t, "newcomer")
	nd := &delegate{m: n}
	nd.NotifyJoin(stuck.node(t, StateAlive, 1))
	nd.MergeRemoteState(d.LocalState(false), false)
	if info, _ := seen(n, "stuck"); !info.Blocked {
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
		if info, _ := seen(w, name); info.Blocked || info.HeartbeatSeq != 0 {
			t.Errorf("%s: blocked %v, seq %d after answers that were not its own", name, info.Blocked, info.HeartbeatSeq)
		}
	}
	d.NotifyPingComplete(probed, time.Millisecond, padded(p.live(5, 60_000), maxMessage))
	if info, _ := seen(w, "p"); !info.Blocked || info.HeartbeatSeq != 5 {
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
	for _, p := range []*process{gone, alive, evicted} {
		d.NotifyJoin(p.node(t, StateAlive, 1))
	}
	w.onLeft(gone.left(), false)
	w.onEvict(evictionOf("evicted", evicted.instance), false, false)
	// Out since one moment, so that the edges below are exact.
	since := time.Now()
	w.mu.Lock()
	w.view["gone"].Since, w.view["evicted"].Since, w.evictSeen["evicted"] = since, since, since
	evictedAt := since
	w.mu.Unlock()
	known := func(name string) bool { _, ok := seen(w, name); return ok }
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
