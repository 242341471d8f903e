package cluster

import (
	"crypto/ed25519"
	"time"
)

// StartHeartbeat publishes an application heartbeat every heartbeat_interval until
// StopHeartbeat. Calling it while the heartbeat runs does nothing.
func (m *Member) StartHeartbeat() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hbStop != nil || m.left || m.departing || m.evicted != nil {
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	m.hbStop, m.hbDone = stop, done
	go m.heartbeatLoop(stop, done)
	m.log.Info("heartbeat started", "interval", m.opts.HeartbeatInterval)
}

// stopWait bounds StopHeartbeat's wait for a send stuck in a stalled network.
const stopWait = 250 * time.Millisecond

// StopHeartbeat stops publishing heartbeats: once it returns no new heartbeat is
// started. It waits for the loop to end, but not past a send stuck in a stalled
// network (that one may still leave once the network moves). Calling it when stopped
// does nothing.
func (m *Member) StopHeartbeat() {
	m.mu.Lock()
	stop, done := m.hbStop, m.hbDone
	m.hbStop, m.hbDone = nil, nil
	m.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	select {
	case <-done:
		m.log.Info("heartbeat stopped")
	case <-time.After(stopWait):
		m.log.Warn("heartbeat stopped; its last send is stuck in the network", "waited", stopWait)
	}
}

// HeartbeatRunning reports whether the heartbeat is being published.
func (m *Member) HeartbeatRunning() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hbStop != nil
}

func (m *Member) heartbeatLoop(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(m.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		m.beat(stop)
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// beat sends one heartbeat straight to every other live member, best effort (UDP):
// a lost one is replaced by the next. It gives up as soon as stop is closed.
func (m *Member) beat(stop <-chan struct{}) {
	m.mu.Lock()
	m.hbSeq++
	hb := heartbeatMsg{Node: m.name, Instance: m.instance, Seq: m.hbSeq}
	hb.Sig = sign(m.key, domainHeartbeat, hb)
	msg := encode(msgHeartbeat, hb)
	if self, ok := m.view[m.name]; ok {
		self.HeartbeatSeq, self.LastHeartbeat = m.hbSeq, time.Now()
	}
	m.mu.Unlock()
	for _, n := range m.liveNodes(nil) {
		select {
		case <-stop:
			return
		default:
		}
		if err := m.ml.SendBestEffort(n, msg); err != nil {
			m.log.Debug("heartbeat not sent", "to", n.Name, "error", err)
		}
	}
}

func (m *Member) onHeartbeat(hb heartbeatMsg) {
	sig := hb.Sig
	hb.Sig = nil
	// Check the signature without the lock: every member hears every other's
	// heartbeat, and a verification is the costliest thing done here.
	m.mu.Lock()
	info, ok := m.view[hb.Node]
	var key ed25519.PublicKey
	if ok && info.Instance == hb.Instance {
		key = info.key
	}
	m.mu.Unlock()
	if key == nil || !verify(key, domainHeartbeat, hb, sig) {
		return // not from that process
	}
	m.mu.Lock()
	if info, ok = m.view[hb.Node]; !ok || info.Instance != hb.Instance || !info.key.Equal(key) {
		m.mu.Unlock()
		return // replaced meanwhile
	}
	if info.State == StateEvicted {
		// An evicted process that still heartbeats did not fence itself: a zombie the
		// watchdog looks for.
		info.EvictedHeartbeat = time.Now()
		m.mu.Unlock()
		return
	}
	if hb.Seq <= info.HeartbeatSeq || info.HeartbeatSeq > 0 && hb.Seq > info.HeartbeatSeq+maxSeqJump {
		m.mu.Unlock()
		return
	}
	info.HeartbeatSeq, info.LastHeartbeat = hb.Seq, time.Now()
	wasBlocked := info.Blocked
	info.Blocked = false
	m.mu.Unlock()
	if wasBlocked {
		m.log.Info("member heartbeat resumed", "node", hb.Node)
	}
}

// watchHeartbeats flags alive nodes whose heartbeat stood still for longer than the
// expiration as blocked, warning once per episode.
func (m *Member) watchHeartbeats() {
	defer m.wg.Done()
	expiration := m.opts.HeartbeatExpiration
	t := time.NewTicker(max(expiration/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		var newlyBlocked []MemberInfo
		m.mu.Lock()
		for name, info := range m.view {
			if name == m.name || info.Role != RoleNode {
				continue
			}
			stale := info.State == StateAlive && now.Sub(info.LastHeartbeat) > expiration
			if stale && !info.Blocked {
				info.Blocked = true
				newlyBlocked = append(newlyBlocked, *info)
			} else if !stale && info.Blocked && info.State != StateAlive {
				info.Blocked = false
			}
		}
		m.forgetLocked(now)
		m.mu.Unlock()
		for _, info := range newlyBlocked {
			m.log.Warn("member blocked: alive but its heartbeat stands still",
				"node", info.Name, "heartbeat_age", now.Sub(info.LastHeartbeat).Round(time.Millisecond), "expiration", expiration)
		}
	}
}

// forgetLocked drops members that have been out for longer than ForgetAfter (and their
// leave records), so that a long-lived member's view does not grow with every process
// that ever passed through. Evictions are kept 24 times longer: they are what stops an
// evicted process that still runs from coming back. m.mu must be held.
func (m *Member) forgetLocked(now time.Time) {
	for name, info := range m.view {
		if name != m.name && info.State.Out() && now.Sub(info.Since) > m.opts.ForgetAfter {
			delete(m.view, name)
			if m.lefts[name].Instance == info.Instance {
				delete(m.lefts, name)
			}
		}
	}
	for name := range m.evictions {
		if now.Sub(m.evictSeen[name]) > 24*m.opts.ForgetAfter {
			delete(m.evictions, name)
			delete(m.evictSeen, name)
		}
	}
}
