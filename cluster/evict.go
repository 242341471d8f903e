package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// selfFenceTimeout bounds the service stops of a member that learns it was evicted.
const selfFenceTimeout = 30 * time.Second

// EvictResult says what an eviction did.
type EvictResult struct {
	// Confirmed: another member was seen to hold the eviction. An eviction nobody
	// confirmed may have reached no one.
	Confirmed bool
	// Gone says why no eviction was needed: the process left, or another process has
	// the name now ("" when the process was evicted).
	Gone string
	// AlreadyEvicted: the process had been evicted before.
	AlreadyEvicted bool
}

// Evict forces one process of node out of the cluster (instance "" means whichever
// process has the name): every member marks it evicted and ignores its later
// heartbeats and metadata, and the process itself, when it hears of it, stops its
// services and leaves (self-fencing). The eviction is gossiped, shared in push/pull and
// sent straight to the node; then Evict waits, until ctx ends, for another member to
// confirm it holds it. A process that left, or that another process of the name
// replaced, is not evicted: it is gone already, and the newer one is never touched.
func (m *Member) Evict(ctx context.Context, node, instance, reason string) (EvictResult, error) {
	if node == m.name {
		return EvictResult{}, fmt.Errorf("evict %s: a member cannot evict itself", node)
	}
	m.mu.Lock()
	info, ok := m.view[node]
	var e evictMsg
	var res EvictResult
	switch {
	case !ok && instance == "":
		m.mu.Unlock()
		return res, fmt.Errorf("evict %s: %w", node, ErrUnknownNode)
	case ok && instance != "" && info.Instance != instance:
		res.Gone = fmt.Sprintf("process %s of %s was replaced by %s", instance, node, info.Instance)
	case ok && info.State == StateLeft:
		res.Gone = fmt.Sprintf("%s left the cluster", node)
	case ok && info.State == StateEvicted:
		res.AlreadyEvicted = true
		fallthrough
	default:
		if instance == "" {
			instance = info.Instance
		}
		e = evictMsg{Node: node, Instance: instance, By: m.name, Reason: reason, At: time.Now().UnixMilli()}
	}
	m.mu.Unlock()
	if m.opts.EvictSigner == nil && m.opts.EvictVerifier != nil {
		return res, fmt.Errorf("evict %s: %w", node, ErrCannotEvict)
	}
	if !ok {
		// This member never knew the process (it joined later): ask those who might.
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		conv, _ := m.CheckConvergence(qctx, ConvergenceQuery{Target: node, Instance: instance, StrictLeft: true})
		cancel()
		if conv.Converged {
			res.Gone = fmt.Sprintf("no member sees process %s of %s in the cluster any more", instance, node)
		}
	}
	if res.Gone != "" {
		m.log.Info("no eviction needed: the process is gone", "node", node, "instance", instance, "why", res.Gone)
		return res, nil
	}
	if m.opts.EvictSigner != nil {
		e.Sig = sign(m.opts.EvictSigner, domainEvict, e)
	}
	m.onEvict(e, true, true)
	msg := encode(msgEvict, e)

	// Tell every member straight away (gossip alone misses some in small clusters),
	// and the node itself, so it fences itself without waiting. Best effort: the node
	// may be unreachable, which is often why it is being evicted.
	m.sendToAll(msg)
	if n, ok := m.nodeFor(node); ok {
		go func() {
			if err := m.ml.SendReliable(n, msg); err != nil {
				m.log.Debug("could not tell the evicted node directly; gossip will", "node", node, "error", err)
			}
		}()
	}
	if len(m.survivors(node)) == 0 {
		m.log.Warn("eviction not confirmed: no other member is alive to hold it", "node", node)
		return res, nil
	}
	if err := m.confirmSeen(ctx, node, instance, StateEvicted); err != nil {
		m.log.Warn("eviction not confirmed by any member", "node", node, "error", err)
		return res, nil
	}
	res.Confirmed = true
	return res, nil
}

// ErrCannotEvict: this member holds no eviction signing key; the cluster's members
// would ignore its evictions.
var ErrCannotEvict = errors.New("this member cannot sign evictions")

