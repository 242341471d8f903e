package cluster

import (
	"crypto/ed25519"
	"encoding/json"
	"time"

	"github.com/hashicorp/memberlist"
)

// Application liveness at memberlist's own cost (docs/heartbeat.md).
//
// A node's application heartbeat is a counter its heartbeat loop advances every
// HeartbeatInterval; nothing is sent when it beats. memberlist probes one member per
// probe interval, so every node is probed about once an interval by someone: the node
// answers each probe's ack with its signed liveness (AckPayload) — how many beats so
// far, and how long its heartbeat has stood still. The prober learns from that alone
// whether the application still moves. A member that finds a node blocked (or no longer
// blocked, or evicted yet beating) tells the cluster once: it gossips the node's own
// signed record, and every member that changes its mind on it gossips it on, as
// memberlist spreads its own news. A member's messages per interval stay what
// memberlist's are, however big the cluster; the cluster hears of a block within the
// expiration plus a probe interval or two, and a gossip's spread.
//
// Members of an older Farewell still send a heartbeat straight to every member and
// judge every node by the heartbeats it sends them. A member says it needs none by its
// memberlist delegate protocol range (it understands livenessProtocol; an older one
// understands 0 only): to a peer that does not, a member sends its heartbeat straight,
// as before, and judges it by the heartbeats it sends — so that a cluster can be
// upgraded one member at a time.

// livenessProtocol is the delegate protocol version from which a member learns its
// peers' liveness from probes. Members advertise it as their maximum and keep 0 as
// their current version, which every member understands.
const livenessProtocol = 1

// liveness is a node's signed account of its application heartbeat.
type liveness struct {
	Node     string `json:"n"`
	Instance string `json:"i"`
	// Seq counts the beats so far.
	Seq uint64 `json:"s"`
	// StalledMS is how long the heartbeat has stood still, in milliseconds: 0 while it
	// beats (no beat missed), else the time since the last beat, to 100 ms.
	StalledMS int64  `json:"a"`
	Sig       []byte `json:"g,omitempty"`
}

// newer reports whether r says more than what is known (seq, stalled): later beats,
// or the same beat standing still for longer.
func (r liveness) newer(seq uint64, stalled int64) bool {
	return r.Seq > seq || r.Seq == seq && r.StalledMS > stalled
}

// heartbeatMsg is the older Farewell's heartbeat, sent straight to every member.
type heartbeatMsg struct {
	Node     string `json:"n"`
	Instance string `json:"i"`
	Seq      uint64 `json:"s"`
	Sig      []byte `json:"g,omitempty"`
}

const msgLiveness byte = 'v'

// StartHeartbeat advances the application heartbeat every heartbeat_interval until
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

// StopHeartbeat stops the heartbeat: once it returns no new beat is counted. It waits
// for the loop to end, but not past a legacy send stuck in a stalled network. Calling
// it when stopped does nothing.
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

// beat counts one heartbeat, and sends it straight to the peers of an older Farewell
// that expect it (best effort, UDP). It gives up as soon as stop is closed.
func (m *Member) beat(stop <-chan struct{}) {
	legacy, msg := m.count(time.Now())
	for _, n := range legacy {
		select {
		case <-stop:
			return
		default:
		}
		m.legacySent.Add(1)
		if err := m.ml.SendBestEffort(n, msg); err != nil {
			m.log.Debug("heartbeat not sent", "to", n.Name, "error", err)
		}
	}
}

// count counts one heartbeat at now. It returns the peers of an older Farewell that
// expect it sent straight — those alive or leaving — and the signed message to send
// them (nil when there are none).
func (m *Member) count(now time.Time) ([]*memberlist.Node, []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hbSeq++
	m.lastBeat = now
	if self, ok := m.view[m.name]; ok {
		self.HeartbeatSeq, self.LastHeartbeat = m.hbSeq, now
	}
	if m.legacyN == 0 {
		return nil, nil // nobody to send it to: no walk of the view at every beat
	}
	var legacy []*memberlist.Node
	for name, info := range m.view {
		if name == m.name || !info.legacy || info.State != StateAlive && info.State != StateLeaving {
			continue
		}
		if n, ok := nodeOf(info); ok {
			legacy = append(legacy, n)
		}
	}
	if len(legacy) == 0 {
		return nil, nil
	}
	hb := heartbeatMsg{Node: m.name, Instance: m.instance, Seq: m.hbSeq}
	hb.Sig = sign(m.key, domainHeartbeat, hb)
	return legacy, encode(msgHeartbeat, hb)
}

