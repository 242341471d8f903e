package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/farewell-project/farewell/internal/testkit"
)

// A partition that lasts longer than memberlist gossips to the dead leaves the two
// halves apart for good after the network heals — unless members keep trying to
// rejoin the ones they see dead.
func TestAPartitionHealsAfterMemberlistForgotTheDead(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reconnect time.Duration
		heals     bool
	}{
		{"memberlist alone", -1, false},
		{"with reconnects", 300 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			members := newTestCluster(t, 4, func(o *Options) { o.ReconnectInterval = tc.reconnect })
			left, right := members[:2], members[2:]
			names := func(ms []*Member) []string {
				var out []string
				for _, m := range ms {
					out = append(out, m.Name(), m.Addr())
				}
				return out
			}
			for _, m := range left {
				m.Transport().Set(Fault{Mode: FaultDrop, Peers: names(right)})
			}
			for _, m := range right {
				m.Transport().Set(Fault{Mode: FaultDrop, Peers: names(left)})
			}
			// Apart for longer than GossipToTheDeadTime (2 s in fastTimings).
			waitAll(t, members, "each half to see the other dead for 3 s", func(m *Member) bool {
				other := right
				if m == right[0] || m == right[1] {
					other = left
				}
				for _, o := range other {
					info, _ := m.Member(o.Name())
					if info.State != StateDead || time.Since(info.Since) < 3*time.Second {
						return false
					}
				}
				return true
			})
			for _, m := range members {
				m.Transport().Clear()
			}
			merged := func() bool {
				for _, m := range members {
					for _, o := range members {
						if stateOf(m, o.Name()) != StateAlive {
							return false
						}
					}
				}
				return true
			}
			if got := testkit.Within(10*time.Second, merged); got != tc.heals {
				t.Fatalf("10 s after the heal, merged = %v; want %v", got, tc.heals)
			}
		})
	}
}

// How often a member tries to rejoin: as set, else twice the probe interval but at
// least a second.
func TestReconnectInterval(t *testing.T) {
	for _, c := range []struct {
		set, probe, want time.Duration
	}{
		{0, 200 * time.Millisecond, time.Second},
		{0, time.Second, 2 * time.Second},
		{3 * time.Second, time.Second, 3 * time.Second},
	} {
		m := &Member{opts: Options{ReconnectInterval: c.set}}
		if got := m.reconnectEvery(&memberlist.Config{ProbeInterval: c.probe}); got != c.want {
			t.Errorf("set %s, probe %s: every %s, want %s", c.set, c.probe, got, c.want)
		}
	}
}

// What a member tries to rejoin: a member it saw die itself (never one it only heard
// of); when it sees nobody alive, the addresses it joined through; else nothing.
func TestReconnectTarget(t *testing.T) {
	w, d := newWitness(t)
	target := func() string {
		addr, ok := w.reconnectTarget()
		if !ok {
			return "nothing"
		}
		return addr
	}
	if got := target(); got != "nothing" {
		t.Errorf("alone, never joined: tries %s", got)
	}
	w.mu.Lock()
	w.joined = []string{"127.0.0.1:9"}
	w.mu.Unlock()
	if got := target(); got != "127.0.0.1:9" {
		t.Errorf("alone after a join: tries %s, want the address it joined through", got)
	}
	d.MergeRemoteState(mustJSON(t, sharedState{Deads: []deadMsg{{Node: "heard", Instance: "i", Addr: "127.0.0.1:8"}}}), false)
	if got := target(); got != "127.0.0.1:9" {
		t.Errorf("with a death it only heard of: tries %s", got)
	}
	alive, dead := newProcess("alive", 7001), newProcess("dead", 7002)
	d.NotifyJoin(alive.node(t, StateAlive, 1))
	if got := target(); got != "nothing" {
		t.Errorf("with a member alive and none it saw die: tries %s", got)
	}
	d.NotifyJoin(dead.node(t, StateAlive, 1))
	d.NotifyLeave(dead.node(t, StateAlive, 1))
	if got := target(); got != "127.0.0.1:7002" {
		t.Errorf("with a member it saw die: tries %s", got)
	}
}

// In a view of thousands a try looks at part of it first, and still finds the dead: a
// lone dead member among a thousand alive is tried within a few thousand tries, never
// a member alive; a member that sees everyone dead tries one of them at once; one that
// sees a member alive among many out tries nothing.
func TestReconnectTargetInABigView(t *testing.T) {
	w, _ := newWitness(t)
	fill := func(n int, state State) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for name := range w.view {
			if name != w.name {
				w.dropLocked(name)
			}
		}
		for i := range n {
			w.putLocked(&MemberInfo{Name: fmt.Sprintf("n-%04d", i), Role: RoleNode, State: state, Addr: fmt.Sprintf("127.0.0.2:%d", 1000+i),
				Since: time.Now()}) // out just now: not forgotten while the test runs
		}
	}
	fill(1000, StateAlive)
	w.mu.Lock()
	w.view["n-0500"].State = StateDead
	w.mu.Unlock()
	found := false
	for range 3000 { // each finds it with p ≈ 64/1000: missed 3,000 times with p < 1e-80
		addr, ok := w.reconnectTarget()
		if ok && addr != "127.0.0.2:1500" {
			t.Fatalf("tried %s, a member alive", addr)
		}
		if found = ok; found {
			break
		}
	}
	if !found {
		t.Error("the lone dead member among a thousand was never tried")
	}
	// A try looks at a part of the view, not all of it: it finds the lone dead member
	// about one try in sixteen (64 entries of 1,001), not every time.
	hits := 0
	for range 200 {
		if _, ok := w.reconnectTarget(); ok {
			hits++
		}
	}
	t.Logf("the lone dead member found in %d tries of 200", hits)
	if hits > 150 {
		t.Errorf("the lone dead member was found in %d tries of 200: each try looks at the whole view", hits)
	}
	w.mu.Lock()
	w.joined = []string{"127.0.0.1:9"}
	w.mu.Unlock()
	fill(1000, StateDead)
	if addr, ok := w.reconnectTarget(); !ok || !strings.HasPrefix(addr, "127.0.0.2:") {
		t.Errorf("everyone dead: tries %q %v, want one of them", addr, ok)
	}
	// A view mostly of members out, one alive: nothing to try, and not the addresses
	// it joined through — the part a try looks at first rarely holds the one alive.
	fill(1000, StateLeft)
	w.mu.Lock()
	w.view["n-0007"].State = StateAlive
	w.mu.Unlock()
	for range 200 {
		if addr, ok := w.reconnectTarget(); ok {
			t.Fatalf("a member alive, none dead, the rest left: tries %s", addr)
		}
	}
}

// A member given no reconnect interval still tries the members it sees dead, at the
// default interval (a second here).
func TestReconnectsByDefault(t *testing.T) {
	m := newTestMember(t, "m") // ReconnectInterval 0: the default
	b := newTestMember(t, "b")
	ghost := processOf(t, b)
	ghost.name = "ghost" // a member m saw die, at b's address
	d := &delegate{m: m}
	d.NotifyJoin(ghost.node(t, StateAlive, 1))
	d.NotifyLeave(ghost.node(t, StateAlive, 1))
	eventually(t, opDeadline, "m to rejoin through the dead member's address", func() bool { return stateOf(m, "b") == StateAlive })
}
