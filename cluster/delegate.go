package cluster

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Message kinds, the first byte of every user message.
const (
	msgHeartbeat byte = 'h'
	msgEvict     byte = 'e'
	msgQuery     byte = 'q'
	msgReply     byte = 'r'
	msgLeft      byte = 'l'
	msgState     byte = 's'
)

// meta is what a member publishes in its memberlist node metadata (at most 512 bytes),
// signed by its process key, which it carries.
type meta struct {
	Role     Role   `json:"r"`
	State    State  `json:"s"`
	Instance string `json:"i"`
	// Tags are the member's metadata tags.
	Tags map[string]string `json:"t,omitempty"`
	// Steps counts the steps of its own the member's host runs when it shuts down.
	Steps int `json:"h,omitempty"`
	// Version orders State: it grows with every SetState.
	Version uint64 `json:"v"`
	// Key is the process's public key; Sig signs the rest with its private half.
	Key ed25519.PublicKey `json:"k"`
	Sig []byte            `json:"g,omitempty"`
}

// stateMsg is a member's new state, sent straight to every member, signed by its process.
type stateMsg struct {
	Node     string `json:"n"`
	Instance string `json:"i"`
	State    State  `json:"s"`
	Version  uint64 `json:"v"`
	Sig      []byte `json:"g,omitempty"`
}

// leftMsg is a process's announcement that it leaves, signed by that process; it carries
// its public key, so that members that never saw the process (they joined later) can
// still check it. Such a key binds nothing: should the process itself show up with
// another key in its signed metadata, the leave was forged and the process is alive.
type leftMsg struct {
	Node     string            `json:"n"`
	Instance string            `json:"i"`
	Key      ed25519.PublicKey `json:"k"`
	Sig      []byte            `json:"g,omitempty"`
}

func (l leftMsg) valid() bool {
	sig := l.Sig
	l.Sig = nil
	return verify(l.Key, domainLeft, l, sig)
}

// sharedState is what members exchange in push/pull, so that news missed in gossip
// (or older than a member: one that joins or restarts) still reaches it: which
// processes were evicted, which left, which died.
type sharedState struct {
	Evictions []evictMsg `json:"e,omitempty"`
	Lefts     []leftMsg  `json:"l,omitempty"`
	Deads     []deadMsg  `json:"d,omitempty"`
	// Lives are the liveness records of the members found blocked (or evicted yet
	// beating), each signed by its own process.
	Lives []liveness `json:"v,omitempty"`
}

// deadMsg is a process a member saw die without leaving.
type deadMsg struct {
	Node     string `json:"n"`
	Instance string `json:"i"`
	Role     Role   `json:"r"`
	Addr     string `json:"a"`
}

// evictMsg is an eviction, signed with the orchestrators' eviction key.
type evictMsg struct {
	Node     string `json:"n"`
	Instance string `json:"i"`
	By       string `json:"b"`
	Reason   string `json:"r"`
	At       int64  `json:"t"` // unix milliseconds, as the evicter says
	Sig      []byte `json:"g,omitempty"`
}

type viewQuery struct {
	ID     uint64 `json:"id"`
	From   string `json:"f"`
	Target string `json:"t"`
	// Instance is the process asked about; "" means whatever process has the name.
	Instance string `json:"i,omitempty"`
}

type viewReply struct {
	ID     uint64 `json:"id"`
	From   string `json:"f"`
	Target string `json:"t"`
	State  State  `json:"s"`
}

func encode(kind byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode cluster message: %v", err)) // only our own structs get here
	}
	return append([]byte{kind}, b...)
}

// broadcast is a gossiped message; a newer one with the same name replaces it in the queue.
type broadcast struct {
	name string
	msg  []byte
}

func (b *broadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*broadcast)
	return ok && o.name == b.name
}
func (b *broadcast) Name() string    { return b.name }
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}

// delegate connects memberlist's callbacks to the Member.
type delegate struct{ m *Member }

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
	_ memberlist.AliveDelegate = (*delegate)(nil)
	_ memberlist.PingDelegate  = (*delegate)(nil)
)

func (d *delegate) NodeMeta(limit int) []byte {
	m := d.m
	m.mu.Lock()
	md := signMeta(m.key, meta{Role: m.role, State: m.state, Instance: m.instance, Tags: m.opts.Tags, Steps: m.opts.Steps, Version: m.version,
		Key: m.key.Public().(ed25519.PublicKey)})
	m.mu.Unlock()
	b, _ := json.Marshal(md)
	if len(b) > limit {
		return nil
	}
	return b
}

