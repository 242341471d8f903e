package cluster

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestFiveMembersConvergeAndSeeLeaving(t *testing.T) {
	members := newTestCluster(t, 5)
	target := members[2]

	ctx, cancel := context.WithTimeout(context.Background(), opDeadline)
	defer cancel()
	if err := target.SetState(ctx, StateLeaving); err != nil {
		t.Fatalf("SetState(leaving): %v", err)
	}
	waitAll(t, members, "every member sees node-3 leaving", func(m *Member) bool {
		return stateOf(m, "node-3") == StateLeaving
	})
	// Publishing the same state again is a no-op, and alive is accepted back.
	if err := target.SetState(ctx, StateLeaving); err != nil {
		t.Fatalf("second SetState(leaving): %v", err)
	}
	if err := target.SetState(ctx, StateAlive); err != nil {
		t.Fatalf("SetState(alive): %v", err)
	}
	waitAll(t, members, "every member sees node-3 alive again", func(m *Member) bool {
		return stateOf(m, "node-3") == StateAlive
	})
	if err := target.SetState(ctx, StateLeft); err == nil {
		t.Fatal("SetState(left) accepted; leaving the cluster goes through Leave")
	}
}

func TestBlockedOnlyWhileAlive(t *testing.T) {
	members := newTestCluster(t, 4)
	silent, leaving := members[1], members[2]
	others := except(members, silent, leaving)

	// An alive member whose heartbeat stops is flagged blocked everywhere...
	silent.StopHeartbeat()
	silent.StopHeartbeat() // idempotent
	waitAll(t, except(members, silent), "node-2 flagged blocked", func(m *Member) bool {
		info, _ := m.Member("node-2")
		return info.Blocked
	})
	// ...and cleared when it advances again.
	silent.StartHeartbeat()
	silent.StartHeartbeat() // idempotent
	waitAll(t, except(members, silent), "node-2 no longer blocked", func(m *Member) bool {
		info, _ := m.Member("node-2")
		return !info.Blocked
	})

	// A leaving member that stops its heartbeat is doing what it announced: not blocked.
	ctx, cancel := context.WithTimeout(context.Background(), opDeadline)
	defer cancel()
	if err := leaving.SetState(ctx, StateLeaving); err != nil {
		t.Fatal(err)
	}
	waitAll(t, members, "node-3 seen leaving", func(m *Member) bool { return stateOf(m, "node-3") == StateLeaving })
	leaving.StopHeartbeat()
	expiration := testExpiration
	waitAll(t, others, "node-3's heartbeat to be twice the expiration old", func(m *Member) bool {
		info, _ := m.Member("node-3")
		return info.HeartbeatAge(time.Now()) > 2*expiration
	})
	for _, m := range others {
		if info, _ := m.Member("node-3"); info.Blocked {
			t.Errorf("%s flags leaving node-3 as blocked", m.Name())
		}
	}
}

