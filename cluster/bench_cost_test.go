package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// countingTransport counts what a member sends and receives: packets (UDP) and streams
// (TCP connections), and their bytes.
type countingTransport struct {
	memberlist.NodeAwareTransport
	c       *traffic
	packets chan *memberlist.Packet
	streams chan net.Conn
}

// traffic is what a set of members sent and received.
type traffic struct {
	out, in, outBytes, inBytes atomic.Int64
}

func countTraffic(inner memberlist.NodeAwareTransport, c *traffic) *countingTransport {
	t := &countingTransport{NodeAwareTransport: inner, c: c, packets: make(chan *memberlist.Packet), streams: make(chan net.Conn)}
	go func() {
		for p := range inner.PacketCh() {
			c.in.Add(1)
			c.inBytes.Add(int64(len(p.Buf)))
			t.packets <- p
		}
	}()
	go func() {
		for s := range inner.StreamCh() {
			c.in.Add(1)
			t.streams <- &countingConn{Conn: s, bytes: &c.inBytes}
		}
	}()
	return t
}

func (t *countingTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *countingTransport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.c.out.Add(1)
	t.c.outBytes.Add(int64(len(b)))
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	t.c.out.Add(1)
	c, err := t.NodeAwareTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, bytes: &t.c.outBytes}, nil
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// countingConn counts the bytes written on a stream (each side counts what it sends).
type countingConn struct {
	net.Conn
	bytes *atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.bytes.Add(int64(n))
	return n, err
}

// costRow is one member's cost at one cluster size.
type costRow struct {
	n                      int
	sent, recv, bytes, cpu float64 // per member per second; cpu in % of a core
}

// idleCost runs n members for window, idle, and returns one member's cost.
func idleCost(b *testing.B, n int, window time.Duration, start func(i int, seed string, c *traffic) (addr string, stop func())) costRow {
	var c traffic
	var stops []func()
	seed := ""
	for i := range n {
		addr, stop := start(i, seed, &c)
		stops = append(stops, stop)
		if i == 0 {
			seed = addr
		}
	}
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	// The joins' gossip dies down first (ten seconds at 100 members): the window
	// starts once a second passes with members sending at most 3 messages each (idle
	// memberlist sends 2: a probe, and the ack of one).
	settled := time.Now().Add(time.Minute)
	for last := c.out.Load(); ; {
		time.Sleep(time.Second) // one second's traffic is the condition polled
		now := c.out.Load()
		if float64(now-last)/float64(n) <= 3 {
			break
		}
		if time.Now().After(settled) {
			b.Fatalf("%d members still send %.1f messages a second each after a minute", n, float64(now-last)/float64(n))
		}
		last = now
	}
	out0, in0, bytes0 := c.out.Load(), c.in.Load(), c.outBytes.Load()+c.inBytes.Load()
	cpu0 := cpuTime(b)
	time.Sleep(window) // the measurement window: idle members, nothing to poll for
	cpu := cpuTime(b) - cpu0
	per := float64(n) * window.Seconds()
	return costRow{n: n, sent: float64(c.out.Load()-out0) / per, recv: float64(c.in.Load()-in0) / per,
		bytes: float64(c.outBytes.Load()+c.inBytes.Load()-bytes0) / per / 2, cpu: 100 * cpu.Seconds() / window.Seconds() / float64(n)}
}

func quiet(c *memberlist.Config) { c.LogOutput = io.Discard }

