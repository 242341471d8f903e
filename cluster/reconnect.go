package cluster

import (
	"math/rand/v2"
	"time"

	"github.com/hashicorp/memberlist"
)

// memberlist gossips to a member it found dead only for GossipToTheDeadTime, and
// exchanges state (push/pull) only with members alive for it. Two halves of a cluster
// split for longer than that each see the other dead, and stay apart after the network
// heals: a node never hears of its own eviction, a bystander stays "dead" for half the
// cluster forever. Like serf, a member therefore keeps trying to join the members it
// sees dead — one at a time, at random — and, when it sees nobody alive at all, the
// addresses it first joined through. A join is a push/pull: the halves merge and every
// member refutes its own death.

// reconnectEvery is how often a member tries to rejoin a dead member, unless
// Options.ReconnectInterval says otherwise.
func (m *Member) reconnectEvery(mlc *memberlist.Config) time.Duration {
	if m.opts.ReconnectInterval > 0 {
		return m.opts.ReconnectInterval
	}
	return max(mlc.ProbeInterval*2, time.Second)
}

func (m *Member) reconnectLoop(every time.Duration) {
	defer m.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		if addr, ok := m.reconnectTarget(); ok {
			m.rejoin(addr)
		}
	}
}

// reconnectSample bounds the entries of the view a try looks at first, so that a try
// costs the same in a cluster of ten thousand as in one of ten. Go ranges over a map
// from a random place, so each try looks at another part of a big view: a partition,
// which leaves many members dead, is found at once; a lone dead member within a few
// hundred tries of each member — and it, when it is back, finds everyone dead at its
// first.
const reconnectSample = 64

// reconnectTarget picks a member to try: one it sees dead (at random, among the part
// of the view it looks at), or, when it sees no other member alive, one of the
// addresses it joined through. A part that holds neither a member to try nor one alive
// (a view mostly of members out) says nothing: then the whole view is looked at.
func (m *Member) reconnectTarget() (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dead, alive, whole := m.lookForReconnect(reconnectSample)
	if len(dead) == 0 && alive == 0 && !whole {
		dead, alive, _ = m.lookForReconnect(len(m.view))
	}
	if len(dead) > 0 {
		return dead[rand.IntN(len(dead))], true
	}
	if alive == 0 && len(m.joined) > 0 {
		return m.joined[rand.IntN(len(m.joined))], true
	}
	return "", false
}

// lookForReconnect looks at up to limit entries of the view (not counting this
// member's): the addresses of those it saw die itself, how many are alive, and whether
// it looked at them all. m.mu must be held.
func (m *Member) lookForReconnect(limit int) (dead []string, alive int, whole bool) {
	looked := 0
	for name, info := range m.view {
		if name == m.name {
			continue
		}
		if looked == limit {
			return dead, alive, false
		}
		looked++
		switch {
		case info.State == StateDead && !info.learned && info.Addr != "":
			dead = append(dead, info.Addr)
		case info.State == StateAlive || info.State == StateLeaving:
			alive++
		}
	}
	return dead, alive, true
}

// rejoin joins addr in the background; one attempt at a time.
func (m *Member) rejoin(addr string) {
	if !m.rejoining.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer m.rejoining.Store(false)
		if n, err := m.ml.Join([]string{addr}); err == nil && n > 0 {
			m.log.Info("rejoined a member seen dead (a partition healed?)", "addr", addr)
		}
	}()
}
