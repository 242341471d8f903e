package cluster

import (
	"context"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
	"time"
)

// Options a member cannot run with are refused, each by a message that names what is
// wrong; what fits exactly is accepted.
func TestNewRefusesBadOptions(t *testing.T) {
	tags := func(bytes int) map[string]string { return map[string]string{"k": strings.Repeat("v", bytes-1)} }
	for _, c := range []struct {
		name string
		set  func(*Options)
		want string // "" for accepted
	}{
		{"no name", func(o *Options) { o.Name = "" }, "needs a name"},
		{"an empty tag key", func(o *Options) { o.Tags = map[string]string{"": "v"} }, "an empty key"},
		{"tags one byte too many", func(o *Options) { o.Tags = tags(MaxTagBytes + 1) }, "take 161 bytes; at most 160"},
		{"tags that fit exactly", func(o *Options) { o.Tags = tags(MaxTagBytes) }, ""},
		{"an unknown profile", func(o *Options) { o.Profile = "moon" }, `profile "moon" is not one of local, lan, wan`},
		{"a gossip key of 17 bytes", func(o *Options) { o.SecretKeys = [][]byte{make([]byte, 16), make([]byte, 17)} }, "gossip key 2 is 17 bytes"},
		{"keys of 16, 24 and 32 bytes", func(o *Options) {
			o.SecretKeys = [][]byte{make([]byte, 16), make([]byte, 24), make([]byte, 32)}
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := Options{Name: "n", BindAddr: "127.0.0.1", Profile: ProfileLocal, Logger: testLogger(t), ReconnectInterval: -1}
			c.set(&o)
			m, err := New(o)
			if m != nil {
				t.Cleanup(m.Close)
			}
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("accepted; want an error saying %q", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

// What an option left unset (or negative) means is what Options says.
func TestOptionsDefaults(t *testing.T) {
	signer := newProcessKey()
	m, err := New(Options{Name: "n", BindAddr: "127.0.0.1", Profile: ProfileLocal, Logger: testLogger(t),
		HeartbeatInterval: -time.Second, HeartbeatExpiration: -time.Second, EvictSigner: signer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	o := m.opts
	for _, c := range []struct {
		what      string
		got, want time.Duration
	}{
		{"update timeout", o.UpdateTimeout, 5 * time.Second},
		{"forget after", o.ForgetAfter, time.Hour},
		{"heartbeat interval", o.HeartbeatInterval, time.Second},
		{"heartbeat expiration", o.HeartbeatExpiration, 5 * time.Second},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s, want %s", c.what, c.got, c.want)
		}
	}
	if m.Role() != RoleNode {
		t.Errorf("role %q, want %q", m.Role(), RoleNode)
	}
	if !o.EvictVerifier.Equal(signer.Public().(ed25519.PublicKey)) {
		t.Error("a member that signs evictions does not check them with its own key")
	}

	zero, err := New(Options{Name: "z", BindAddr: "127.0.0.1", Profile: ProfileLocal, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(zero.Close)
	if zero.opts.HeartbeatInterval != time.Second || zero.opts.HeartbeatExpiration != 5*time.Second {
		t.Errorf("zero heartbeat options became %s and %s, want 1s and 5s", zero.opts.HeartbeatInterval, zero.opts.HeartbeatExpiration)
	}
	if zero.opts.EvictVerifier != nil {
		t.Error("a member without an eviction key got a verifier: it would refuse every eviction")
	}
	set, err := New(Options{Name: "s", BindAddr: "127.0.0.1", Profile: ProfileLocal, Logger: testLogger(t),
		UpdateTimeout: time.Minute, ForgetAfter: time.Minute, HeartbeatInterval: time.Minute, HeartbeatExpiration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	if o := set.opts; o.UpdateTimeout != time.Minute || o.ForgetAfter != time.Minute || o.HeartbeatInterval != time.Minute || o.HeartbeatExpiration != time.Minute {
		t.Errorf("options set were changed: %+v", o)
	}
}

func TestSplitHostPort(t *testing.T) {
	for _, c := range []struct {
		in   string
		host string
		port int
		bad  string
	}{
		{in: "127.0.0.1:0", host: "127.0.0.1"},
		{in: "127.0.0.1:65535", host: "127.0.0.1", port: 65535},
		{in: "[::1]:7946", host: "::1", port: 7946},
		{in: "127.0.0.1:65536", bad: "has a bad port"},
		{in: "127.0.0.1:-1", bad: "has a bad port"},
		{in: "127.0.0.1:x", bad: "has a bad port"},
		{in: "127.0.0.1", bad: "is not host:port"},
	} {
		host, port, err := SplitHostPort(c.in)
		switch {
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("%q: error %v, want one saying %q", c.in, err, c.bad)
		case c.bad == "" && (err != nil || host != c.host || port != c.port):
			t.Errorf("%q: %q %d %v, want %q %d", c.in, host, port, err, c.host, c.port)
		}
	}
}

// A member's own state: what it may set, and what it reports once it left.
func TestSetStateRules(t *testing.T) {
	m := newTestMember(t, "solo")
	ctx := t.Context()
	for _, s := range []State{StateLeft, StateDead, StateEvicted, ""} {
		if err := m.SetState(ctx, s); err == nil || !strings.Contains(err.Error(), "only alive and leaving") {
			t.Errorf("SetState(%q): %v, want a refusal", s, err)
		}
	}
	// Alive is what a new member published already: nothing to send, nothing to wait for.
	if err := m.SetState(ctx, StateAlive); err != nil {
		t.Errorf("SetState(alive) on a new member: %v", err)
	}
	m.mu.Lock()
	v := m.version
	m.mu.Unlock()
	if v != 0 {
		t.Errorf("publishing the state already published moved the version to %d", v)
	}
	// A cluster of one has nobody left to tell: a new state is published at once, and
	// its version moves on.
	if err := m.SetState(ctx, StateLeaving); err != nil {
		t.Errorf("SetState(leaving) alone: %v", err)
	}
	m.mu.Lock()
	v, published := m.version, m.published
	m.mu.Unlock()
	if m.State() != StateLeaving || v != 1 || !published {
		t.Errorf("after SetState(leaving): state %s, version %d, published %v", m.State(), v, published)
	}
	if self, _ := m.Member("solo"); self.State != StateLeaving {
		t.Errorf("own entry %s after SetState(leaving)", self.State)
	}
	m.Shutdown()
	if err := m.SetState(ctx, StateAlive); err == nil || !strings.Contains(err.Error(), ErrShutdown.Error()) {
		t.Errorf("SetState after Shutdown: %v, want %v", err, ErrShutdown)
	}
	if left, err := m.Left(); !left || err != ErrShutdownWithoutLeave {
		t.Errorf("Left() = %v, %v after Shutdown", left, err)
	}
	if self, _ := m.Member("solo"); self.State != StateDead {
		t.Errorf("own entry %s after Shutdown, want dead", self.State)
	}
}

// Members lists every member by name, itself included.
func TestMembersAreSortedByName(t *testing.T) {
	members := newTestCluster(t, 3)
	// Joined out of order: names sort apart from join order.
	late := newTestMember(t, "a-late")
	if err := late.Join(t.Context(), []string{members[2].Addr()}); err != nil {
		t.Fatal(err)
	}
	waitAll(t, []*Member{late}, "a-late sees all four", func(m *Member) bool { return len(m.Members()) == 4 })
	var names []string
	for _, info := range late.Members() {
		names = append(names, info.Name)
	}
	if got := strings.Join(names, " "); got != "a-late node-1 node-2 node-3" {
		t.Errorf("members listed as %s", got)
	}
	if age := (MemberInfo{}).HeartbeatAge(time.Now()); age != 0 {
		t.Errorf("a member never heard from has a heartbeat age of %s, want 0", age)
	}
}

// Join says when no address answered, and what to check when gossip is encrypted.
func TestJoinFailuresSayWhy(t *testing.T) {
	m := newTestMember(t, "j", withKey(make([]byte, 32)))
	if err := m.Join(t.Context(), nil); err != nil {
		t.Errorf("Join with no address: %v, want nothing done", err)
	}
	plain := newTestMember(t, "plain")
	dead := newTestMember(t, "dead")
	addr := dead.Addr()
	dead.Close()
	ctx, cancel := context.WithTimeout(t.Context(), opDeadline)
	defer cancel()
	err := m.Join(ctx, []string{addr})
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "is the gossip key the same") {
		t.Errorf("Join through a closed address: %v", err)
	}
	if err := plain.Join(ctx, []string{addr}); err == nil || strings.Contains(err.Error(), "gossip key") {
		t.Errorf("Join without encryption through a closed address: %v (no key to check)", err)
	}
}

// Gossip keys change only on a member that encrypts, and only to a valid set.
func TestSetKeysRefusals(t *testing.T) {
	plain := newTestMember(t, "plain")
	if err := plain.SetKeys([][]byte{make([]byte, 32)}); err == nil || !strings.Contains(err.Error(), "started without gossip encryption") {
		t.Errorf("SetKeys on a member without encryption: %v", err)
	}
	enc := newTestMember(t, "enc", withKey(gossipKey(1)))
	if err := enc.SetKeys(nil); err == nil || !strings.Contains(err.Error(), "none given") {
		t.Errorf("SetKeys with no key: %v", err)
	}
	if err := enc.SetKeys([][]byte{gossipKey(2), make([]byte, 5)}); err == nil || !strings.Contains(err.Error(), "gossip key 2 is 5 bytes") {
		t.Errorf("SetKeys with a bad key: %v", err)
	}
	if keys := enc.keyring.GetKeys(); len(keys) != 1 || string(keys[0]) != string(gossipKey(1)) {
		t.Errorf("a refused change changed the keys: %d keys", len(keys))
	}
	if err := enc.SetKeys([][]byte{gossipKey(2), gossipKey(1)}); err != nil {
		t.Fatal(err)
	}
	if keys := enc.keyring.GetKeys(); len(keys) != 2 || string(keys[0]) != string(gossipKey(2)) {
		t.Errorf("after [new, old]: %d keys, the first new %v", len(keys), len(keys) > 0 && string(keys[0]) == string(gossipKey(2)))
	}
}

// A member may be given no logger (it then logs to slog's default), and one that
// advertises an address without a port advertises the port it bound.
func TestNoLoggerAndAnAdvertisedAddressWithoutAPort(t *testing.T) {
	m, err := New(Options{Name: "n", BindAddr: "127.0.0.1", AdvertiseAddr: "127.0.0.1", Profile: ProfileLocal, ReconnectInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	if _, port, err := SplitHostPort(m.Addr()); err != nil || port == 0 {
		t.Errorf("advertises %s (%v), want the port it bound", m.Addr(), err)
	}
	peer := newTestMember(t, "peer")
	if err := peer.Join(t.Context(), []string{m.Addr()}); err != nil {
		t.Errorf("joining it at the address it advertises: %v", err)
	}
}

// The addresses a member reached the cluster through are what it tries when it sees
// nobody alive; a join that reached nobody records none.
func TestJoinRecordsOnlyAddressesThatWorked(t *testing.T) {
	seed := newTestMember(t, "seed")
	closed := newTestMember(t, "closed")
	closedAddr := closed.Addr()
	closed.Close()
	m := newTestMember(t, "m")
	joined := func() []string { m.mu.Lock(); defer m.mu.Unlock(); return slices.Clone(m.joined) }
	if err := m.Join(t.Context(), []string{closedAddr}); err == nil {
		t.Fatal("joined through a closed address")
	}
	if got := joined(); len(got) != 0 {
		t.Errorf("a join that reached nobody recorded %v", got)
	}
	if err := m.Join(t.Context(), []string{seed.Addr()}); err != nil {
		t.Fatal(err)
	}
	if got := joined(); len(got) != 1 || got[0] != seed.Addr() {
		t.Errorf("a join through %s recorded %v", seed.Addr(), got)
	}
}

// Messages for every other member go to those alive or leaving, never to one out.
func TestLiveNodesAreAliveOrLeaving(t *testing.T) {
	w, d := newWitness(t)
	procs := joinProcesses(t, d, nil, "alive", "leaving", "dead", "left")
	w.onState(procs["leaving"].state(StateLeaving, 2))
	d.NotifyLeave(procs["dead"].node(t, StateAlive, 1))
	w.onLeft(procs["left"].left(), false)
	if got := nodeNames(w.liveNodes(nil)); got != "alive leaving" {
		t.Errorf("live nodes: %s", got)
	}
	if kept := w.liveNodes(func(name string) bool { return name == "leaving" }); len(kept) != 1 || kept[0].Name != "leaving" || kept[0].Port != 7002 {
		t.Errorf("live nodes kept by name: %+v", kept)
	}
}

// A state set before a member joined reaches it in the metadata the member advertises.
func TestANewcomerLearnsAStateFromMetadata(t *testing.T) {
	members := newTestCluster(t, 2)
	ctx, cancel := context.WithTimeout(t.Context(), opDeadline)
	defer cancel()
	if err := members[0].SetState(ctx, StateLeaving); err != nil {
		t.Fatal(err)
	}
	late := newTestMember(t, "late")
	if err := late.Join(ctx, []string{members[1].Addr()}); err != nil {
		t.Fatal(err)
	}
	waitAll(t, []*Member{late}, "the newcomer to see node-1 leaving", func(m *Member) bool { return stateOf(m, "node-1") == StateLeaving })
}

// The smallest expiration a member may be given still runs: what watches older members'
// heartbeats looks at least every 10 ms, never every 0.
func TestTheSmallestExpiration(t *testing.T) {
	m, err := New(Options{Name: "n", BindAddr: "127.0.0.1", Profile: ProfileLocal, Logger: testLogger(t), HeartbeatExpiration: time.Nanosecond, ReconnectInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
}

// rotate turns either way, by any number of places.
func TestRotate(t *testing.T) {
	s := []string{"a", "b", "c"}
	for k, want := range map[int]string{0: "abc", 1: "bca", 4: "bca", -1: "cab", -5: "bca", 3 << 20: "abc"} {
		if got := strings.Join(rotate(s, k), ""); got != want {
			t.Errorf("rotate by %d: %s, want %s", k, got, want)
		}
	}
	if strings.Join(s, "") != "abc" {
		t.Error("rotate changed its input")
	}
}