// bareMember is a memberlist member with no delegate: what memberlist alone costs.
func bareMember(b *testing.B, name, seed string, c *traffic) (string, func()) {
	mlc := memberlist.DefaultLocalConfig()
	mlc.Name, mlc.BindAddr, mlc.BindPort = name, "127.0.0.1", 0
	quiet(mlc)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: 0,
		Logger: newMemberlistLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		b.Fatal(err)
	}
	mlc.AdvertisePort = nt.GetAutoBindPort()
	mlc.Transport = countTraffic(nt, c)
	ml, err := memberlist.Create(mlc)
	if err != nil {
		b.Fatal(err)
	}
	if seed != "" {
		if _, err := ml.Join([]string{seed}); err != nil {
			b.Fatal(err)
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", mlc.AdvertisePort)
	return addr, func() { _ = ml.Shutdown() }
}

// farewellMember is a Farewell member (a node, heartbeat on) on the same profile.
func farewellMember(b *testing.B, name, seed string, c *traffic) (*Member, func()) {
	m, err := New(Options{Name: name, BindAddr: "127.0.0.1", Profile: ProfileLocal, Logger: slog.New(slog.DiscardHandler),
		Tune: func(mlc *memberlist.Config) {
			quiet(mlc)
			mlc.Transport = countTraffic(mlc.Transport.(memberlist.NodeAwareTransport), c)
		}})
	if err != nil {
		b.Fatal(err)
	}
	if seed != "" {
		if err := m.Join(context.Background(), []string{seed}); err != nil {
			b.Fatal(err)
		}
	}
	m.StartHeartbeat()
	return m, m.Close
}

// BenchmarkMemberCost prints what one idle member costs against the cluster's size,
// bare memberlist members beside Farewell members (heartbeat on), local profile, in one
// run: messages sent and received per second, bytes per second, CPU; and how long
// until every member flags a node whose application stopped as blocked, past the
// heartbeat expiration. Targets: a Farewell member's messages per second flat (within
// ±20 % from 10 to 100 members), its CPU within 1.3× of a bare member's.
//
//	go test ./cluster -run '^$' -bench MemberCost -benchtime 1x
func BenchmarkMemberCost(b *testing.B) {
	sizes := []int{10, 25, 50, 100}
	if v := os.Getenv("FAREWELL_COST_SIZES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			var n int
			if _, err := fmt.Sscan(f, &n); err != nil || n < 2 {
				b.Fatalf("FAREWELL_COST_SIZES=%q: want sizes such as 10,25,50", v)
			}
			sizes = append(sizes, n)
		}
	}
	const window = 10 * time.Second
	for range b.N {
		var rows []string
		var first costRow
		for i, n := range sizes {
			bare := idleCost(b, n, window, func(i int, seed string, c *traffic) (string, func()) {
				return bareMember(b, fmt.Sprintf("bare-%03d", i), seed, c)
			})
			fw := idleCost(b, n, window, func(i int, seed string, c *traffic) (string, func()) {
				m, stop := farewellMember(b, fmt.Sprintf("fw-%03d", i), seed, c)
				return m.Addr(), stop
			})
			if i == 0 {
				first = fw
			}
			detect := blockedDetection(b, n)
			rows = append(rows, fmt.Sprintf("| %d | %.1f / %.1f | %.1f / %.1f | %.0f / %.0f | %.3f %% / %.3f %% | %.2f× | %.2f | %s |",
				n, bare.sent, bare.recv, fw.sent, fw.recv, bare.bytes, fw.bytes, bare.cpu, fw.cpu, fw.cpu/bare.cpu,
				(fw.sent+fw.recv)/(first.sent+first.recv), detect))
		}
		fmt.Printf("\nA member's idle cost against the cluster's size (local profile, heartbeat every 1 s, expiration 5 s; %s window):\n\n", window)
		fmt.Println("| members | bare memberlist: msgs/s sent / received | Farewell: msgs/s sent / received | bytes/s bare / Farewell | CPU bare / Farewell | CPU ratio (≤ 1.3) | Farewell msgs/s vs the smallest (±20 %) | blocked flagged everywhere after the expiration + |")
		fmt.Println("|---|---|---|---|---|---|---|---|")
		for _, r := range rows {
			fmt.Println(r)
		}
	}
}

// blockedDetection starts n Farewell members (heartbeat every 200 ms, expiration 1 s),
// stops one member's heartbeat, and returns how long past the expiration it took until
// every other member flagged it blocked.
func blockedDetection(b *testing.B, n int) time.Duration {
	const interval, expiration = 200 * time.Millisecond, time.Second
	var members []*Member
	for i := range n {
		m, err := New(Options{Name: fmt.Sprintf("det-%03d", i), BindAddr: "127.0.0.1", Profile: ProfileLocal, Logger: slog.New(slog.DiscardHandler),
			HeartbeatInterval: interval, HeartbeatExpiration: expiration, Tune: quiet})
		if err != nil {
			b.Fatal(err)
		}
		if i > 0 {
			if err := m.Join(context.Background(), []string{members[0].Addr()}); err != nil {
				b.Fatal(err)
			}
		}
		m.StartHeartbeat()
		members = append(members, m)
	}
	defer closeAll(members)
	untilAll(b, time.Now(), members, func(m *Member) bool { return len(m.Members()) == n })
	// The measurement protocol: the joins' push/pulls and gossip end first.
	time.Sleep(3 * time.Second)
	stuck := members[n/2]
	start := time.Now()
	stuck.StopHeartbeat()
	took := untilAll(b, start, except(members, stuck), func(m *Member) bool {
		info, _ := m.Member(stuck.Name())
		return info.Blocked
	})
	return (took - expiration).Round(10 * time.Millisecond)
}
