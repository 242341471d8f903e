package cluster

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
)

// Replaced is what a member answers about a process when it knows another process under
// that name: the one asked about is gone. It is an answer, never a member's state.
const Replaced State = "replaced"

// ConvergenceStatus is what a convergence check found.
type ConvergenceStatus string

const (
	// Converged: enough members answered and every one sees the process out.
	Converged ConvergenceStatus = "converged"
	// Pending: some member still sees the process in.
	Pending ConvergenceStatus = "pending"
	// Unverified: too few members answered to say; never taken for converged.
	Unverified ConvergenceStatus = "unverified"
)

// ConvergenceQuery asks how the cluster sees one process.
type ConvergenceQuery struct {
	// Target is the node's name.
	Target string
	// Instance is the process; "" means whatever process has the name.
	Instance string
	// StrictLeft counts only left and evicted (and a replaced or forgotten process) as
	// out: a dead member may be one whose network hangs, and come back.
	StrictLeft bool
}

// out reports whether an answer s counts as the process being out.
func (q ConvergenceQuery) out(s State) bool {
	switch s {
	case StateLeft, StateEvicted, Replaced, "":
		return true
	case StateDead:
		return !q.StrictLeft
	}
	return false
}

// Convergence is what the members say of a process.
type Convergence struct {
	Status ConvergenceStatus `json:"status"`
	// Converged is Status == Converged.
	Converged bool `json:"converged"`
	// Views maps each member that answered (this one included) to the process's state
	// as it sees it: "" when it never heard of it, "replaced" when it knows a newer one.
	Views map[string]State `json:"views"`
	// Pending lists the members that did not answer or still see the process in.
	Pending []string `json:"pending,omitempty"`
	// Answered counts the other members that answered; Needed is how many answers make
	// a verdict: a majority of the other members this one sees alive.
	Answered int `json:"answered"`
	Needed   int `json:"needed"`
}

// CheckConvergence asks the members this one sees alive how they see the process, and
// waits for their answers until ctx ends. The verdict needs answers from a majority of
// them: unverified when too few answered — also when this member sees no other member
// alive but some dead, for then it cannot tell being cut off from the others being
// gone; then pending when one of them, or this member itself, sees the process in;
// converged when all see it out. A member alone in its cluster decides by its own view.
func (m *Member) CheckConvergence(ctx context.Context, q ConvergenceQuery) (Convergence, error) {
	self := m.viewOf(q.Target, q.Instance)
	peers, dead := m.othersBesides(q.Target)
	conv := Convergence{Views: m.ask(ctx, q, peers, nil)}
	conv.Answered = len(conv.Views)
	conv.Views[m.name] = self
	conv.Needed = answersNeeded(len(peers), dead)
	in := !q.out(self)
	if in {
		conv.Pending = append(conv.Pending, m.name)
	}
	for _, p := range peers {
		if s, ok := conv.Views[p]; !ok || !q.out(s) {
			conv.Pending = append(conv.Pending, p)
			in = in || ok
		}
	}
	slices.Sort(conv.Pending)
	switch {
	case conv.Answered < conv.Needed:
		// Too few answers to say anything, this member's own view included: cut off, it
		// may not have heard the news either.
		conv.Status = Unverified
	case in:
		conv.Status = Pending
	default:
		conv.Status, conv.Converged = Converged, true
	}
	return conv, nil
}

// answersNeeded is how many of the other members must answer for a verdict: a strict
// majority of the peers this member sees alive; one when it sees none alive but some
// dead (cut off, or alone among the dead: it cannot tell); none when it is alone.
func answersNeeded(peers, dead int) int {
	switch {
	case peers > 0:
		return peers/2 + 1
	case dead > 0:
		return 1
	}
	return 0
}

// viewOf is this member's answer about a process: its state, Replaced when another
// process has the name, "" when it does not know the name.
func (m *Member) viewOf(target, instance string) State {
	m.mu.Lock()
	defer m.mu.Unlock()
	info, ok := m.view[target]
	switch {
	case !ok:
		return ""
	case instance != "" && info.Instance != instance:
		return Replaced
	}
	return info.State
}

// othersBesides lists the members other than this one and target that are alive or
// leaving in this member's view, and counts those it sees dead.
func (m *Member) othersBesides(target string) (alive []string, dead int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, info := range m.view {
		if name == m.name || name == target {
			continue
		}
		switch info.State {
		case StateAlive, StateLeaving:
			alive = append(alive, name)
		case StateDead:
			dead++
		}
	}
	slices.Sort(alive)
	return alive, dead
}

// survivors lists the members, other than this one and target, that are alive or
// leaving in this member's view.
func (m *Member) survivors(target string) []string {
	alive, _ := m.othersBesides(target)
	return alive
}

