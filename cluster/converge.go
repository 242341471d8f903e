package cluster

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
)

// Convergence is what the surviving members say of a target node.
type Convergence struct {
	// Converged is true when every surviving member sees the target out (left, dead or
	// evicted).
	Converged bool `json:"converged"`
	// Views maps each surviving member that answered (this one included) to the
	// target's state as it sees it; "" when it never heard of the target.
	Views map[string]State `json:"views"`
	// Pending lists surviving members that did not answer or still see the target in.
	Pending []string `json:"pending,omitempty"`
}

// CheckConvergence asks every surviving member (alive or leaving, other than target)
// how it sees target, and waits for the answers until ctx ends. Members that do not
// answer in time are pending.
func (m *Member) CheckConvergence(ctx context.Context, target string) (Convergence, error) {
	m.mu.Lock()
	self, ok := m.view[target]
	if !ok {
		m.mu.Unlock()
		return Convergence{}, fmt.Errorf("check convergence on %s: %w", target, ErrUnknownNode)
	}
	selfState := self.State
	m.mu.Unlock()
	peers := m.survivors(target)

	conv := Convergence{Views: m.ask(ctx, target, peers, nil)}
	conv.Views[m.name] = selfState
	conv.Converged = selfState.Out()
	if !selfState.Out() {
		conv.Pending = append(conv.Pending, m.name)
	}
	for _, p := range peers {
		// A member that never heard of the target ("" in its answer) does not count
		// it in: that is as out as it gets.
		if s, ok := conv.Views[p]; !ok || !(s.Out() || s == "") {
			conv.Converged = false
			conv.Pending = append(conv.Pending, p)
		}
	}
	slices.Sort(conv.Pending)
	return conv, nil
}

// survivors lists the members, other than this one and target, that are alive or
// leaving in this member's view.
func (m *Member) survivors(target string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for name, info := range m.view {
		if name != m.name && name != target && (info.State == StateAlive || info.State == StateLeaving) {
			out = append(out, name)
		}
	}
	return out
}

// ask sends a view query about target to peers over TCP and collects their answers until
// all answered, ctx ends, or enough (if set) returns true for an answer.
func (m *Member) ask(ctx context.Context, target string, peers []string, enough func(State) bool) map[string]State {
	views := map[string]State{}
	if len(peers) == 0 {
		return views
	}
	m.mu.Lock()
	m.nextQueryID++
	id := m.nextQueryID
	replies := make(chan viewReply, len(peers))
	m.queries[id] = replies
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.queries, id)
		m.mu.Unlock()
	}()

	q := encode(msgQuery, viewQuery{ID: id, From: m.name, Target: target, Addr: m.Addr()})
	asked := 0
	for _, n := range m.liveNodes(func(name string) bool { return slices.Contains(peers, name) }) {
		asked++
		go func() {
			if err := m.ml.SendReliable(n, q); err != nil {
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

// confirmSeen waits until at least one other live member sees target in state want,
// asking again every poll. With no other live member there is nobody to tell: it
// returns at once.
func (m *Member) confirmSeen(ctx context.Context, target string, want State) error {
	const poll = 100 * time.Millisecond
	for {
		peers := m.survivors(target)
		if len(peers) == 0 {
			return nil
		}
		pollCtx, cancel := context.WithTimeout(ctx, poll)
		views := m.ask(pollCtx, target, peers, func(s State) bool { return s == want })
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

// WaitConverged polls CheckConvergence every interval until the target is out for every
// surviving member or ctx ends; progress, if set, sees every poll.
func (m *Member) WaitConverged(ctx context.Context, target string, interval time.Duration, progress func(Convergence)) (Convergence, error) {
	for {
		pollCtx, cancel := context.WithTimeout(ctx, max(interval, 50*time.Millisecond))
		conv, err := m.CheckConvergence(pollCtx, target)
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
	m.mu.Lock()
	state := State("")
	if info, ok := m.view[q.Target]; ok {
		state = info.State
	}
	m.mu.Unlock()
	reply := encode(msgReply, viewReply{ID: q.ID, From: m.name, Target: q.Target, State: state})
	if n, ok := m.replyNode(q.From, q.Addr); ok {
		if err := m.ml.SendReliable(n, reply); err != nil {
			m.log.Debug("view reply not sent", "to", q.From, "error", err)
		}
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

// replyNode is where to answer an asker: from this member's view, or from the address
// the asker gave when news of its join has not arrived yet.
func (m *Member) replyNode(name, addr string) (*memberlist.Node, bool) {
	if n, ok := m.nodeFor(name); ok {
		return n, true
	}
	host, port, err := splitHostPort(addr)
	if err != nil {
		return nil, false
	}
	return &memberlist.Node{Name: name, Addr: net.ParseIP(host), Port: uint16(port)}, true
}
