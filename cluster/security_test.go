package cluster

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/farewell-project/farewell/internal/testkit"
)

func gossipKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// secureCluster starts n nodes that encrypt gossip with key and check evictions against
// the orchestrators' key, and an orchestrator that holds its private half.
func secureCluster(t *testing.T, n int) (nodes []*Member, orchestrator *Member) {
	t.Helper()
	signer, verifier, err := EvictKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	secure := func(o *Options) { o.SecretKeys, o.EvictVerifier = [][]byte{gossipKey(1)}, verifier }
	nodes = newTestCluster(t, n, secure)
	orchestrator = newTestMember(t, "orchestrator", withRole(RoleObserver), secure, func(o *Options) { o.EvictSigner = signer })
	if err := orchestrator.Join(context.Background(), []string{nodes[0].Addr()}); err != nil {
		t.Fatal(err)
	}
	waitAll(t, append(nodes, orchestrator), "everyone sees everyone", func(m *Member) bool { return len(m.Members()) == n+1 })
	return nodes, orchestrator
}

// A member that holds only the gossip key cannot evict, mark left, pin or block another
// member: what it forges is fed to its peers exactly as the network would deliver it.
func TestGossipKeyAloneCannotSpeakForOthers(t *testing.T) {
	nodes, orchestrator := secureCluster(t, 3)
	rogue, victim := nodes[0], nodes[1]
	witnesses := []*Member{nodes[2], orchestrator}
	inst := victim.Instance()
	rogueKey := rogue.key
	deliver := func(msg []byte) {
		for _, w := range witnesses {
			(&delegate{m: w}).NotifyMsg(msg)
		}
	}

	// Evict: its own Evict refuses, and forged evictions are ignored.
	if _, err := rogue.Evict(context.Background(), victim.Name(), inst, "rogue"); !errors.Is(err, ErrCannotEvict) {
		t.Errorf("a member without the eviction key evicted: %v", err)
	}
	unsigned := evictMsg{Node: victim.Name(), Instance: inst, By: rogue.Name(), Reason: "rogue", At: time.Now().UnixMilli()}
	selfSigned := unsigned
	selfSigned.Sig = sign(rogueKey, domainEvict, unsigned)
	deliver(encode(msgEvict, unsigned))
	deliver(encode(msgEvict, selfSigned))

	// Mark left: a leave signed by another key than the victim's.
	forgedLeft := (&process{name: victim.Name(), instance: inst}).leftBy(rogueKey)
	deliver(encode(msgLeft, forgedLeft))
	(&delegate{m: witnesses[0]}).MergeRemoteState(mustJSON(t, sharedState{Lefts: []leftMsg{forgedLeft}}), false)

	// Pin: a state with a huge version, signed by the rogue or by nobody.
	pin := stateMsg{Node: victim.Name(), Instance: inst, State: StateLeaving, Version: 1 << 40}
	deliver(encode(msgState, pin))
	pin.Sig = sign(rogueKey, domainState, pin)
	deliver(encode(msgState, pin))

	// Block: a heartbeat with a huge sequence, so that the real ones look old; a
	// liveness record saying the victim stands still, relayed and in push/pull.
	block := heartbeatMsg{Node: victim.Name(), Instance: inst, Seq: 1 << 40}
	block.Sig = sign(rogueKey, domainHeartbeat, block)
	deliver(encode(msgHeartbeat, block))
	stalled := liveness{Node: victim.Name(), Instance: inst, Seq: 1 << 40, StalledMS: 60_000}
	stalled.Sig = sign(rogueKey, domainLiveness, stalled)
	deliver(encode(msgLiveness, stalled))
	(&delegate{m: witnesses[0]}).MergeRemoteState(mustJSON(t, sharedState{Lives: []liveness{stalled}}), false)

	for _, w := range witnesses {
		info, _ := w.Member(victim.Name())
		if !asNoMessageMade(info.State) || info.HeartbeatSeq >= 1<<40 || info.version >= 1<<40 || info.Blocked {
			t.Errorf("%s sees %s %s, heartbeat %d, version %d after the forgeries", w.Name(), victim.Name(), info.State, info.HeartbeatSeq, info.version)
		}
	}
	victim.mu.Lock()
	seq := victim.hbSeq
	victim.mu.Unlock()
	waitAll(t, witnesses, "the victim's real heartbeats to count", func(m *Member) bool {
		info, _ := m.Member(victim.Name())
		return info.HeartbeatSeq > seq && !info.Blocked
	})
	if _, _, evicted := victim.Evicted(); evicted {
		t.Error("the victim fenced itself on a forged eviction")
	}

	// The orchestrator's signed eviction is taken by everyone.
	ctx, cancel := context.WithTimeout(context.Background(), opDeadline)
	defer cancel()
	if res, err := orchestrator.Evict(ctx, victim.Name(), inst, "signed"); err != nil || !res.Confirmed {
		t.Fatalf("signed eviction: %+v %v", res, err)
	}
	waitAll(t, []*Member{nodes[2]}, "the signed eviction to count", func(m *Member) bool { return stateOf(m, victim.Name()) == StateEvicted })
}