// validEviction reports whether e is signed with the eviction key this member checks
// against; with no key configured (a loopback cluster) every eviction is taken.
func (m *Member) validEviction(e evictMsg) bool {
	if m.opts.EvictVerifier == nil {
		return true
	}
	sig := e.Sig
	e.Sig = nil
	return verify(m.opts.EvictVerifier, domainEvict, e, sig)
}

// onEvict applies an eviction if it is signed as it must be. rebroadcast spreads the
// news further the first time it is heard, so that it reaches every member
// epidemically. learned allows an eviction of a process this member never saw (it
// joined later, or the process stalled before news of its join reached it): from
// push/pull only, checked like any eviction, and within maxLearned — so that the
// process, should it come back, is refused here too.
func (m *Member) onEvict(e evictMsg, rebroadcast, learned bool) {
	if !m.validEviction(e) {
		m.log.Warn("ignored an eviction not signed with the cluster's eviction key", "node", e.Node, "by", e.By)
		return
	}
	now := time.Now()
	// The evicter's clock says nothing about this member's: never later than now.
	e.At = min(e.At, now.UnixMilli())
	m.mu.Lock()
	if prev, ok := m.evictions[e.Node]; ok && prev.Instance == e.Instance {
		m.mu.Unlock()
		return
	}
	if e.Node == m.name {
		if e.Instance != m.instance || m.evicted != nil {
			m.mu.Unlock()
			return
		}
		m.evicted = &e
		m.evictions[e.Node] = e
		m.evictSeen[e.Node] = now
		m.setSelfLocked(StateEvicted)
		if self, ok := m.view[m.name]; ok {
			self.EvictedBy, self.EvictReason = e.By, e.Reason
		}
		m.mu.Unlock()
		m.queue.QueueBroadcast(&broadcast{name: "evict:" + e.Node, msg: encode(msgEvict, e)})
		go m.selfFence(e)
		return
	}
	info, known := m.view[e.Node]
	if known && info.Instance != e.Instance {
		// The eviction is of an older process under that name; the current one stays.
		m.mu.Unlock()
		return
	}
	if !known && (!learned || !m.mayLearnLocked()) {
		m.mu.Unlock()
		return
	}
	m.evictions[e.Node] = e
	m.evictSeen[e.Node] = now
	if !known {
		info = &MemberInfo{Name: e.Node, Role: RoleNode, Instance: e.Instance, learned: true}
		m.putLocked(info)
	}
	info.State, info.Since, info.Blocked = StateEvicted, now, false
	info.EvictedBy, info.EvictReason = e.By, e.Reason
	m.mu.Unlock()
	m.log.Warn("member evicted", "node", e.Node, "by", e.By, "reason", e.Reason)
	if rebroadcast {
		m.queue.QueueBroadcast(&broadcast{name: "evict:" + e.Node, msg: encode(msgEvict, e)})
	}
}

// selfFence runs on the evicted member: it stops serving and leaves, so that a node the
// cluster gave up on does not keep working as a zombie.
func (m *Member) selfFence(e evictMsg) {
	m.log.Error("this member was evicted; stopping its services and leaving (self-fencing)",
		"by", e.By, "reason", e.Reason)
	m.StopHeartbeat()
	ctx, cancel := context.WithTimeout(context.Background(), selfFenceTimeout)
	defer cancel()
	for _, r := range m.services.StopAll(ctx, nil) {
		if r.Status != ServiceStopped {
			m.log.Warn("service did not stop cleanly while self-fencing", "service", r.Name, "status", r.Status, "error", r.Error)
		}
	}
	// Give the eviction a moment to spread from here too, then leave without waiting
	// long: peers already treat this member as gone.
	m.Leave(time.Second)
	if m.opts.OnEvicted != nil {
		m.opts.OnEvicted(e.By, e.Reason)
	}
}

// Evicted reports whether this member was evicted, by whom and why.
func (m *Member) Evicted() (by, reason string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.evicted == nil {
		return "", "", false
	}
	return m.evicted.By, m.evicted.Reason, true
}

// Terminate is the forced end of a node: services stopped, heartbeat stopped, memberlist
// shut down without a leave. Peers that evicted it already ignore it.
func (m *Member) Terminate(ctx context.Context) []ServiceResult {
	m.StopHeartbeat()
	results := m.services.StopAll(ctx, nil)
	m.Shutdown()
	return results
}