func TestLeaveIsSeenAsLeftAndShutdownAsDead(t *testing.T) {
	members := newTestCluster(t, 5)
	leaver, crasher := members[1], members[3]

	if err := leaver.Leave(2 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := leaver.Leave(2 * time.Second); err != nil {
		t.Fatalf("second Leave: %v", err)
	}
	if left, _ := leaver.Left(); !left || leaver.HeartbeatRunning() {
		t.Fatal("after Leave the member must be shut down with its heartbeat stopped")
	}
	crasher.Shutdown()

	survivors := except(members, leaver, crasher)
	waitAll(t, survivors, "node-2 left and node-4 dead everywhere", func(m *Member) bool {
		return stateOf(m, "node-2") == StateLeft && stateOf(m, "node-4") == StateDead
	})
}

func TestEvictionIsFinalAndFencesTheTarget(t *testing.T) {
	members := newTestCluster(t, 4)
	observer := newTestMember(t, "observer", withRole(RoleObserver))
	if err := observer.Join(context.Background(), []string{members[0].Addr()}); err != nil {
		t.Fatal(err)
	}
	target := members[1]
	var stopped atomic.Int32
	target.Services().Register("api", func(context.Context) error { stopped.Add(1); return nil }, time.Second)
	waitAll(t, []*Member{observer}, "observer sees node-2", func(m *Member) bool { return stateOf(m, "node-2") == StateAlive })
	instance := target.Instance()

	ctx, cancel := context.WithTimeout(context.Background(), opDeadline)
	defer cancel()
	if res, err := observer.Evict(ctx, "node-2", instance, "test"); err != nil || !res.Confirmed {
		t.Fatalf("Evict: %+v %v", res, err)
	}
	peers := append(except(members, target), observer)
	waitAll(t, peers, "every peer sees node-2 evicted", func(m *Member) bool {
		info, _ := m.Member("node-2")
		return info.State == StateEvicted && info.EvictedBy == "observer" && info.EvictReason == "test"
	})
	eventually(t, 10*time.Second, "node-2 to fence itself", func() bool {
		_, _, evicted := target.Evicted()
		left, _ := target.Left()
		return evicted && left && stopped.Load() == 1
	})
	if target.HeartbeatRunning() {
		t.Error("evicted node still heartbeats")
	}

	// A zombie of that process that keeps beating, or refutes with alive messages,
	// does not come back, though it signs them as it should: feed peers exactly what
	// the network would deliver.
	zombie := heartbeatMsg{Node: "node-2", Instance: instance, Seq: 1 << 10}
	zombie.Sig = sign(target.key, domainHeartbeat, zombie)
	hb := encode(msgHeartbeat, zombie)
	alive := &memberlist.Node{Name: "node-2", Meta: mustJSON(t, signMeta(target.key, meta{Role: RoleNode, State: StateAlive,
		Instance: instance, Version: 99, Key: target.key.Public().(ed25519.PublicKey)}))}
	for _, m := range peers {
		d := &delegate{m: m}
		d.NotifyMsg(hb)
		if err := d.NotifyAlive(alive); err == nil {
			t.Errorf("%s accepts alive messages from evicted node-2", m.Name())
		}
		d.NotifyUpdate(alive)
		info, _ := m.Member("node-2")
		if info.State != StateEvicted || info.HeartbeatSeq == 1<<10 || info.EvictedHeartbeat.IsZero() {
			t.Errorf("%s: node-2 revived: state %s, heartbeat %d", m.Name(), info.State, info.HeartbeatSeq)
		}
	}
	// A new process under the same name is a new member.
	freshKey := newProcessKey()
	fresh := &memberlist.Node{Name: "node-2", Meta: mustJSON(t, signMeta(freshKey, meta{Role: RoleNode, State: StateAlive,
		Instance: "another", Key: freshKey.Public().(ed25519.PublicKey)}))}
	d := &delegate{m: observer}
	if err := d.NotifyAlive(fresh); err != nil {
		t.Errorf("a new instance of node-2 is refused: %v", err)
	}

	if _, err := observer.Evict(context.Background(), "nobody", "", "test"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("evicting an unknown node: %v, want ErrUnknownNode", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStallMakesSetStateFailWithinItsTimeout(t *testing.T) {
	members := newTestCluster(t, 3)
	target := members[0]
	target.Transport().Set(Fault{Mode: FaultStall})

	const timeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- target.SetState(ctx, StateLeaving) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrBroadcastTimeout) {
			t.Fatalf("SetState under stall: %v, want ErrBroadcastTimeout", err)
		}
	case <-time.After(30 * timeout):
		t.Fatal("SetState hung under a stalled transport")
	}

	target.Transport().Clear()
	ctx2, cancel2 := context.WithTimeout(context.Background(), opDeadline)
	defer cancel2()
	if err := target.SetState(ctx2, StateLeaving); err != nil {
		t.Fatalf("SetState after the stall cleared: %v", err)
	}
	waitAll(t, members, "node-1 seen leaving", func(m *Member) bool { return stateOf(m, "node-1") == StateLeaving })
}

func TestArmedFaultSwitchesOnWhenLeavingIsSet(t *testing.T) {
	members := newTestCluster(t, 3)
	target := members[0]
	target.Transport().Arm(Fault{Mode: FaultStall})
	if target.Transport().Current().Mode != FaultNone {
		t.Fatal("armed fault active before shutdown began")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := target.SetState(ctx, StateLeaving); !errors.Is(err, ErrBroadcastTimeout) {
		t.Fatalf("SetState(leaving) with an armed stall: %v, want ErrBroadcastTimeout", err)
	}
	if target.Transport().Current().Mode != FaultStall {
		t.Fatal("armed stall not switched on")
	}
}

func TestLeaveUnderStallStillShutsDown(t *testing.T) {
	members := newTestCluster(t, 3)
	target := members[0]
	target.Transport().Set(Fault{Mode: FaultStall})
	err := target.Leave(200 * time.Millisecond)
	if !errors.Is(err, ErrBroadcastTimeout) {
		t.Fatalf("Leave under stall: %v, want ErrBroadcastTimeout", err)
	}
	if left, leaveErr := target.Left(); !left || !errors.Is(leaveErr, ErrBroadcastTimeout) {
		t.Fatalf("Left() = %v, %v", left, leaveErr)
	}
	if again := target.Leave(time.Second); !errors.Is(again, ErrBroadcastTimeout) {
		t.Fatalf("second Leave hides the failure: %v", again)
	}
	waitAll(t, members[1:], "node-1 out for the others", func(m *Member) bool { return stateOf(m, "node-1").Out() })
}

func TestWrongSecretKeyCannotJoin(t *testing.T) {
	key := func(b byte) []byte {
		k := make([]byte, 32)
		k[0] = b
		return k
	}
	a := newTestMember(t, "a", withKey(key(1)))
	b := newTestMember(t, "b", withKey(key(2)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := b.Join(ctx, []string{a.Addr()})
	if err == nil {
		t.Fatal("member with another key joined")
	}
	if !strings.Contains(err.Error(), "gossip key") {
		t.Errorf("join error does not point at the key: %v", err)
	}
	c := newTestMember(t, "c", withKey(key(1)))
	if err := c.Join(ctx, []string{a.Addr()}); err != nil {
		t.Fatalf("member with the same key: %v", err)
	}
	waitAll(t, []*Member{a, c}, "a and c see each other", func(m *Member) bool {
		return stateOf(m, "a") == StateAlive && stateOf(m, "c") == StateAlive
	})
	if _, ok := a.Member("b"); ok {
		t.Error("a lists b although b has another key")
	}
}

func TestConvergence(t *testing.T) {
	members := newTestCluster(t, 4)
	observer := newTestMember(t, "observer", withRole(RoleObserver))
	if err := observer.Join(context.Background(), []string{members[0].Addr()}); err != nil {
		t.Fatal(err)
	}
	// Members answer only those they know.
	waitAll(t, append([]*Member{observer}, members...), "everyone sees everyone", func(m *Member) bool { return len(m.Members()) == 5 })

	q := ConvergenceQuery{Target: "node-4", Instance: members[3].Instance()}
	ctx, cancel := context.WithTimeout(context.Background(), opDeadline) // returns once all answered
	conv, err := observer.CheckConvergence(ctx, q)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if conv.Converged || conv.Status != Pending || len(conv.Pending) != 4 || conv.Needed != 2 {
		t.Fatalf("alive node reported converged: %+v", conv)
	}

	if err := members[3].Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conv, err = observer.WaitConverged(ctx, q, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatalf("WaitConverged: %v (%+v)", err, conv)
	}
	for name, st := range conv.Views {
		if !st.Out() {
			t.Errorf("converged, yet %s sees node-4 as %q", name, st)
		}
	}
	// Out right away; left (rather than dead) once the leave announcement reached
	// every member.
	waitAll(t, slices.Concat(members[:3], []*Member{observer}), "everyone to see node-4 left", func(m *Member) bool {
		return stateOf(m, "node-4") == StateLeft
	})
	// A process nobody knows is gone: out for everyone.
	if conv, err := observer.CheckConvergence(ctx, ConvergenceQuery{Target: "nobody", Instance: "p0"}); err != nil || !conv.Converged {
		t.Errorf("unknown target: %+v %v", conv, err)
	}
}

func TestMembersThatLeftAreForgottenAfterAWhile(t *testing.T) {
	// Long enough that a loaded machine still sees it left before it is forgotten.
	keeper := newTestMember(t, "keeper", func(o *Options) { o.ForgetAfter = 2 * time.Second })
	leaver := newTestMember(t, "leaver")
	if err := leaver.Join(context.Background(), []string{keeper.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitAll(t, []*Member{keeper}, "keeper sees leaver", func(m *Member) bool { return stateOf(m, "leaver") == StateAlive })
	if err := leaver.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	waitAll(t, []*Member{keeper}, "keeper sees leaver left", func(m *Member) bool { return stateOf(m, "leaver") == StateLeft })
	waitAll(t, []*Member{keeper}, "keeper to forget leaver", func(m *Member) bool {
		_, known := m.Member("leaver")
		return !known
	})
	if _, known := keeper.Member("keeper"); !known {
		t.Error("a member forgot itself")
	}
}

// State changes close together — each re-advertises the member's metadata while an
// earlier one's broadcast may still wait — never race inside memberlist (whose
// UpdateNode reads its own entry unlocked): the race detector watches; and the state
// set last is what everyone sees.
func TestStateChangesCloseTogetherAreAdvertisedInTurn(t *testing.T) {
	members := newTestCluster(t, 3)
	m := members[0]
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), opDeadline)
			defer cancel()
			if err := m.SetState(ctx, StateLeaving); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), opDeadline)
	defer cancel()
	if err := m.SetState(ctx, StateAlive); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "every member sees "+m.Name()+" alive", func() bool {
		for _, o := range members[1:] {
			if info, ok := o.Member(m.Name()); !ok || info.State != StateAlive {
				return false
			}
		}
		return true
	})
	// A member that joins later learns it from memberlist's metadata alone (no state
	// message went to it): the last state, at its version — the updates ran to the end.
	m.mu.Lock()
	version := m.version
	m.mu.Unlock()
	late := newTestMember(t, "late")
	ctx, cancel = context.WithTimeout(context.Background(), opDeadline)
	defer cancel()
	if err := late.Join(ctx, []string{m.Addr()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a member joining later sees "+m.Name()+" at its last state", func() bool {
		info, ok := late.Member(m.Name())
		return ok && info.State == StateAlive && info.version == version
	})
}
