package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/farewell-project/farewell/internal/testkit"
)

// fastTimings makes failure detection and gossip quick enough for tests on loopback.
func fastTimings(c *memberlist.Config) {
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.PushPullInterval = 500 * time.Millisecond
	c.SuspicionMult = 2
	c.TCPTimeout = time.Second
	c.GossipToTheDeadTime = 2 * time.Second
}

type memberOpt func(*Options)

func withRole(r Role) memberOpt { return func(o *Options) { o.Role = r } }
func withKey(k []byte) memberOpt {
	return func(o *Options) { o.SecretKeys = [][]byte{k} }
}

// testExpiration is the heartbeat expiration of test members.
const testExpiration = 400 * time.Millisecond

// opDeadline bounds one cluster operation (a state change, an eviction) in a
// test. It is a deadline, not a wait: the race detector on a shared 2-core
// machine makes a broadcast that takes 50 ms alone take seconds.
const opDeadline = 20 * time.Second

func newTestMember(t testing.TB, name string, opts ...memberOpt) *Member {
	t.Helper()
	o := Options{
		Name:                name,
		BindAddr:            "127.0.0.1",
		Profile:             ProfileLocal,
		HeartbeatInterval:   50 * time.Millisecond,
		HeartbeatExpiration: testExpiration,
		Logger:              testLogger(t),
		Tune:                fastTimings,
	}
	for _, f := range opts {
		f(&o)
	}
	m, err := New(o)
	if err != nil {
		t.Fatalf("new member %s: %v", name, err)
	}
	t.Cleanup(m.Close)
	return m
}

// newTestCluster starts n nodes (node-1 … node-n) joined through the first, heartbeats on.
func newTestCluster(t testing.TB, n int, opts ...memberOpt) []*Member {
	t.Helper()
	members := make([]*Member, n)
	for i := range members {
		members[i] = newTestMember(t, fmt.Sprintf("node-%d", i+1), opts...)
		if i > 0 {
			if err := members[i].Join(context.Background(), []string{members[0].Addr()}); err != nil {
				t.Fatalf("join: %v", err)
			}
		}
		members[i].StartHeartbeat()
	}
	waitAll(t, members, "every member sees every other alive", func(m *Member) bool {
		alive := 0
		for _, info := range m.Members() {
			if info.State == StateAlive {
				alive++
			}
		}
		return alive == n
	})
	return members
}

// waitAll polls until cond holds for every member, or fails the test.
func waitAll(t testing.TB, members []*Member, what string, cond func(*Member) bool) {
	t.Helper()
	eventually(t, 15*time.Second, what, func() bool {
		for _, m := range members {
			if !cond(m) {
				return false
			}
		}
		return true
	})
}

func eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, limit, what, cond)
}

// asNoMessageMade says whether s is a state no message can have set: alive, or dead —
// memberlist's own failure detector, which a loaded machine can trip with the tests'
// 100 ms probe timeout. A check that a forged or dropped message changed nothing asks
// this of a single snapshot instead of wanting alive.
func asNoMessageMade(s State) bool { return s == StateAlive || s == StateDead }

func stateOf(m *Member, node string) State {
	info, ok := m.Member(node)
	if !ok {
		return ""
	}
	return info.State
}

func except(members []*Member, skip ...*Member) []*Member {
	var out []*Member
outer:
	for _, m := range members {
		for _, s := range skip {
			if m == s {
				continue outer
			}
		}
		out = append(out, m)
	}
	return out
}

func testLogger(t testing.TB) *slog.Logger { return testkit.Logger(t) }