// Metadata must be signed by its process, and a process keeps its key.
func TestMetadataMustBeSignedByItsProcess(t *testing.T) {
	nodes, _ := secureCluster(t, 2)
	d := &delegate{m: nodes[0]}
	other := nodes[1]
	otherKey := other.key.Public().(ed25519.PublicKey)
	forger := newProcessKey()
	for name, md := range map[string]meta{
		"unsigned":            {Role: RoleNode, State: StateLeaving, Instance: other.Instance(), Version: 1 << 20, Key: otherKey},
		"signed by a forger":  signMeta(forger, meta{Role: RoleNode, State: StateLeaving, Instance: other.Instance(), Version: 9, Key: otherKey}),
		"another key, signed": signMeta(forger, meta{Role: RoleNode, State: StateLeaving, Instance: other.Instance(), Version: 9, Key: forger.Public().(ed25519.PublicKey)}),
	} {
		n := metaNode(t, other, md)
		if err := d.NotifyAlive(n); err == nil {
			t.Errorf("%s: metadata accepted", name)
		}
		d.NotifyUpdate(n)
		if info, _ := nodes[0].Member(other.Name()); !asNoMessageMade(info.State) {
			t.Errorf("%s: %s now seen %s", name, other.Name(), info.State)
		}
	}
}

func metaNode(t *testing.T, m *Member, md meta) *memberlist.Node {
	t.Helper()
	n, ok := m.nodeFor(m.Name())
	if !ok {
		t.Fatalf("no address for %s", m.Name())
	}
	n.Meta = mustJSON(t, md)
	return n
}

// News about names nobody here knows is not taken from a direct message; what is taken
// is bounded, and the evicter's clock is not trusted.
func TestBoundedHandling(t *testing.T) {
	nodes, orchestrator := secureCluster(t, 2)
	m := nodes[0]
	d := &delegate{m: m}
	stranger := newProcessKey()
	left := leftMsg{Node: "stranger", Instance: "x", Key: stranger.Public().(ed25519.PublicKey)}
	left.Sig = sign(stranger, domainLeft, left)
	d.NotifyMsg(encode(msgLeft, left))
	e := evictMsg{Node: "stranger", Instance: "x", By: orchestrator.Name(), Reason: "test", At: time.Now().UnixMilli()}
	e.Sig = sign(orchestrator.opts.EvictSigner, domainEvict, e)
	d.NotifyMsg(encode(msgEvict, e))
	if _, ok := m.Member("stranger"); ok {
		t.Error("a direct message about an unknown name made an entry")
	}

	future := evictMsg{Node: nodes[1].Name(), Instance: nodes[1].Instance(), By: orchestrator.Name(), Reason: "clock",
		At: time.Now().Add(24 * time.Hour).UnixMilli()}
	future.Sig = sign(orchestrator.opts.EvictSigner, domainEvict, future)
	d.NotifyMsg(encode(msgEvict, future))
	m.mu.Lock()
	at := m.evictions[nodes[1].Name()].At
	m.mu.Unlock()
	if at > time.Now().UnixMilli() {
		t.Errorf("an eviction dated tomorrow kept its date")
	}

	huge := append([]byte{msgState}, bytes.Repeat([]byte(" "), maxMessage)...)
	d.NotifyMsg(huge) // dropped unread: must not panic or block

	for range maxAnswering {
		m.answering <- struct{}{}
	}
	ran := make(chan struct{}, 1)
	m.answer(func() { ran <- struct{}{} })
	for range maxAnswering {
		<-m.answering
	}
	select {
	case <-ran:
		t.Error("a query was answered beyond the bound")
	default:
	}
}

// Three members change their gossip keys one by one, in the three rounds of a rolling
// rotation, and no one leaves: after each change every member still hears the others.
func TestRollingKeyRotation(t *testing.T) {
	oldKey, newKey := gossipKey(1), gossipKey(2)
	members := newTestCluster(t, 3, withKey(oldKey))
	for _, round := range [][][]byte{{oldKey, newKey}, {newKey, oldKey}, {newKey}} {
		for _, m := range members {
			if err := m.SetKeys(round); err != nil {
				t.Fatal(err)
			}
			// A state change that needs another member's confirmation: the cluster
			// still talks.
			ctx, cancel := context.WithTimeout(context.Background(), opDeadline)
			if err := m.SetState(ctx, StateLeaving); err != nil {
				t.Fatalf("after %s changed its keys: %v", m.Name(), err)
			}
			if err := m.SetState(ctx, StateAlive); err != nil {
				t.Fatalf("after %s changed its keys: %v", m.Name(), err)
			}
			cancel()
		}
	}
	// SetState returns once one member confirmed; the others follow.
	testkit.Eventually(t, 5*time.Second, "every member sees every other alive after the rotation", func() bool {
		for _, m := range members {
			for _, info := range m.Members() {
				if info.State != StateAlive {
					return false
				}
			}
		}
		return true
	})
	// The old key is gone: a member that has only it is not let in.
	late := newTestMember(t, "late", withKey(oldKey))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := late.Join(ctx, []string{members[0].Addr()}); err == nil {
		t.Error("a member with the retired key joined")
	}
}
