package cluster

import (
	"bytes"
	"crypto/ed25519"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// process is a member's process as the network shows it — a name, an instance, a key
// and an address — whose messages a test makes and feeds to a real member's delegate,
// in the order it chooses. The messages are signed as the process signs its own.
type process struct {
	name, instance string
	key            ed25519.PrivateKey
	port           uint16
	dmax           uint8
	role           Role
}

func newProcess(name string, port uint16) *process {
	return &process{name: name, instance: newInstanceID(), key: newProcessKey(), port: port, dmax: livenessProtocol, role: RoleNode}
}

// processOf is a running member's process, for a test to speak for it with its key.
func processOf(t *testing.T, m *Member) *process {
	t.Helper()
	_, port, err := SplitHostPort(m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return &process{name: m.Name(), instance: m.Instance(), key: m.key, port: uint16(port), dmax: livenessProtocol, role: m.Role()}
}

func (p *process) public() ed25519.PublicKey { return p.key.Public().(ed25519.PublicKey) }

// node is the process as memberlist hands it to a delegate, with its metadata at state
// s and version v.
func (p *process) node(t *testing.T, s State, v uint64) *memberlist.Node {
	t.Helper()
	md := signMeta(p.key, meta{Role: p.role, State: s, Instance: p.instance, Version: v, Key: p.public(), Tags: map[string]string{"zone": "a"}, Steps: 2})
	return &memberlist.Node{Name: p.name, Addr: net.IPv4(127, 0, 0, 1), Port: p.port, Meta: mustJSON(t, md), DMax: p.dmax}
}

func (p *process) left() leftMsg { return p.leftBy(p.key) }

// leftBy is a leave of the process signed by key, and carrying its public half: the
// process's own leave, or a forgery.
func (p *process) leftBy(key ed25519.PrivateKey) leftMsg {
	l := leftMsg{Node: p.name, Instance: p.instance, Key: key.Public().(ed25519.PublicKey)}
	l.Sig = sign(key, domainLeft, l)
	return l
}

func (p *process) state(s State, v uint64) stateMsg {
	st := stateMsg{Node: p.name, Instance: p.instance, State: s, Version: v}
	st.Sig = sign(p.key, domainState, st)
	return st
}

// beat is a heartbeat of an older Farewell's, sent straight to every member.
func (p *process) beat(seq uint64) heartbeatMsg {
	hb := heartbeatMsg{Node: p.name, Instance: p.instance, Seq: seq}
	hb.Sig = sign(p.key, domainHeartbeat, hb)
	return hb
}

func (p *process) live(seq uint64, stalled int64) liveness {
	r := liveness{Node: p.name, Instance: p.instance, Seq: seq, StalledMS: stalled}
	r.Sig = sign(p.key, domainLiveness, r)
	return r
}

// newWitness is a member on its own that a test feeds messages, through its delegate.
// It never tries to rejoin the members it sees dead: the processes a test speaks for
// have addresses nothing listens on.
func newWitness(t *testing.T, opts ...memberOpt) (*Member, *delegate) {
	t.Helper()
	w := newTestMember(t, "witness", append([]memberOpt{func(o *Options) { o.ReconnectInterval = -1 }}, opts...)...)
	return w, &delegate{m: w}
}

// joinProcesses has memberlist tell d of new processes by these names, alive, each
// set up by setup (if any) first; it returns them by name.
func joinProcesses(t *testing.T, d *delegate, setup func(*process), names ...string) map[string]*process {
	t.Helper()
	procs := map[string]*process{}
	for i, name := range names {
		p := newProcess(name, uint16(7001+i))
		if setup != nil {
			setup(p)
		}
		procs[name] = p
		d.NotifyJoin(p.node(t, StateAlive, 1))
	}
	return procs
}

// nodeNames are the names of nodes, sorted, space-separated.
func nodeNames(nodes []*memberlist.Node) string {
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

// A process's life as memberlist reports it — joined, updated, gone, back — shapes what
// a member sees of it: its address, role, tags and steps, whether it is of an older
// Farewell, and its state, which a leave it announced makes left and final.
func TestTheViewFollowsMemberlistEvents(t *testing.T) {
	w, d := newWitness(t)
	p := newProcess("p", 7001)

	d.NotifyJoin(p.node(t, StateAlive, 1))
	info, ok := w.Member("p")
	switch {
	case !ok:
		t.Fatal("a joined process is not in the view")
	case info.State != StateAlive || info.Addr != "127.0.0.1:7001" || info.Role != RoleNode || info.Instance != p.instance ||
		info.Tags["zone"] != "a" || info.Steps != 2 || info.legacy || !info.key.Equal(p.public()) || info.version != 1:
		t.Fatalf("joined process seen as %+v", info)
	}

	// An older Farewell's (its delegate protocol ends below liveness's) is legacy.
	p.dmax = 0
	d.NotifyUpdate(p.node(t, StateAlive, 1))
	if info, _ := w.Member("p"); !info.legacy {
		t.Error("a process whose protocol ends at 0 is not taken for an older Farewell")
	}
	checkCounts(t, w)
	d.NotifyUpdate(p.node(t, StateAlive, 1)) // the same again: counted once
	checkCounts(t, w)
	p.dmax = livenessProtocol
	d.NotifyUpdate(p.node(t, StateAlive, 1)) // upgraded
	checkCounts(t, w)

	// Blocked, then gone without a leave: dead, and no longer blocked.
	w.onLiveness(p.live(5, 60_000), false)
	if info, _ := w.Member("p"); !info.Blocked {
		t.Fatal("a process that says it stands still is not blocked")
	}
	d.NotifyLeave(p.node(t, StateAlive, 1))
	gone, _ := w.Member("p")
	if gone.State != StateDead || gone.Blocked {
		t.Errorf("gone without a leave: %s, blocked %v; want dead, not blocked", gone.State, gone.Blocked)
	}

	// Back from the dead (a partition healed): alive, with a fresh heartbeat window.
	d.NotifyJoin(p.node(t, StateAlive, 1))
	back, _ := w.Member("p")
	if back.State != StateAlive || !back.LastHeartbeat.After(gone.LastHeartbeat) || !back.Since.After(gone.Since) {
		t.Errorf("back from the dead: %s, last heartbeat %s (was %s)", back.State, back.LastHeartbeat, gone.LastHeartbeat)
	}

	// Its announced leave makes it left; memberlist's leave then keeps it left, and a
	// late gossip of its earlier state does not bring it back.
	w.onLeft(p.left(), false)
	d.NotifyLeave(p.node(t, StateAlive, 1))
	d.NotifyUpdate(p.node(t, StateLeaving, 2))
	if info, _ := w.Member("p"); info.State != StateLeft {
		t.Errorf("after its leave: %s, want left", info.State)
	}

	// A new process under the name starts afresh: alive, its own key, the old leave
	// forgotten.
	q := newProcess("p", 7002)
	d.NotifyJoin(q.node(t, StateAlive, 1))
	info, _ = w.Member("p")
	w.mu.Lock()
	_, oldLeave := w.lefts["p"]
	w.mu.Unlock()
	if info.State != StateAlive || info.Instance != q.instance || !info.key.Equal(q.public()) || info.Addr != "127.0.0.1:7002" || oldLeave {
		t.Errorf("a new process of the name: %s, instance %s (want %s), old leave kept %v", info.State, info.Instance, q.instance, oldLeave)
	}
}

// A leave learned in push/pull for a process this member has not seen carries the key
// that checks it; when the process itself shows up with another key in its signed
// metadata, the leave was forged: the process is let in, alive, as if the leave had
// never come, and its own key — not the forger's — checks what it says from then on.
func TestALeaveForgedAheadOfItsProcessIsUndone(t *testing.T) {
	w, d := newWitness(t)
	p := newProcess("p", 7001)
	forger := newProcessKey()
	forged := p.leftBy(forger)
	d.MergeRemoteState(mustJSON(t, sharedState{Lefts: []leftMsg{forged}}), false)
	if info, _ := w.Member("p"); info.State != StateLeft || !info.learned {
		t.Fatalf("a leave learned for an unseen process: %s, learned %v", info.State, info.learned)
	}

	// As memberlist does: it asks before it takes the process in.
	before := time.Now()
	if err := d.NotifyAlive(p.node(t, StateAlive, 1)); err != nil {
		t.Fatalf("the process itself refused after a forged leave: %v", err)
	}
	d.NotifyJoin(p.node(t, StateAlive, 1))
	checkCounts(t, w)
	info, _ := w.Member("p")
	if info.State != StateAlive || !info.key.Equal(p.public()) || info.learned || info.LastHeartbeat.Before(before) || info.Since.Before(before) {
		t.Fatalf("the process showed up: %s, its own key %v, learned %v, heartbeat window from %s (joined at %s)",
			info.State, info.key.Equal(p.public()), info.learned, info.LastHeartbeat, before)
	}
	w.mu.Lock()
	_, kept := w.lefts["p"]
	w.mu.Unlock()
	if kept {
		t.Error("the forged leave is still kept, to be shared with newcomers")
	}
	forgedState := stateMsg{Node: "p", Instance: p.instance, State: StateLeaving, Version: 2}
	forgedState.Sig = sign(forger, domainState, forgedState)
	w.onState(forgedState)
	d.MergeRemoteState(mustJSON(t, sharedState{Lefts: []leftMsg{forged}}), false)
	if info, _ := w.Member("p"); info.State != StateAlive {
		t.Errorf("the forger still speaks for the process: %s", info.State)
	}
	w.onState(p.state(StateLeaving, 2))
	if info, _ := w.Member("p"); info.State != StateLeaving {
		t.Errorf("a state signed by the process is refused after a forged leave: %s", info.State)
	}
}

// The same over the network: a member that learned a forged leave of a process sees
// the process alive once it joins, by its own key.
func TestAForgedLeaveDoesNotKeepAProcessOut(t *testing.T) {
	w, d := newWitness(t)
	proc := newTestMember(t, "real")
	forged := (&process{name: proc.Name(), instance: proc.Instance()}).leftBy(newProcessKey())
	d.MergeRemoteState(mustJSON(t, sharedState{Lefts: []leftMsg{forged}}), false)
	if err := proc.Join(t.Context(), []string{w.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitAll(t, []*Member{w}, "the real process seen alive by its own key", func(m *Member) bool {
		info, _ := m.Member("real")
		return info.State == StateAlive && !info.learned && info.key.Equal(proc.key.Public().(ed25519.PublicKey))
	})
}

// Direct state messages move a process between alive and leaving only, and only while
// it is in one of them.
func TestStateMessagesMoveOnlyAliveAndLeaving(t *testing.T) {
	w, d := newWitness(t)
	p := newProcess("p", 7001)
	d.NotifyJoin(p.node(t, StateAlive, 1))

	for _, s := range []State{StateLeft, StateDead, StateEvicted} {
		w.onState(p.state(s, 2))
		if info, _ := w.Member("p"); info.State != StateAlive || info.version != 1 {
			t.Errorf("a state message set %s: now %s, version %d", s, info.State, info.version)
		}
	}
	w.onLiveness(p.live(5, 60_000), false)
	w.onState(p.state(StateLeaving, 2))
	if info, _ := w.Member("p"); info.State != StateLeaving || info.Blocked || info.version != 2 {
		t.Errorf("leaving: %s, blocked %v, version %d; want leaving, not blocked (only alive nodes are), version 2", info.State, info.Blocked, info.version)
	}
	w.onState(p.state(StateAlive, 3))
	if info, _ := w.Member("p"); info.State != StateAlive || info.version != 3 {
		t.Errorf("back to alive: %s, version %d", info.State, info.version)
	}
	other := newProcess("p", 7001)
	other.key = p.key // the same key, another process: not this one's state
	w.onState(other.state(StateLeaving, 4))
	if info, _ := w.Member("p"); info.State != StateAlive || info.version != 3 {
		t.Errorf("a state message of another instance took effect: %s, version %d", info.State, info.version)
	}
	d.NotifyLeave(p.node(t, StateAlive, 3)) // dead
	w.onState(p.state(StateAlive, 4))
	if info, _ := w.Member("p"); info.State != StateDead || info.version != 3 {
		t.Errorf("a state message moved a dead process: %s, version %d", info.State, info.version)
	}
}

// memberlist asks before it lets an alive message in: not from this member itself,
// signed by its process, not of an evicted process, not with another key.
func TestAliveMessagesAreChecked(t *testing.T) {
	w, d := newWitness(t)
	p := newProcess("p", 7001)
	if err := d.NotifyAlive(p.node(t, StateAlive, 1)); err != nil {
		t.Fatalf("a signed alive message refused: %v", err)
	}
	self := &memberlist.Node{Name: "witness", Meta: []byte("not even JSON")}
	if err := d.NotifyAlive(self); err != nil {
		t.Errorf("its own alive message refused: %v", err)
	}
	d.NotifyJoin(p.node(t, StateAlive, 1))
	rekeyed := *p
	rekeyed.key = newProcessKey()
	if err := d.NotifyAlive(rekeyed.node(t, StateAlive, 2)); err == nil || !strings.Contains(err.Error(), "another key for process "+p.instance) {
		t.Errorf("an alive message changing the process's key: %v", err)
	}
	unsigned := p.node(t, StateAlive, 2)
	unsigned.Meta = mustJSON(t, meta{Role: RoleNode, State: StateAlive, Instance: p.instance, Version: 2, Key: p.public()})
	if err := d.NotifyAlive(unsigned); err == nil || !strings.Contains(err.Error(), "not signed by its process") {
		t.Errorf("unsigned metadata: %v", err)
	}
	w.mu.Lock()
	w.evictions["p"] = evictMsg{Node: "p", Instance: p.instance, By: "orchestrator"}
	w.mu.Unlock()
	if err := d.NotifyAlive(p.node(t, StateAlive, 2)); err == nil || !strings.Contains(err.Error(), "evicted by orchestrator") {
		t.Errorf("an evicted process's alive message: %v", err)
	}
	if err := d.NotifyAlive(newProcess("p", 7002).node(t, StateAlive, 1)); err != nil {
		t.Errorf("a new process of an evicted name refused: %v", err)
	}
}

// A process a peer saw die is recorded when this member does not know the name — as
// a node unless it was an observer — and never overrides what it knows.
func TestDeathsLearnedFromPeers(t *testing.T) {
	w, d := newWitness(t)
	p := newProcess("p", 7001)
	d.NotifyJoin(p.node(t, StateAlive, 1))
	d.MergeRemoteState(mustJSON(t, sharedState{Deads: []deadMsg{
		{Node: "p", Instance: "other", Addr: "127.0.0.1:1"},
		{Node: "witness", Instance: "x"},
		{Node: "", Instance: "x"},
		{Node: "gone", Instance: "g1", Role: "", Addr: "127.0.0.1:2"},
		{Node: "watcher", Instance: "g2", Role: RoleObserver, Addr: "127.0.0.1:3"},
		{Node: "odd", Instance: "g3", Role: "admin", Addr: "127.0.0.1:4"},
	}}), false)
	if info, _ := w.Member("p"); info.State != StateAlive || info.Instance != p.instance {
		t.Errorf("a death learned from a peer overrode a known process: %s, instance %s", info.State, info.Instance)
	}
	if self, _ := w.Member("witness"); self.State != StateAlive {
		t.Errorf("a peer's word made this member %s", self.State)
	}
	if _, ok := w.Member(""); ok {
		t.Error("a death without a name made an entry")
	}
	for name, role := range map[string]Role{"gone": RoleNode, "watcher": RoleObserver, "odd": RoleNode} {
		info, ok := w.Member(name)
		if !ok || info.State != StateDead || info.Role != role || !info.learned {
			t.Errorf("%s learned as %+v, want dead %s", name, info, role)
		}
	}
}

// Learned members are bounded: past maxLearned, news of names this member does not
// know is dropped, whatever kind it is.
func TestLearnedMembersAreBounded(t *testing.T) {
	w, d := newWitness(t)
	deads := make([]deadMsg, maxLearned+1)
	for i := range deads {
		deads[i] = deadMsg{Node: "dead-" + strconv.Itoa(i), Instance: "i", Addr: "127.0.0.1:1"}
	}
	d.MergeRemoteState(mustJSON(t, sharedState{Deads: deads}), false)
	learned := func() int {
		n := 0
		for _, info := range w.Members() {
			if info.State == StateDead {
				n++
			}
		}
		return n
	}
	if n := learned(); n != maxLearned {
		t.Fatalf("%d deaths learned, want the bound, %d", n, maxLearned)
	}
	checkCounts(t, w)
	stranger := newProcess("stranger", 7001)
	d.MergeRemoteState(mustJSON(t, sharedState{Lefts: []leftMsg{stranger.left()}}), false)
	if _, ok := w.Member("stranger"); ok {
		t.Error("a leave of an unknown process was learned past the bound")
	}
	// What memberlist itself reports is not learned: it is always taken.
	p := newProcess("p", 7002)
	d.NotifyJoin(p.node(t, StateAlive, 1))
	if _, ok := w.Member("p"); !ok {
		t.Error("a process memberlist reports was dropped for the bound")
	}
	// One that memberlist reports is no longer learned, and makes room for one more.
	d.NotifyJoin(newProcess("dead-7", 7003).node(t, StateAlive, 1))
	checkCounts(t, w)
	d.MergeRemoteState(mustJSON(t, sharedState{Lefts: []leftMsg{stranger.left()}}), false)
	if info, ok := w.Member("stranger"); !ok || info.State != StateLeft {
		t.Error("a leave of an unknown process was not learned with room for it")
	}
	checkCounts(t, w)
}

// checkCounts fails when the counts the member keeps of its view — of learned members,
// which bounds them, and of an older Farewell's — are not what the view holds.
func checkCounts(t *testing.T, m *Member) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	learned, legacy := 0, 0
	for _, info := range m.view {
		if info.learned {
			learned++
		}
		if info.legacy {
			legacy++
		}
	}
	if learned != m.learned || legacy != m.legacyN {
		t.Errorf("%d members learned, counted %d; %d of an older Farewell, counted %d", learned, m.learned, legacy, m.legacyN)
	}
}

// A member's metadata either fits memberlist's limit whole or is not given at all.
func TestNodeMetaFitsOrIsNotGiven(t *testing.T) {
	w, d := newWitness(t, func(o *Options) { o.Tags = map[string]string{"zone": "a"}; o.Steps = 3 })
	b := d.NodeMeta(memberlist.MetaMaxSize)
	md := parseMeta(b)
	if !checkMeta(md) || md.Instance != w.Instance() || md.Tags["zone"] != "a" || md.Steps != 3 || md.State != StateAlive {
		t.Fatalf("metadata %s", b)
	}
	if got := d.NodeMeta(len(b)); len(got) != len(b) {
		t.Errorf("metadata of %d bytes not given at a limit of %d", len(b), len(b))
	}
	if got := d.NodeMeta(len(b) - 1); got != nil {
		t.Errorf("metadata of %d bytes given at a limit of %d", len(b), len(b)-1)
	}
	if md := parseMeta(nil); md.Role != RoleNode || md.State != StateAlive {
		t.Errorf("metadata of an older member (none) read as role %q, state %q", md.Role, md.State)
	}
}

// A gossiped message replaces a queued one of the same name only.
func TestBroadcastsInvalidateTheirOwnName(t *testing.T) {
	a := &broadcast{name: "left:a"}
	for _, c := range []struct {
		other memberlist.Broadcast
		want  bool
	}{
		{&broadcast{name: "left:a"}, true},
		{&broadcast{name: "left:b"}, false},
		{otherBroadcast{}, false},
	} {
		if got := a.Invalidates(c.other); got != c.want {
			t.Errorf("left:a invalidates %s: %v", c.other.Message(), got)
		}
	}
}

type otherBroadcast struct{}

func (otherBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (otherBroadcast) Message() []byte                       { return []byte("another kind") }
func (otherBroadcast) Finished()                             {}

// padTo is msg with trailing spaces (still valid JSON after its kind byte), size bytes long.
func padTo(msg []byte, size int) []byte {
	return append(msg, bytes.Repeat([]byte(" "), size-len(msg))...)
}

// Messages are read up to their bounds and dropped past them: maxMessage for all but a
// view dump's reply, which may take up to maxDump; push/pull up to maxRemoteState.
func TestMessagesAreBounded(t *testing.T) {
	w, d := newWitness(t)
	p := newProcess("p", 7001)
	d.NotifyJoin(p.node(t, StateAlive, 1))
	d.NotifyMsg(padTo(encode(msgState, p.state(StateLeaving, 2)), maxMessage+1))
	if info, _ := w.Member("p"); info.State != StateAlive {
		t.Errorf("a state message of maxMessage+1 bytes was read: %s", info.State)
	}
	d.NotifyMsg(padTo(encode(msgState, p.state(StateLeaving, 2)), maxMessage))
	if info, _ := w.Member("p"); info.State != StateLeaving {
		t.Errorf("a state message of maxMessage bytes was not read: %s", info.State)
	}

	// A view dump's reply, awaited under ID 7.
	replies := make(chan dumpReply, 1)
	w.mu.Lock()
	w.dumps[7] = replies
	w.mu.Unlock()
	reply := encode(msgDumpReply, dumpReply{ID: 7, From: "p"})
	for _, c := range []struct {
		size int
		read bool
	}{
		{maxDump + 1, false},
		{maxMessage + 1, true},
		{maxDump, true},
	} {
		d.NotifyMsg(padTo(slices.Clone(reply), c.size))
		select {
		case <-replies:
			if !c.read {
				t.Errorf("a dump reply of %d bytes was read", c.size)
			}
		default:
			if c.read {
				t.Errorf("a dump reply of %d bytes was not read", c.size)
			}
		}
	}

	state := mustJSON(t, sharedState{Deads: []deadMsg{{Node: "gone", Instance: "g", Addr: "127.0.0.1:9"}}})
	d.MergeRemoteState(padTo(slices.Clone(state), maxRemoteState+1), false)
	if _, ok := w.Member("gone"); ok {
		t.Error("a push/pull state of maxRemoteState+1 bytes was read")
	}
	d.MergeRemoteState(padTo(state, maxRemoteState), false)
	if _, ok := w.Member("gone"); !ok {
		t.Error("a push/pull state of maxRemoteState bytes was not read")
	}
}

// What peers send as user messages reaches the member: a state, a liveness record
// relayed, an eviction.
func TestUserMessagesAreRead(t *testing.T) {
	w, d := newWitness(t) // no verifier: any eviction counts
	p, e := newProcess("p", 7001), newProcess("e", 7002)
	d.NotifyJoin(p.node(t, StateAlive, 1))
	d.NotifyJoin(e.node(t, StateAlive, 1))
	d.NotifyMsg(encode(msgLiveness, p.live(5, 60_000)))
	if info, _ := w.Member("p"); !info.Blocked {
		t.Error("a relayed record that p stands still was not read")
	}
	d.NotifyMsg(encode(msgState, p.state(StateLeaving, 2)))
	if info, _ := w.Member("p"); info.State != StateLeaving {
		t.Errorf("a state message was not read: %s", info.State)
	}
	d.NotifyMsg(encode(msgEvict, evictionOf("e", e.instance)))
	if info, _ := w.Member("e"); info.State != StateEvicted {
		t.Errorf("an eviction was not read: %s", info.State)
	}
	for _, junk := range [][]byte{nil, {msgState}, {msgState, '{'}, append([]byte{msgState}, "not json"...), append([]byte{'?'}, "{}"...)} {
		d.NotifyMsg(junk) // must not panic
	}
}

// The first metadata a member has of a process after its join may be any version ahead:
// the bound is on jumps from a version it knows. A change of state between alive and
// leaving keeps the node's heartbeat window (one seen again after it died gets a fresh
// one: TestTheViewFollowsMemberlistEvents).
func TestMetadataFromAFreshView(t *testing.T) {
	w, d := newWitness(t)
	p := newProcess("p", 7001)
	d.NotifyJoin(p.node(t, StateAlive, 0))
	before, _ := w.Member("p")
	eventually(t, opDeadline, "the clock to move", func() bool { return time.Since(before.LastHeartbeat) > time.Millisecond })
	d.NotifyUpdate(p.node(t, StateLeaving, maxVersionJump+5))
	info, _ := w.Member("p")
	if info.State != StateLeaving || info.version != maxVersionJump+5 {
		t.Errorf("metadata at version %d after version 0: %s, version %d", maxVersionJump+5, info.State, info.version)
	}
	if !info.LastHeartbeat.Equal(before.LastHeartbeat) {
		t.Errorf("alive to leaving moved the heartbeat window from %s to %s", before.LastHeartbeat, info.LastHeartbeat)
	}
}