// ask sends a view query about a process to peers over TCP and collects their answers
// until all answered, ctx ends, or enough (if set) returns true for an answer.
func (m *Member) ask(ctx context.Context, q ConvergenceQuery, peers []string, enough func(State) bool) map[string]State {
	views := map[string]State{}
	if len(peers) == 0 {
		return views
	}
	m.mu.Lock()
	id := m.newQueryIDLocked()
	replies := make(chan viewReply, len(peers))
	m.queries[id] = replies
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.queries, id)
		m.mu.Unlock()
	}()

	msg := encode(msgQuery, viewQuery{ID: id, From: m.name, Target: q.Target, Instance: q.Instance})
	asked := 0
	var mine []string // peers this call has a query outstanding with
	defer func() {
		m.mu.Lock()
		for _, p := range mine {
			delete(m.inflight, p)
		}
		m.mu.Unlock()
	}()
	for _, n := range m.liveNodes(func(name string) bool { return slices.Contains(peers, name) }) {
		m.mu.Lock()
		busy := m.inflight[n.Name]
		if !busy {
			m.inflight[n.Name] = true
			mine = append(mine, n.Name)
		}
		m.mu.Unlock()
		if busy {
			continue // at most one query of ours in flight per peer
		}
		asked++
		go func() {
			if err := m.ml.SendReliable(n, msg); err != nil {
				m.log.Debug("view query not sent", "to", n.Name, "error", err)
			}
		}()
	}
	for ; asked > 0; asked-- {
		select {
		case r := <-replies:
			views[r.From] = r.State
			if enough != nil && enough(r.State) {
				return views
			}
		case <-ctx.Done():
			return views
		}
	}
	return views
}

// confirmFanout is how many peers each round of confirmSeen asks. One confirmation is
// enough; asking every peer would cost a TCP connection to each, every round, for every
// member changing state at once.
const confirmFanout = 3

// confirmSeen waits until at least one other live member sees the process in state
// want, asking a few peers every poll, others the next round. With no other live member
// there is nobody to tell: it returns at once.
func (m *Member) confirmSeen(ctx context.Context, target, instance string, want State) error {
	const poll = 100 * time.Millisecond
	start := rand.IntN(1 << 20) // members changing state at once ask different peers
	for round := 0; ; round++ {
		peers := m.survivors(target)
		if len(peers) == 0 {
			return nil
		}
		peers = rotate(peers, start+round*confirmFanout)[:min(confirmFanout, len(peers))]
		pollCtx, cancel := context.WithTimeout(ctx, poll)
		views := m.ask(pollCtx, ConvergenceQuery{Target: target, Instance: instance}, peers, func(s State) bool { return s == want })
		cancel()
		for _, s := range views {
			if s == want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// rotate returns s turned left by k places (right for a negative k), as a new slice.
func rotate(s []string, k int) []string {
	k = (k%len(s) + len(s)) % len(s)
	return append(slices.Clone(s[k:]), s[:k]...)
}

// WaitConverged checks convergence every interval until the process is out for the
// members or ctx ends, and returns the last check; progress, if set, sees every one.
func (m *Member) WaitConverged(ctx context.Context, q ConvergenceQuery, interval time.Duration, progress func(Convergence)) (Convergence, error) {
	for {
		pollCtx, cancel := context.WithTimeout(ctx, max(interval, 50*time.Millisecond))
		conv, err := m.CheckConvergence(pollCtx, q)
		cancel()
		if err != nil {
			return conv, err
		}
		if progress != nil {
			progress(conv)
		}
		if conv.Converged {
			return conv, nil
		}
		select {
		case <-ctx.Done():
			return conv, ctx.Err()
		case <-time.After(interval):
		}
	}
}

func (m *Member) answerQuery(q viewQuery) {
	n, ok := m.askerNode(q.From)
	if !ok {
		return
	}
	reply := encode(msgReply, viewReply{ID: q.ID, From: m.name, Target: q.Target, State: m.viewOf(q.Target, q.Instance)})
	if err := m.ml.SendReliable(n, reply); err != nil {
		m.log.Debug("view reply not sent", "to", q.From, "error", err)
	}
}

// answer runs an answer to a query in the background, unless maxAnswering are running:
// then the query is dropped (the asker asks again).
func (m *Member) answer(f func()) {
	select {
	case m.answering <- struct{}{}:
		go func() {
			defer func() { <-m.answering }()
			f()
		}()
	default:
		m.log.Debug("query dropped: answering enough already")
	}
}

func (m *Member) onReply(r viewReply) {
	m.mu.Lock()
	ch, ok := m.queries[r.ID]
	m.mu.Unlock()
	if ok {
		select {
		case ch <- r:
		default:
		}
	}
}

// askerNode is where to answer an asker: a member this one knows from memberlist (a
// member that just left still waits for its answer), not evicted, at the address
// memberlist knows for it. Anyone else gets no answer.
func (m *Member) askerNode(name string) (*memberlist.Node, bool) {
	m.mu.Lock()
	info, ok := m.view[name]
	known := ok && !info.learned && info.State != StateEvicted
	m.mu.Unlock()
	if !known {
		return nil, false
	}
	return m.nodeFor(name)
}
