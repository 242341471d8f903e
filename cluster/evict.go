package cluster

import (
	"context"
	"fmt"
	"time"
)

// selfFenceTimeout bounds the service stops of a member that learns it was evicted.
const selfFenceTimeout = 30 * time.Second

// Evict forces node out of the cluster: every member marks it evicted and ignores its
// later heartbeats and metadata, and the node itself, when it hears of it, stops its
// services and leaves (self-fencing). The eviction is gossiped, shared in push/pull,
// and sent straight to the node. Evicting an evicted node again does nothing.
func (m *Member) Evict(ctx context.Context, node, reason string) error {
	if node == m.name {
		return fmt.Errorf("evict %s: a member cannot evict itself", node)
	}
	m.mu.Lock()
	info, ok := m.view[node]
	var e evictMsg
	if ok {
		e = evictMsg{Node: node, Instance: info.Instance, By: m.name, Reason: reason, At: time.Now().UnixMilli()}
	}
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("evict %s: %w", node, ErrUnknownNode)
	}
	m.onEvict(e, true)
	msg := encode(msgEvict, e)

	// Tell every member straight away (gossip alone misses some in small clusters),
	// and the node itself, so it fences itself without waiting. Best effort: the node
	// may be unreachable, which is often why it is being evicted.
	all := m.sendToAll(msg)
	if n, ok := m.nodeFor(node); ok {
		done := make(chan error, 1)
		go func() { done <- m.ml.SendReliable(n, msg) }()
		select {
		case err := <-done:
			if err != nil {
				m.log.Warn("could not tell the evicted node directly; gossip will", "node", node, "error", err)
			}
		case <-ctx.Done():
		}
	}
	select {
	case <-all:
	case <-ctx.Done():
	}
	return nil
}

// onEvict applies an eviction. rebroadcast spreads the news further the first time it
// is heard, so that it reaches every member epidemically.
func (m *Member) onEvict(e evictMsg, rebroadcast bool) {
	now := time.Now()
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
	m.evictions[e.Node] = e
	if !known {
		info = &MemberInfo{Name: e.Node, Role: RoleNode, Instance: e.Instance}
		m.view[e.Node] = info
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
