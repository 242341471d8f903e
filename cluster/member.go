package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// State is a member's lifecycle state, as every member sees it.
type State string

const (
	// StateAlive members serve.
	StateAlive State = "alive"
	// StateLeaving members announced that they are going (gracefully-left set).
	StateLeaving State = "leaving"
	// StateLeft members deregistered: their memberlist leave was seen.
	StateLeft State = "left"
	// StateDead members vanished without leaving.
	StateDead State = "dead"
	// StateEvicted members were forced out by a peer.
	StateEvicted State = "evicted"
)

// Out reports whether a member in state s is out of the cluster.
func (s State) Out() bool { return s == StateLeft || s == StateDead || s == StateEvicted }

// Role says what a member is for.
type Role string

const (
	// RoleNode members run services and can be shut down.
	RoleNode Role = "node"
	// RoleObserver members watch, evict and verify; they are never shutdown targets.
	RoleObserver Role = "observer"
)

// Sentinel errors callers test with errors.Is.
var (
	// ErrUnknownNode: no member of that name is in this member's view.
	ErrUnknownNode = errors.New("unknown node")
	// ErrBroadcastTimeout: memberlist did not broadcast an update within its timeout.
	ErrBroadcastTimeout = errors.New("broadcast timed out")
	// ErrShutdown: this member has left or shut down.
	ErrShutdown = errors.New("member is shut down")
	// ErrEvicted: this member was evicted by a peer.
	ErrEvicted = errors.New("member was evicted")
)