// stalledQuantum is the grain of a liveness record's StalledMS: records change (and
// are signed anew) at most this often while the heartbeat stands still.
const stalledQuantum = 100 * time.Millisecond

// ownLiveness is this member's liveness record as of now, signed; nil for a member
// that never beat (an observer).
func (m *Member) ownLiveness() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hbSeq == 0 {
		return nil
	}
	var stalled int64
	// Missing one beat is a hiccup; two is standing still.
	if since := time.Since(m.lastBeat); m.hbStop == nil || since > 2*m.opts.HeartbeatInterval {
		stalled = int64(since/stalledQuantum) * stalledQuantum.Milliseconds()
	}
	if m.liveCache != nil && m.liveSeq == m.hbSeq && m.liveStalled == stalled {
		return m.liveCache
	}
	r := liveness{Node: m.name, Instance: m.instance, Seq: m.hbSeq, StalledMS: stalled}
	r.Sig = sign(m.key, domainLiveness, r)
	b, _ := json.Marshal(r)
	m.liveCache, m.liveSeq, m.liveStalled = b, m.hbSeq, stalled
	return b
}

// AckPayload answers every probe with this node's liveness (memberlist.PingDelegate).
func (d *delegate) AckPayload() []byte { return d.m.ownLiveness() }

// NotifyPingComplete takes in the liveness a probed node answered with.
func (d *delegate) NotifyPingComplete(other *memberlist.Node, _ time.Duration, payload []byte) {
	if len(payload) == 0 || len(payload) > maxMessage {
		return
	}
	var r liveness
	if json.Unmarshal(payload, &r) != nil || r.Node != other.Name {
		return
	}
	d.m.onLiveness(r, false)
}

// onLiveness weighs a node's liveness record, from a probe of this member's or relayed
// by a peer. When it changes what this member concludes — blocked or not, evicted yet
// beating — the member gossips the record on.
func (m *Member) onLiveness(r liveness, relayed bool) {
	sig := r.Sig
	r.Sig = nil
	// Check the signature without the lock: it is the costliest thing done here.
	m.mu.Lock()
	info, ok := m.view[r.Node]
	var key ed25519.PublicKey
	if ok && info.Instance == r.Instance && r.Node != m.name {
		key = info.key
	}
	m.mu.Unlock()
	if key == nil || !verify(key, domainLiveness, r, sig) {
		return // not from that process
	}
	r.Sig = sig
	now := time.Now()
	m.mu.Lock()
	if info, ok = m.view[r.Node]; !ok || info.Instance != r.Instance || !info.key.Equal(key) {
		m.mu.Unlock()
		return // replaced meanwhile
	}
	if !r.newer(info.HeartbeatSeq, info.stalledMS) ||
		info.HeartbeatSeq > 0 && r.Seq > info.HeartbeatSeq+maxSeqJump {
		m.mu.Unlock()
		return // old news, or an implausible jump
	}
	info.HeartbeatSeq, info.stalledMS, info.live = r.Seq, r.StalledMS, sig
	beat := now.Add(-time.Duration(r.StalledMS) * time.Millisecond)
	if beat.After(info.LastHeartbeat) {
		info.LastHeartbeat = beat
	}
	var changed, resumed bool
	switch {
	case info.State == StateEvicted:
		// An evicted process that still beats did not fence itself: a zombie the
		// watchdog looks for.
		if r.StalledMS == 0 {
			changed = info.EvictedHeartbeat.IsZero()
			info.EvictedHeartbeat = now
		}
	case info.Role == RoleNode:
		blocked := info.State == StateAlive && time.Duration(r.StalledMS)*time.Millisecond > m.opts.HeartbeatExpiration
		changed, resumed = blocked != info.Blocked, info.Blocked && !blocked
		info.Blocked = blocked
	}
	m.mu.Unlock()
	if !changed {
		return
	}
	switch {
	case resumed:
		m.log.Info("member heartbeat resumed", "node", r.Node)
	case info.State == StateEvicted:
		m.log.Warn("evicted member still beats: it did not fence itself", "node", r.Node)
	default:
		m.log.Warn("member blocked: alive but its heartbeat stands still", "node", r.Node,
			"stalled", time.Duration(r.StalledMS)*time.Millisecond, "expiration", m.opts.HeartbeatExpiration, "relayed", relayed)
	}
	m.queue.QueueBroadcast(&broadcast{name: "live:" + r.Node, msg: encode(msgLiveness, r)})
}

