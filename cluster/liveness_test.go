package cluster

import (
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// A node whose application stops beating is flagged blocked by every member, and
// unflagged when it beats again, though no member sends it or hears from it any
// heartbeat message: its probes' acks carry its liveness, and whoever finds it changed
// gossips the node's own signed record.
func TestLivenessRidesOnProbes(t *testing.T) {
	members := newTestCluster(t, 5)
	stuck := members[2]
	others := except(members, stuck)
	stuck.StopHeartbeat()
	waitAll(t, others, "node-3 blocked for everyone", func(m *Member) bool {
		info, _ := m.Member(stuck.Name())
		return info.Blocked && info.HeartbeatAge(time.Now()) > testExpiration
	})
	stuck.StartHeartbeat()
	waitAll(t, others, "node-3 unblocked for everyone", func(m *Member) bool {
		info, _ := m.Member(stuck.Name())
		return !info.Blocked
	})
	for _, m := range members {
		if n := m.legacySent.Load(); n != 0 {
			t.Errorf("%s sent %d heartbeats straight to peers; none of them needs one", m.Name(), n)
		}
	}
}

// Records that are not news change nothing: an older record of a node (replayed by a
// peer) does not undo a newer one, and a sequence that jumps past the bound is refused.
func TestLivenessRecordsAreOrdered(t *testing.T) {
	members := newTestCluster(t, 3)
	node, witness := members[0], members[1]
	waitAll(t, []*Member{witness}, "node-1's liveness heard", func(m *Member) bool {
		info, _ := m.Member(node.Name())
		return info.HeartbeatSeq > 3
	})
	record := processOf(t, node).live
	info, _ := witness.Member(node.Name())
	// Old news: a stalled record of an earlier beat.
	witness.onLiveness(record(1, 60_000), true)
	if got, _ := witness.Member(node.Name()); got.Blocked || got.HeartbeatSeq < info.HeartbeatSeq {
		t.Errorf("an old record took effect: blocked %v, seq %d (was %d)", got.Blocked, got.HeartbeatSeq, info.HeartbeatSeq)
	}
	// A jump past the bound, signed by the node itself.
	witness.onLiveness(record(info.HeartbeatSeq+maxSeqJump+10, 60_000), true)
	if got, _ := witness.Member(node.Name()); got.Blocked || got.HeartbeatSeq > info.HeartbeatSeq+maxSeqJump {
		t.Errorf("a jump of %d beats took effect: blocked %v, seq %d", maxSeqJump+10, got.Blocked, got.HeartbeatSeq)
	}
	// Within the bound and newer: it counts (the node's own account that it stands still).
	witness.onLiveness(record(info.HeartbeatSeq+maxSeqJump, 60_000), true)
	if got, _ := witness.Member(node.Name()); !got.Blocked {
		t.Error("a newer record that the node stands still did not flag it blocked")
	}
}

// A member of an older Farewell (its delegate protocol range ends at 0) still gets a
// heartbeat straight from every member, as it expects; the others get none.
func TestOlderMembersStillGetHeartbeats(t *testing.T) {
	members := newTestCluster(t, 3)
	old := newTestMember(t, "old", func(o *Options) {
		o.Tune = func(c *memberlist.Config) { fastTimings(c); c.DelegateProtocolMax = 0 }
		o.HeartbeatInterval = 50 * time.Millisecond
	})
	if err := old.Join(t.Context(), []string{members[0].Addr()}); err != nil {
		t.Fatal(err)
	}
	waitAll(t, members, "everyone to send the old member heartbeats", func(m *Member) bool { return m.legacySent.Load() > 3 })
	for _, m := range members {
		if info, _ := m.Member(old.Name()); !info.legacy {
			t.Errorf("%s does not take %s for an older member", m.Name(), old.Name())
		}
		for _, o := range except(members, m) {
			if info, _ := m.Member(o.Name()); info.legacy {
				t.Errorf("%s takes %s for an older member", m.Name(), o.Name())
			}
		}
	}
}

// A state message signed by the node itself still may not jump its version past the
// bound (a replayed or forged-ahead state would pin it); within the bound it counts.
func TestStateVersionJumpsAreBounded(t *testing.T) {
	members := newTestCluster(t, 3)
	node, witness := members[0], members[1]
	version := func() uint64 { return versionSeen(witness, node.Name()) }
	state := processOf(t, node).state
	v := version()
	witness.onState(state(StateLeaving, v+maxVersionJump+1))
	if got, _ := witness.Member(node.Name()); !asNoMessageMade(got.State) || version() != v {
		t.Errorf("a jump of %d versions took effect: %s, version %d (was %d)", maxVersionJump+1, got.State, version(), v)
	}
	witness.onState(state(StateLeaving, v)) // not newer
	if got, _ := witness.Member(node.Name()); !asNoMessageMade(got.State) {
		t.Errorf("a state of the same version took effect: %s", got.State)
	}
	witness.onState(state(StateLeaving, v+maxVersionJump))
	if got, _ := witness.Member(node.Name()); got.State != StateLeaving || version() != v+maxVersionJump {
		t.Errorf("a newer state within the bound did not count: %s, version %d", got.State, version())
	}
}

// The heartbeats of an older Farewell are ordered like liveness records: a beat that is
// not newer changes nothing, one that jumps past the bound is refused, one within it
// counts — even when the node signed each itself.
func TestOlderHeartbeatsAreOrdered(t *testing.T) {
	members := newTestCluster(t, 3)
	node, witness := members[0], members[1]
	node.StopHeartbeat() // its count stands still: the witness flags it blocked
	waitAll(t, []*Member{witness}, "node-1 blocked", func(m *Member) bool {
		info, _ := m.Member(node.Name())
		return info.Blocked
	})
	seq := func() uint64 { info, _ := witness.Member(node.Name()); return info.HeartbeatSeq }
	s := seq()
	p := processOf(t, node)
	beat := func(n uint64) { witness.onHeartbeat(p.beat(n)) }
	beat(s)
	if info, _ := witness.Member(node.Name()); !info.Blocked || info.HeartbeatSeq != s {
		t.Errorf("a beat that is not newer took effect: blocked %v, seq %d (was %d)", info.Blocked, info.HeartbeatSeq, s)
	}
	beat(s + maxSeqJump + 1)
	if info, _ := witness.Member(node.Name()); !info.Blocked || info.HeartbeatSeq != s {
		t.Errorf("a jump of %d beats took effect: blocked %v, seq %d", maxSeqJump+1, info.Blocked, info.HeartbeatSeq)
	}
	beat(s + maxSeqJump)
	if info, _ := witness.Member(node.Name()); info.Blocked || info.HeartbeatSeq != s+maxSeqJump {
		t.Errorf("a newer beat within the bound did not count: blocked %v, seq %d", info.Blocked, info.HeartbeatSeq)
	}
}

// Metadata the node signed may not move its state by a version jump past the bound,
// nor back behind a newer state; within the bound, newer metadata counts.
func TestMetadataVersionsAreBounded(t *testing.T) {
	members := newTestCluster(t, 3)
	node, witness := members[0], members[1]
	version := func() uint64 { return versionSeen(witness, node.Name()) }
	d, p := &delegate{m: witness}, processOf(t, node)
	update := func(s State, v uint64) { d.NotifyUpdate(p.node(t, s, v)) }
	// Members start at version 0, which any first version may follow: take the
	// node to version 1 first.
	update(StateAlive, 1)
	v := version()
	if v != 1 {
		t.Fatalf("version %d after the first metadata", v)
	}
	update(StateLeaving, v+maxVersionJump+1)
	if got, _ := witness.Member(node.Name()); !asNoMessageMade(got.State) || version() != v {
		t.Errorf("a jump of %d versions took effect: %s, version %d (was %d)", maxVersionJump+1, got.State, version(), v)
	}
	update(StateLeaving, v+maxVersionJump)
	if got, _ := witness.Member(node.Name()); got.State != StateLeaving || version() != v+maxVersionJump {
		t.Errorf("newer metadata within the bound did not count: %s, version %d", got.State, version())
	}
	update(StateAlive, v+maxVersionJump-1)
	if got, _ := witness.Member(node.Name()); got.State != StateLeaving || version() != v+maxVersionJump {
		t.Errorf("older metadata took effect: %s, version %d", got.State, version())
	}
}

// versionSeen is the state version by which witness orders node's state.
func versionSeen(witness *Member, node string) uint64 {
	witness.mu.Lock()
	defer witness.mu.Unlock()
	return witness.view[node].version
}