// MemberInfo is one member as this member sees it.
type MemberInfo struct {
	Name string `json:"name"`
	// Addr is the member's memberlist host:port.
	Addr  string `json:"addr"`
	Role  Role   `json:"role"`
	State State  `json:"state"`
	// Instance tells apart two processes that used the same name.
	Instance string `json:"instance"`
	// Tags are the member's metadata tags.
	Tags map[string]string `json:"tags,omitempty"`
	// Steps counts the steps of its own its host runs when it shuts down.
	Steps int `json:"steps,omitempty"`
	// HeartbeatSeq and LastHeartbeat are the latest application heartbeat seen and
	// when it arrived (for a member that never sent one: when it joined).
	HeartbeatSeq  uint64    `json:"heartbeat_seq"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// Blocked is set while an alive node's heartbeat stands still for longer than the
	// heartbeat expiration.
	Blocked bool `json:"blocked"`
	// EvictedBy and EvictReason are set for evicted members; EvictedHeartbeat is when
	// an evicted process was last heard heartbeating (it did not fence itself).
	EvictedBy        string    `json:"evicted_by,omitempty"`
	EvictReason      string    `json:"evict_reason,omitempty"`
	EvictedHeartbeat time.Time `json:"evicted_heartbeat,omitzero"`
	// Since is when State last changed.
	Since time.Time `json:"since"`

	version   uint64            // of State, as published by the member
	key       ed25519.PublicKey // of the process, from its signed metadata
	learned   bool              // known only from what peers said, never from memberlist
	stalledMS int64             // of the latest liveness record (with HeartbeatSeq)
	live      []byte            // that record's signature, to relay it
	legacy    bool              // an older Farewell's: it sends and expects heartbeats
}

// HeartbeatAge is how long ago the last heartbeat arrived.
func (i MemberInfo) HeartbeatAge(now time.Time) time.Duration {
	if i.LastHeartbeat.IsZero() {
		return 0
	}
	return now.Sub(i.LastHeartbeat)
}

// Profile picks memberlist's timing defaults.
type Profile string

const (
	// ProfileLocal suits loopback and a single machine (memberlist's local config).
	ProfileLocal Profile = "local"
	// ProfileLAN suits a data centre network (memberlist's LAN config).
	ProfileLAN Profile = "lan"
	// ProfileWAN suits members far apart (memberlist's WAN config).
	ProfileWAN Profile = "wan"
)

// Options configure a Member. A Member reads nothing else: the application maps its
// own configuration to these.
type Options struct {
	// Name of this member; unique in the cluster.
	Name string
	// BindAddr and BindPort are where memberlist listens (UDP and TCP); port 0 picks a
	// free one.
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort are what peers use to reach this member; empty
	// and 0 mean the bind address and the port bound.
	AdvertiseAddr string
	AdvertisePort int
	// SecretKeys, when set, encrypt gossip (16, 24 or 32 bytes each: AES-128/192/256):
	// the first encrypts, every one decrypts, so that keys rotate without anyone leaving
	// (see SetKeys).
	SecretKeys [][]byte
	// EvictSigner signs this member's evictions (orchestrators hold it). With
	// EvictVerifier set, a member without it cannot evict.
	EvictSigner ed25519.PrivateKey
	// EvictVerifier checks every eviction this member hears; unsigned or wrongly signed
	// ones are ignored. nil accepts any eviction: for clusters on loopback only.
	EvictVerifier ed25519.PublicKey
	// Profile is ProfileLAN unless set.
	Profile Profile
	// HeartbeatInterval is how often a node publishes its application heartbeat; 0
	// means a second.
	HeartbeatInterval time.Duration
	// HeartbeatExpiration is how long an alive node's heartbeat may stand still before
	// it is reported blocked; 0 means five seconds.
	HeartbeatExpiration time.Duration
	// Role is RoleNode unless set.
	Role Role
	// Logger receives membership changes and memberlist's own logs; nil means slog.Default().
	Logger *slog.Logger
	// Tune, if set, adjusts the memberlist configuration after the profile is applied
	// (tests use it for faster timings).
	Tune func(*memberlist.Config)
	// UpdateTimeout bounds SetState's wait for the broadcast when its ctx has no
	// deadline; 0 means 5s.
	UpdateTimeout time.Duration
	// OnEvicted, if set, is called (in its own goroutine) when this member learns that
	// it was evicted, after its services were stopped.
	OnEvicted func(by, reason string)
	// Tags are this member's metadata, gossiped and signed with it (at most
	// MaxTagBytes, keys and values together).
	Tags map[string]string
	// Steps counts the steps of its own the member's host runs when it shuts down: a
	// shutdown asks the node for them only when it has some.
	Steps int
	// ForgetAfter is how long a member that is out (left, dead, evicted) stays in the
	// view before it is forgotten; 0 means an hour.
	ForgetAfter time.Duration
	// ReconnectInterval is how often the member tries to join one it sees dead (see
	// reconnect.go): a partition that outlasted memberlist's memory heals by it. 0
	// means twice the probe interval; a negative value never (memberlist alone).
	ReconnectInterval time.Duration
}

// MaxTagBytes bounds a member's tags, keys and values together: they travel in its
// signed metadata, which memberlist caps at 512 bytes.
const MaxTagBytes = 160

// Member is this process's membership in a memberlist cluster: its view of every
// member, its own state, heartbeat, services, and eviction. Safe for concurrent use.
type Member struct {
	name     string
	role     Role
	instance string
	log      *slog.Logger
	opts     Options

	ml        *memberlist.Memberlist
	transport *FaultTransport
	// advertising serialises memberlist's UpdateNode, which reads this member's own
	// entry unlocked while another call writes it (the race detector saw two state
	// changes close together collide); advertised is the state version the last call
	// put in the metadata (guarded by advertising).
	advertising sync.Mutex
	advertised  uint64
	queue       *memberlist.TransmitLimitedQueue
	services    Services

	mu          sync.Mutex
	view        map[string]*MemberInfo
	learned     int                  // entries of view known only from what peers said (putLocked, dropLocked keep it)
	legacyN     int                  // entries of view of an older Farewell's members (putLocked, dropLocked, setLegacyLocked keep it)
	key         ed25519.PrivateKey   // this process's: signs its metadata, state, leave, heartbeats
	keyring     *memberlist.Keyring  // the gossip keys; nil without encryption
	evictions   map[string]evictMsg  // by node name
	evictSeen   map[string]time.Time // when each eviction arrived here
	lefts       map[string]leftMsg   // by node name: the signed leave of a process
	metaSeen    map[string]metaRead  // by node name: the last metadata whose signature checked
	answering   chan struct{}        // bounds the queries answered at once
	inflight    map[string]bool      // peers with a view query of this member outstanding
	state       State                // own state as published
	version     uint64               // of state; peers keep the highest they saw
	published   bool                 // own state reached the cluster
	hbSeq       uint64
	lastBeat    time.Time
	hbStop      chan struct{} // non-nil while the heartbeat runs
	hbDone      chan struct{}
	legacySent  atomic.Int64 // heartbeats sent straight to members of an older Farewell
	liveCache   []byte       // this member's liveness record, signed, for liveSeq and liveStalled
	liveSeq     uint64
	liveStalled int64
	left        bool // Leave or Shutdown ran
	departing   bool // Leave or Shutdown began: no state change or heartbeat from here on
	leaveErr    error
	evicted     *evictMsg
	queries     map[uint64]chan viewReply
	dumps       map[uint64]chan dumpReply
	nextQueryID uint64      // see newQueryIDLocked
	joined      []string    // the addresses Join reached the cluster through
	rejoining   atomic.Bool // a reconnect attempt is under way

	leaveMu sync.Mutex // serializes Leave, Shutdown and self-fencing
	stop    chan struct{}
	wg      sync.WaitGroup
}

// New creates a member listening on Cluster.Bind (port 0 picks a free port). It is a
// cluster of one until Join.
func New(opts Options) (*Member, error) {
	if opts.Role == "" {
		opts.Role = RoleNode
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.UpdateTimeout == 0 {
		opts.UpdateTimeout = 5 * time.Second
	}
	if opts.ForgetAfter == 0 {
		opts.ForgetAfter = time.Hour
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = time.Second
	}
	if opts.HeartbeatExpiration <= 0 {
		opts.HeartbeatExpiration = 5 * time.Second
	}
	if opts.Name == "" {
		return nil, errors.New("cluster member needs a name")
	}
	size := 0
	for k, v := range opts.Tags {
		if k == "" {
			return nil, errors.New("cluster member tags: an empty key")
		}
		size += len(k) + len(v)
	}
	if size > MaxTagBytes {
		return nil, fmt.Errorf("cluster member tags take %d bytes; at most %d fit in its metadata", size, MaxTagBytes)
	}
	if opts.EvictSigner != nil && opts.EvictVerifier == nil {
		opts.EvictVerifier = opts.EvictSigner.Public().(ed25519.PublicKey)
	}
	m := &Member{
		name:      opts.Name,
		role:      opts.Role,
		instance:  newInstanceID(),
		opts:      opts,
		log:       opts.Logger.With("member", opts.Name),
		view:      map[string]*MemberInfo{},
		evictions: map[string]evictMsg{},
		lefts:     map[string]leftMsg{},
		metaSeen:  map[string]metaRead{},
		evictSeen: map[string]time.Time{},
		key:       newProcessKey(),
		answering: make(chan struct{}, maxAnswering),
		inflight:  map[string]bool{},
		state:     StateAlive,
		queries:   map[uint64]chan viewReply{},
		dumps:     map[uint64]chan dumpReply{},
		stop:      make(chan struct{}),
	}

	mlc, err := m.memberlistConfig()
	if err != nil {
		return nil, err
	}
	ml, err := memberlist.Create(mlc)
	if err != nil {
		m.transport.Shutdown()
		return nil, fmt.Errorf("start cluster member %s on %s: %w", opts.Name, m.bindAddr(), err)
	}
	m.ml = ml
	m.queue = &memberlist.TransmitLimitedQueue{NumNodes: ml.NumMembers, RetransmitMult: mlc.RetransmitMult}
	m.published = true

	m.wg.Add(1)
	go m.watchHeartbeats()
	if opts.ReconnectInterval >= 0 {
		m.wg.Add(1)
		go m.reconnectLoop(m.reconnectEvery(mlc))
	}
	return m, nil
}

func (m *Member) memberlistConfig() (*memberlist.Config, error) {
	o := m.opts
	var mlc *memberlist.Config
	switch o.Profile {
	case ProfileLAN, "":
		mlc = memberlist.DefaultLANConfig()
	case ProfileWAN:
		mlc = memberlist.DefaultWANConfig()
	case ProfileLocal:
		mlc = memberlist.DefaultLocalConfig()
	default:
		return nil, fmt.Errorf("cluster profile %q is not one of local, lan, wan", o.Profile)
	}
	mlc.Name = o.Name
	// The local profile retransmits each gossip only 2×log10(n+1) times; in small
	// clusters that leaves a member in four without news of a join until the next
	// push/pull (15 s). Four times, as the lan profile does, makes misses rare.
	mlc.RetransmitMult = max(mlc.RetransmitMult, 4)
	// A process that restarts under its name on another address (a rescheduled pod)
	// takes the name over once the old process is seen dead or left: memberlist's
	// default (0) would refuse it for good.
	mlc.DeadNodeReclaimTime = time.Second
	// Farewell's messages are a few hundred bytes: LZW costs more CPU (and garbage)
	// than the bytes it saves, most of all for the heartbeats every member sends every
	// other every interval. Measured with BenchmarkDrain's hundred nodes in one process.
	mlc.EnableCompression = false
	// Application liveness rides on probes from this version on (heartbeat.go): say so,
	// without leaving the version every member understands.
	mlc.DelegateProtocolMax = max(mlc.DelegateProtocolMax, livenessProtocol)
	mlc.BindAddr, mlc.BindPort = o.BindAddr, o.BindPort
	mlc.AdvertiseAddr, mlc.AdvertisePort = o.AdvertiseAddr, o.AdvertisePort
	if len(o.SecretKeys) > 0 {
		kr, err := keyring(o.SecretKeys)
		if err != nil {
			return nil, err
		}
		mlc.Keyring, m.keyring = kr, kr
	}
	mlc.LogOutput = newMemberlistLogWriter(m.log.With("component", "memberlist"))
	mlc.Logger = nil

	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{o.BindAddr},
		BindPort:  o.BindPort,
		Logger:    newMemberlistLogger(m.log.With("component", "memberlist")),
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s for cluster member %s: %w", m.bindAddr(), o.Name, err)
	}
	m.transport = NewFaultTransport(nt)
	mlc.Transport = m.transport
	if mlc.AdvertisePort == 0 {
		mlc.AdvertisePort = nt.GetAutoBindPort()
	}

	d := &delegate{m: m}
	mlc.Delegate = d
	mlc.Events = d
	mlc.Alive = d
	mlc.Ping = d
	if m.opts.Tune != nil {
		m.opts.Tune(mlc)
	}
	return mlc, nil
}

func (m *Member) bindAddr() string {
	return net.JoinHostPort(m.opts.BindAddr, strconv.Itoa(m.opts.BindPort))
}

// SplitHostPort splits a host:port address, with a port between 0 and 65535.
func SplitHostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", s)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q has a bad port", s)
	}
	return host, port, nil
}

func newInstanceID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Join contacts the given members (host:port) and merges their view. It fails when none
// could be reached.
func (m *Member) Join(ctx context.Context, addrs []string) error {
	if len(addrs) == 0 {
		return nil
	}
	type result struct {
		n   int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		n, err := m.ml.Join(addrs)
		ch <- result{n, err}
	}()
	select {
	case r := <-ch:
		if r.n > 0 {
			m.mu.Lock()
			m.joined = slices.Clone(addrs)
			m.mu.Unlock()
		}
		if r.n == 0 {
			hint := ""
			if len(m.opts.SecretKeys) > 0 {
				hint = " (is the gossip key the same on every member?)"
			}
			return fmt.Errorf("join cluster through %v: %w%s", addrs, r.err, hint)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("join cluster through %v: %w", addrs, ctx.Err())
	}
}

// Name is this member's name.
func (m *Member) Name() string { return m.name }

// Role is this member's role.
func (m *Member) Role() Role { return m.role }

// Instance identifies this process among processes that used the same name.
func (m *Member) Instance() string { return m.instance }

// Addr is the host:port peers reach this member on.
func (m *Member) Addr() string {
	n := m.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Transport is the fault-injecting transport under this member.
func (m *Member) Transport() *FaultTransport { return m.transport }

// Services is this member's service registry.
func (m *Member) Services() *Services { return &m.services }

// Members returns every member this member knows of, itself included, sorted by name.
func (m *Member) Members() []MemberInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]MemberInfo, 0, len(m.view))
	for _, i := range m.view {
		out = append(out, *i)
	}
	slices.SortFunc(out, func(a, b MemberInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Member returns one member as this member sees it.
func (m *Member) Member(name string) (MemberInfo, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.view[name]
	if !ok {
		return MemberInfo{}, false
	}
	return *i, true
}

// State is this member's own state.
func (m *Member) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.evicted != nil {
		return StateEvicted
	}
	return m.state
}

// SetState publishes this member's state (alive or leaving) and returns once another
// member has been seen to receive it. The state goes into memberlist metadata (for
// members that join later) and straight to every live member over TCP (gossip alone
// misses members now and then in small clusters until the next push/pull). It fails
// with ErrBroadcastTimeout when no member confirms before ctx's deadline (or
// UpdateTimeout): it can fail, it never hangs. (memberlist's own UpdateNode counts a
// broadcast as done once handed to the transport, which a hung network stack accepts
// and never sends; so delivery is confirmed by asking peers.) Setting the state already
// published again is a no-op. Setting leaving first switches on an armed fault.
func (m *Member) SetState(ctx context.Context, s State) error {
	if s != StateAlive && s != StateLeaving {
		return fmt.Errorf("set state %s: only alive and leaving can be set; leave with Leave", s)
	}
	m.mu.Lock()
	switch {
	case m.evicted != nil:
		m.mu.Unlock()
		return fmt.Errorf("set state %s: %w by %s", s, ErrEvicted, m.evicted.By)
	case m.left || m.departing:
		m.mu.Unlock()
		return fmt.Errorf("set state %s: %w", s, ErrShutdown)
	case m.state == s && m.published:
		m.mu.Unlock()
		return nil
	}
	m.version++
	m.state, m.published = s, false
	m.setSelfLocked(s)
	st := stateMsg{Node: m.name, Instance: m.instance, State: s, Version: m.version}
	st.Sig = sign(m.key, domainState, st)
	msg := encode(msgState, st)
	m.mu.Unlock()

	if s == StateLeaving {
		if f, ok := m.transport.Trigger(); ok {
			m.log.Warn("injected fault switched on as shutdown begins", "fault", f.String())
		}
	}

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.opts.UpdateTimeout)
		defer cancel()
	}
	start := time.Now()
	go func() {
		if err := m.updateNode(ctx); err != nil {
			m.log.Debug("metadata update not broadcast", "state", s, "error", err)
		}
	}()
	m.sendToAll(msg)
	if err := m.confirmSeen(ctx, m.name, m.instance, s); err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("set state %s: %w", s, err)
		}
		return fmt.Errorf("set state %s: %w after %s: no member confirmed it (%v)", s, ErrBroadcastTimeout, time.Since(start).Round(time.Millisecond), err)
	}
	m.mu.Lock()
	if m.state == s {
		m.published = true
	}
	m.mu.Unlock()
	m.log.Info("state published", "state", s, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// sendToAll sends msg to every other live member over TCP, in the background; the
// returned channel is closed when every send returned.
func (m *Member) sendToAll(msg []byte) <-chan struct{} {
	var wg sync.WaitGroup
	for _, n := range m.liveNodes(nil) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.ml.SendReliable(n, msg); err != nil {
				m.log.Debug("message not sent", "to", n.Name, "kind", string(msg[0]), "error", err)
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// updateNode re-advertises this member's metadata, bounded by ctx.
func (m *Member) updateNode(ctx context.Context) error {
	dl, _ := ctx.Deadline()
	timeout := time.Until(dl)
	if timeout <= 0 {
		return context.DeadlineExceeded
	}
	done := make(chan error, 1)
	go func() {
		// In turn, each whenever the last is done (the caller stops waiting at ctx's
		// end): each advertises the metadata as of when it runs, so the last state
		// set always goes out; one that finds it out already (a later call ran
		// first) has nothing left to do, and a burst costs one broadcast wait.
		m.advertising.Lock()
		defer m.advertising.Unlock()
		m.mu.Lock()
		v := m.version
		m.mu.Unlock()
		if v == m.advertised {
			done <- nil
			return
		}
		m.advertised = v // in the metadata from here, whether or not the broadcast is confirmed
		done <- m.ml.UpdateNode(timeout)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// setSelfLocked updates this member's own entry in its view. m.mu must be held.
func (m *Member) setSelfLocked(s State) {
	if self, ok := m.view[m.name]; ok && self.State != s {
		self.State, self.Since = s, time.Now()
	}
}

// Left reports whether Leave or Shutdown ran, and the error Leave returned.
func (m *Member) Left() (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.left, m.leaveErr
}

// Leave deregisters this member: it stops the heartbeat, announces that it leaves,
// runs memberlist's Leave, and waits up to timeout until another member confirms that it
// sees this one left. Then it shuts memberlist down whatever happened, so the member is
// out either way: peers see it left, or dead if the leave was not heard. Calling it
// again returns the first call's error.
func (m *Member) Leave(timeout time.Duration) error {
	m.leaveMu.Lock()
	defer m.leaveMu.Unlock()
	m.mu.Lock()
	if m.left {
		err := m.leaveErr
		m.mu.Unlock()
		return err
	}
	m.departing = true
	m.mu.Unlock()

	start := time.Now()
	m.StopHeartbeat()
	ctx, cancel := context.WithTimeout(context.Background(), max(timeout-time.Since(start), 0))
	defer cancel()
	announced := m.announceLeft()
	var err error
	mlErr := make(chan error, 1)
	go func() { mlErr <- m.ml.Leave(max(time.Until(start.Add(timeout)), time.Millisecond)) }()
	if cerr := m.confirmSeen(ctx, m.name, m.instance, StateLeft); cerr != nil {
		err = fmt.Errorf("leave: %w after %s: no member confirmed it (%v)", ErrBroadcastTimeout, timeout.Round(time.Millisecond), cerr)
		m.log.Warn("leave not confirmed by any member; shutting down anyway", "error", err)
	}
	// Let the announcements to the other members finish before the transport closes,
	// or they see this member dead instead of left.
	for _, ch := range []<-chan struct{}{announced, chanOf(mlErr)} {
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
	m.shutdownLocked(StateLeft, err)
	return err
}

// chanOf turns a one-shot error channel into a done channel.
func chanOf(errs <-chan error) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		<-errs
		close(done)
	}()
	return done
}

// announceLeft tells every live member, over TCP and by gossip, that this process is
// leaving, so they record it left rather than dead. Sends run in the background (a
// stalled network must not hold Leave past its timeout); the channel is closed when
// all of them returned.
func (m *Member) announceLeft() <-chan struct{} {
	l := leftMsg{Node: m.name, Instance: m.instance, Key: m.key.Public().(ed25519.PublicKey)}
	l.Sig = sign(m.key, domainLeft, l)
	msg := encode(msgLeft, l)
	m.queue.QueueBroadcast(&broadcast{name: "left:" + m.name, msg: msg})
	return m.sendToAll(msg)
}

// Shutdown stops this member without a leave: peers find it dead by probing. It is
// what a crash looks like, and the last resort of a forced termination.
func (m *Member) Shutdown() {
	m.leaveMu.Lock()
	defer m.leaveMu.Unlock()
	m.mu.Lock()
	left := m.left
	m.departing = true
	m.mu.Unlock()
	if left {
		return
	}
	m.StopHeartbeat()
	m.shutdownLocked(StateDead, ErrShutdownWithoutLeave)
}

// ErrShutdownWithoutLeave is what Left reports after Shutdown: the member is out of
// memberlist, but peers were not told; they find it dead.
var ErrShutdownWithoutLeave = errors.New("shut down without a leave: peers see it dead")

// shutdownLocked shuts memberlist down and stops background work. m.leaveMu is held.
func (m *Member) shutdownLocked(s State, leaveErr error) {
	m.StopHeartbeat() // again: nothing may restart it once memberlist is down
	if err := m.ml.Shutdown(); err != nil {
		m.log.Warn("memberlist shutdown", "error", err)
	}
	m.mu.Lock()
	m.left, m.leaveErr = true, leaveErr
	if m.evicted == nil {
		m.setSelfLocked(s)
	}
	m.mu.Unlock()
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.wg.Wait()
	m.log.Info("left the cluster", "as", s)
}

// liveNodes returns memberlist nodes, built from this member's view, for the other
// alive or leaving members that keep (nil keeps all). memberlist's own Node values are
// shared with its goroutines and must not be read outside its callbacks.
func (m *Member) liveNodes(keep func(name string) bool) []*memberlist.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*memberlist.Node
	for name, info := range m.view {
		if name == m.name || (info.State != StateAlive && info.State != StateLeaving) || (keep != nil && !keep(name)) {
			continue
		}
		host, port, err := SplitHostPort(info.Addr)
		if err != nil {
			continue
		}
		out = append(out, &memberlist.Node{Name: name, Addr: net.ParseIP(host), Port: uint16(port)})
	}
	return out
}

// nodeOf builds a memberlist node from a member's entry in the view.
func nodeOf(info *MemberInfo) (*memberlist.Node, bool) {
	host, port, err := SplitHostPort(info.Addr)
	if err != nil {
		return nil, false
	}
	return &memberlist.Node{Name: info.Name, Addr: net.ParseIP(host), Port: uint16(port)}, true
}

// nodeFor builds a memberlist node for one member from this member's view, whatever
// its state (a member that left may still be waiting for an answer).
func (m *Member) nodeFor(name string) (*memberlist.Node, bool) {
	m.mu.Lock()
	info, ok := m.view[name]
	addr := ""
	if ok {
		addr = info.Addr
	}
	m.mu.Unlock()
	host, port, err := SplitHostPort(addr)
	if !ok || err != nil {
		return nil, false
	}
	return &memberlist.Node{Name: name, Addr: net.ParseIP(host), Port: uint16(port)}, true
}

// newQueryIDLocked is the ID of a new query of this member's — a view query or a view
// dump: both kinds share one count, so that a late answer to one is never taken for an
// answer to another. m.mu must be held.
func (m *Member) newQueryIDLocked() uint64 {
	m.nextQueryID++
	return m.nextQueryID
}

// Departed is closed once this member's memberlist shut down: after Leave, Shutdown,
// a termination, or the leave that ends self-fencing.
func (m *Member) Departed() <-chan struct{} { return m.stop }

// Close shuts the member down (without a leave) and releases its port.
func (m *Member) Close() { m.Shutdown() }