func (d *delegate) NotifyMsg(b []byte) {
	if len(b) < 2 || len(b) > maxMessage && (b[0] != msgDumpReply || len(b) > maxDump) {
		return
	}
	m := d.m
	body := b[1:]
	switch b[0] {
	case msgHeartbeat:
		var hb heartbeatMsg
		if json.Unmarshal(body, &hb) == nil {
			m.onHeartbeat(hb)
		}
	case msgLiveness:
		var r liveness
		if json.Unmarshal(body, &r) == nil {
			m.onLiveness(r, true)
		}
	case msgEvict:
		var e evictMsg
		if json.Unmarshal(body, &e) == nil {
			m.onEvict(e, true, false)
		}
	case msgState:
		var st stateMsg
		if json.Unmarshal(body, &st) == nil {
			m.onState(st)
		}
	case msgLeft:
		var l leftMsg
		if json.Unmarshal(body, &l) == nil {
			m.onLeft(l, false)
		}
	case msgQuery:
		var q viewQuery
		if json.Unmarshal(body, &q) == nil {
			m.answer(func() { m.answerQuery(q) })
		}
	case msgDumpQuery:
		var q dumpQuery
		if json.Unmarshal(body, &q) == nil {
			m.answer(func() { m.answerDump(q) })
		}
	case msgDumpReply:
		m.onDumpReply(body)
	case msgReply:
		var r viewReply
		if json.Unmarshal(body, &r) == nil {
			m.onReply(r)
		}
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.m.queue.GetBroadcasts(overhead, limit)
}

// LocalState shares the evictions and leaves this member knows, so that members that
// missed the broadcast (or joined later) learn them in push/pull.
func (d *delegate) LocalState(bool) []byte {
	m := d.m
	var st sharedState
	m.mu.Lock()
	for _, e := range m.evictions {
		st.Evictions = append(st.Evictions, e)
	}
	for _, l := range m.lefts {
		st.Lefts = append(st.Lefts, l)
	}
	for name, info := range m.view {
		if info.State == StateDead && name != m.name {
			st.Deads = append(st.Deads, deadMsg{Node: name, Instance: info.Instance, Role: info.Role, Addr: info.Addr})
		}
	}
	st.Lives = m.blockedRecords()
	m.mu.Unlock()
	b, _ := json.Marshal(st)
	return b
}

func (d *delegate) MergeRemoteState(buf []byte, _ bool) {
	var st sharedState
	if len(buf) > maxRemoteState || json.Unmarshal(buf, &st) != nil {
		return
	}
	for _, e := range st.Evictions {
		d.m.onEvict(e, false, true)
	}
	for _, l := range st.Lefts {
		d.m.onLeft(l, true)
	}
	for _, dm := range st.Deads {
		d.m.onDead(dm)
	}
	for i, r := range st.Lives {
		if i == maxLearned {
			break
		}
		d.m.onLiveness(r, true)
	}
}

// onDead records a process a peer saw die, when this member has not heard of it (it
// joined or restarted after): a convergence check or an eviction then knows it.
// memberlist's own failure detection decides about the members it knows.
func (m *Member) onDead(d deadMsg) {
	if d.Node == m.name || d.Node == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, known := m.view[d.Node]; known || !m.mayLearnLocked() {
		return
	}
	if d.Role != RoleObserver {
		d.Role = RoleNode
	}
	m.putLocked(&MemberInfo{Name: d.Node, Addr: d.Addr, Role: d.Role, Instance: d.Instance, State: StateDead, Since: time.Now(), learned: true})
}

// signedMeta reads a member's metadata from raw and reports whether it is signed by
// the key it carries. Every alive message gossiped about a member carries its
// metadata, unchanged but for its state: the last that checked is remembered per
// member, read, so that the same bytes are neither read nor checked again (a signature
// check is the costliest thing done per message, and reading one allocates; a join of
// hundreds at once brings each member each of them a dozen times). The metadata
// returned is shared: not to be changed.
func (m *Member) signedMeta(name string, raw []byte) (meta, bool) {
	m.mu.Lock()
	seen, ok := m.metaSeen[name]
	m.mu.Unlock()
	if ok && bytes.Equal(seen.raw, raw) {
		return seen.md, true
	}
	md := parseMeta(raw)
	if !checkMeta(md) {
		return md, false
	}
	m.mu.Lock()
	if len(m.metaSeen) >= 2*maxLearned {
		clear(m.metaSeen) // bounded: rebuilt as messages come
	}
	m.metaSeen[name] = metaRead{raw: bytes.Clone(raw), md: md}
	m.mu.Unlock()
	return md, true
}

// metaRead is a member's metadata whose signature checked: its bytes, and what they say.
type metaRead struct {
	raw []byte
	md  meta
}

// NotifyAlive refuses alive messages whose metadata its process did not sign, that
// change a process's key (as this member learned it from the process itself, not from
// what peers said of it), or that come from an evicted process: it cannot come back
// under the same instance.
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	m := d.m
	if n.Name == m.name {
		return nil
	}
	md, ok := m.signedMeta(n.Name, n.Meta)
	if !ok {
		return fmt.Errorf("%s: metadata not signed by its process", n.Name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.evictions[n.Name]; ok && e.Instance == md.Instance {
		return fmt.Errorf("%s was evicted by %s", n.Name, e.By)
	}
	if info, ok := m.view[n.Name]; ok && info.Instance == md.Instance && !info.learned && info.key != nil && !info.key.Equal(md.Key) {
		return fmt.Errorf("%s: another key for process %s", n.Name, md.Instance)
	}
	return nil
}

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.m.onNode(n, false) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.m.onNode(n, false) }
func (d *delegate) NotifyLeave(n *memberlist.Node)  { d.m.onNode(n, true) }

func parseMeta(b []byte) meta {
	var md meta
	_ = json.Unmarshal(b, &md)
	if md.Role == "" {
		md.Role = RoleNode
	}
	if md.State == "" {
		md.State = StateAlive
	}
	return md
}

// onNode applies a memberlist event to the view.
func (m *Member) onNode(n *memberlist.Node, gone bool) {
	var md meta
	if n.Name == m.name {
		md = parseMeta(n.Meta)
	} else {
		var ok bool
		if md, ok = m.signedMeta(n.Name, n.Meta); !ok {
			m.log.Warn("ignored member metadata its process did not sign", "node", n.Name)
			return
		}
	}
	now := time.Now()
	state := md.State

	m.mu.Lock()
	if l, ok := m.lefts[n.Name]; ok && l.Instance == md.Instance && !l.Key.Equal(md.Key) {
		// A leave of this process, signed by another key: forged. The process is alive.
		delete(m.lefts, n.Name)
		if info, ok := m.view[n.Name]; ok && info.learned {
			// Known only from that leave: the process starts afresh, with its own key.
			m.dropLocked(n.Name)
		} else if ok && info.State == StateLeft {
			info.State = StateAlive
		}
	}
	if gone {
		// memberlist's Node.State does not say whether a node left or died, so a
		// node counts as left only when it announced it (see Leave).
		state = StateDead
		if m.lefts[n.Name].Instance == md.Instance {
			state = StateLeft
		}
	}
	if n.Name == m.name {
		if _, ok := m.view[m.name]; !ok {
			m.view[m.name] = &MemberInfo{Name: m.name, Addr: nodeAddr(n), Role: m.role, State: m.state,
				Instance: m.instance, Tags: m.opts.Tags, Steps: m.opts.Steps, LastHeartbeat: now, Since: now}
		}
		m.mu.Unlock()
		return
	}
	info, known := m.view[n.Name]
	if e, evicted := m.evictions[n.Name]; evicted && e.Instance == md.Instance {
		// Evicted is final for this instance: later news of it changes nothing.
		m.mu.Unlock()
		return
	}
	if known && info.State == StateLeft && m.lefts[n.Name].Instance == md.Instance {
		// So is left: a late gossip of its earlier state must not bring it back.
		m.mu.Unlock()
		return
	}
	if known && info.Instance == md.Instance && info.key != nil && !info.key.Equal(md.Key) {
		m.mu.Unlock()
		m.log.Warn("ignored metadata that changes a process's key", "node", n.Name, "instance", md.Instance)
		return
	}
	if !known || info.Instance != md.Instance {
		if known && info.Instance != md.Instance {
			// A new process under that name: the old one's records do not apply.
			delete(m.evictions, n.Name)
			delete(m.lefts, n.Name)
		}
		info = &MemberInfo{Name: n.Name, Role: md.Role, Instance: md.Instance, LastHeartbeat: now, Since: now, State: state}
		m.putLocked(info)
	}
	if info.learned {
		m.learned-- // memberlist reports it: no longer known only from peers
	}
	info.key, info.learned = md.Key, false
	m.setLegacyLocked(info, n.DMax < livenessProtocol)
	info.Tags, info.Steps = md.Tags, md.Steps
	info.Addr = nodeAddr(n)
	info.Role = md.Role
	old := info.State
	if !gone && (md.Version < info.version || info.version > 0 && md.Version > info.version+maxVersionJump) {
		// A direct state message already brought a newer state than this metadata (or
		// the jump is implausible).
		state = old
	}
	if !gone && md.Version > info.version && (info.version == 0 || md.Version <= info.version+maxVersionJump) {
		info.version = md.Version
	}
	if old != state {
		info.State, info.Since = state, now
		if state != StateAlive {
			info.Blocked = false
		}
		if old == StateLeft || old == StateDead {
			info.LastHeartbeat = now // back from the dead: give it a fresh heartbeat window
		}
	}
	m.mu.Unlock()

	switch {
	case !known:
		m.log.Info("member joined", "node", n.Name, "addr", info.Addr, "role", md.Role, "state", state)
	case old != state:
		m.log.Info("member state changed", "node", n.Name, "from", old, "to", state)
	}
}

func nodeAddr(n *memberlist.Node) string {
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// onLeft records that a process announced it leaves; it is left from now on (it shuts
// its memberlist down right after, whether or not the leave was heard). The leave must
// be signed by that process: by the key this member knows for it, or, for a process
// this member never saw, by the key the leave carries (learned is set for news from
// push/pull, which may name such processes; a direct message about one is ignored).
func (m *Member) onLeft(l leftMsg, learned bool) {
	if l.Node == m.name || !l.valid() {
		return
	}
	m.mu.Lock()
	if m.lefts[l.Node].Instance == l.Instance {
		m.mu.Unlock()
		return
	}
	info, known := m.view[l.Node]
	switch {
	case known && info.Instance != l.Instance:
		m.mu.Unlock()
		return
	case known && info.key != nil && !info.key.Equal(l.Key):
		m.mu.Unlock()
		m.log.Warn("ignored a leave not signed by the process it names", "node", l.Node)
		return
	case !known && (!learned || !m.mayLearnLocked()):
		m.mu.Unlock()
		return
	}
	m.lefts[l.Node] = l
	var old State
	switch {
	case !known:
		// News of its join had not reached this member yet: it joined and left.
		m.putLocked(&MemberInfo{Name: l.Node, Role: RoleNode, Instance: l.Instance, State: StateLeft, Since: time.Now(), learned: true, key: l.Key})
		old = "unknown"
	case info.State == StateAlive || info.State == StateLeaving || info.State == StateDead:
		old = info.State
		info.State, info.Since, info.Blocked = StateLeft, time.Now(), false
	}
	m.mu.Unlock()
	// Spread it: members the leaver did not know yet (it joined moments ago, or they
	// did) would otherwise see it dead.
	m.queue.QueueBroadcast(&broadcast{name: "left:" + l.Node, msg: encode(msgLeft, l)})
	if old != "" {
		m.log.Info("member state changed", "node", l.Node, "from", old, "to", StateLeft)
	}
}

// mayLearnLocked reports whether there is room for one more member known only from what
// peers said. m.mu must be held.
func (m *Member) mayLearnLocked() bool { return m.learned < maxLearned }

// putLocked sets the view's entry for info.Name, counting the learned ones (a push/pull
// may bring thousands: mayLearnLocked asks for each). m.mu must be held.
func (m *Member) putLocked(info *MemberInfo) {
	m.dropLocked(info.Name)
	m.view[info.Name] = info
	if info.learned {
		m.learned++
	}
	if info.legacy {
		m.legacyN++
	}
}

// dropLocked removes name's entry from the view, counting the learned ones. m.mu must
// be held.
func (m *Member) dropLocked(name string) {
	if info, ok := m.view[name]; ok {
		if info.learned {
			m.learned--
		}
		if info.legacy {
			m.legacyN--
		}
		delete(m.view, name)
	}
}

// setLegacyLocked records whether info, an entry of the view, is an older Farewell's
// member, counting them. m.mu must be held.
func (m *Member) setLegacyLocked(info *MemberInfo, legacy bool) {
	switch {
	case legacy && !info.legacy:
		m.legacyN++
	case !legacy && info.legacy:
		m.legacyN--
	}
	info.legacy = legacy
}

// onState applies a state a member's process sent straight to this one, signed, unless a
// newer one was seen already or the jump is implausible.
func (m *Member) onState(st stateMsg) {
	if st.State != StateAlive && st.State != StateLeaving {
		return
	}
	sig := st.Sig
	st.Sig = nil
	m.mu.Lock()
	info, ok := m.view[st.Node]
	if !ok || info.Instance != st.Instance || st.Version <= info.version || st.Version > info.version+maxVersionJump ||
		(info.State != StateAlive && info.State != StateLeaving) || !verify(info.key, domainState, st, sig) {
		m.mu.Unlock()
		return
	}
	info.version = st.Version
	old := info.State
	if old != st.State {
		info.State, info.Since = st.State, time.Now()
		if st.State != StateAlive {
			info.Blocked = false
		}
	}
	m.mu.Unlock()
	if old != st.State {
		m.log.Info("member state changed", "node", st.Node, "from", old, "to", st.State)
	}
}