// onHeartbeat takes in a heartbeat sent straight by a member of an older Farewell: it
// judges that member by them.
func (m *Member) onHeartbeat(hb heartbeatMsg) {
	sig := hb.Sig
	hb.Sig = nil
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
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if info, ok = m.view[hb.Node]; !ok || info.Instance != hb.Instance || !info.key.Equal(key) {
		return // replaced meanwhile
	}
	if info.State == StateEvicted {
		info.EvictedHeartbeat = now
		return
	}
	if hb.Seq <= info.HeartbeatSeq || info.HeartbeatSeq > 0 && hb.Seq > info.HeartbeatSeq+maxSeqJump {
		return
	}
	info.HeartbeatSeq, info.LastHeartbeat, info.stalledMS = hb.Seq, now, 0
	if info.Blocked {
		info.Blocked = false
		m.log.Info("member heartbeat resumed", "node", hb.Node)
	}
}

// watchHeartbeats flags as blocked the peers of an older Farewell (judged by the
// heartbeats they send) whose heartbeat stood still for longer than the expiration,
// and forgets members long out. Every other member is judged by its liveness records.
func (m *Member) watchHeartbeats() {
	defer m.wg.Done()
	expiration := m.opts.HeartbeatExpiration
	t := time.NewTicker(max(expiration/4, 10*time.Millisecond))
	defer t.Stop()
	// Forgetting walks the whole view: a sixteenth of ForgetAfter late is soon enough,
	// and the walk is not made every tick in a cluster of thousands.
	var forgot time.Time
	forgetEvery := m.opts.ForgetAfter / 16
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		m.mu.Lock()
		newlyBlocked := m.judgeLegacyLocked(now)
		if now.Sub(forgot) >= forgetEvery {
			m.forgetLocked(now)
			forgot = now
		}
		m.mu.Unlock()
		for _, info := range newlyBlocked {
			m.log.Warn("member blocked: alive but its heartbeat stands still",
				"node", info.Name, "heartbeat_age", now.Sub(info.LastHeartbeat).Round(time.Millisecond), "expiration", expiration)
		}
	}
}

// judgeLegacyLocked flags as blocked, as of now, the alive nodes of an older Farewell
// whose last heartbeat is older than the expiration, and returns those it flagged.
// m.mu must be held.
func (m *Member) judgeLegacyLocked(now time.Time) []MemberInfo {
	if m.legacyN == 0 {
		return nil
	}
	var newlyBlocked []MemberInfo
	for name, info := range m.view {
		if name == m.name || !info.legacy || info.Role != RoleNode {
			continue
		}
		if stale := info.State == StateAlive && now.Sub(info.LastHeartbeat) > m.opts.HeartbeatExpiration; stale && !info.Blocked {
			info.Blocked = true
			newlyBlocked = append(newlyBlocked, *info)
		}
	}
	return newlyBlocked
}

// blockedRecords are the liveness records of the members this one finds blocked or
// evicted yet beating: what a member that joins (or missed the gossip) needs to know.
func (m *Member) blockedRecords() []liveness {
	var out []liveness
	for name, info := range m.view {
		if name == m.name || info.live == nil || !info.Blocked && info.EvictedHeartbeat.IsZero() {
			continue
		}
		out = append(out, liveness{Node: name, Instance: info.Instance, Seq: info.HeartbeatSeq, StalledMS: info.stalledMS, Sig: info.live})
		if len(out) == maxLearned {
			break
		}
	}
	return out
}

// forgetLocked drops members that have been out for longer than ForgetAfter (and their
// leave records), so that a long-lived member's view does not grow with every process
// that ever passed through. Evictions are kept 24 times longer: they are what stops an
// evicted process that still runs from coming back. m.mu must be held.
func (m *Member) forgetLocked(now time.Time) {
	for name, info := range m.view {
		if name != m.name && info.State.Out() && now.Sub(info.Since) > m.opts.ForgetAfter {
			m.dropLocked(name)
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
