package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
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

// settle waits until the joins' gossip among n members has died down (ten seconds at
// 100 members): until a second passes with members sending at most 3 messages each
// (idle memberlist sends 2: a probe, and the ack of one).
func settle(tb testing.TB, n int, c *traffic) {
	deadline := time.Now().Add(time.Minute)
	for last := c.out.Load(); ; {
		time.Sleep(time.Second) // one second's traffic is the condition polled
		now := c.out.Load()
		if float64(now-last)/float64(n) <= 3 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d members still send %.1f messages a second each after a minute", n, float64(now-last)/float64(n))
		}
		last = now
	}
}

// joinOne joins through one of seeds, picked at random, so that hundreds of members
// do not all push and pull their state with the first; a join that fails is tried
// through another, three times in all. No seeds: the first member, nothing to join.
func joinOne(seeds []string, join func(addr string) error) error {
	if len(seeds) == 0 {
		return nil
	}
	var err error
	for range 3 {
		if err = join(seeds[rand.IntN(len(seeds))]); err == nil {
			return nil
		}
	}
	return err
}

func quiet(c *memberlist.Config) { c.LogOutput = io.Discard }

// bareMember is a memberlist member with no delegate: what memberlist alone costs.
func bareMember(b testing.TB, name string, seeds []string, c *traffic) (string, func()) {
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
	if err := joinOne(seeds, func(addr string) error { _, err := ml.Join([]string{addr}); return err }); err != nil {
		b.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", mlc.AdvertisePort)
	return addr, func() { _ = ml.Shutdown() }
}

// farewellMember is a Farewell member (a node, heartbeat on) on the same profile.
func farewellMember(b testing.TB, name string, seeds []string, c *traffic) (*Member, func()) {
	m, err := New(Options{Name: name, BindAddr: "127.0.0.1", Profile: ProfileLocal, Logger: slog.New(slog.DiscardHandler),
		Tune: func(mlc *memberlist.Config) {
			quiet(mlc)
			mlc.Transport = countTraffic(mlc.Transport.(memberlist.NodeAwareTransport), c)
		}})
	if err != nil {
		b.Fatal(err)
	}
	if err := joinOne(seeds, func(addr string) error { return m.Join(context.Background(), []string{addr}) }); err != nil {
		b.Fatal(err)
	}
	m.StartHeartbeat()
	return m, m.Close
}

// BenchmarkMemberCost prints what one idle member costs against the cluster's size,
// bare memberlist members beside Farewell members (heartbeat on), local profile:
// messages sent and received per second, bytes per second, CPU; and how long until
// every member flags a node whose application stopped as blocked, past the heartbeat
// expiration. Targets: a Farewell member's messages per second flat (within ±20 % from
// 10 to 100 members), its CPU within 1.3× of a bare member's.
//
// At each size the two clusters run at once, each in a process of its own (this test
// binary, as TestMemberCostChild), and are measured over the same windows: whatever
// else the machine does in a window, both pay for it, so the ratio is of the two
// clusters and not of two moments.
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
	const window, windows = 10 * time.Second, 3
	for range b.N {
		// Each row as soon as it is measured: a long run that fails at its largest size
		// keeps the others.
		fmt.Printf("\nA member's idle cost against the cluster's size (local profile, heartbeat every 1 s, expiration 5 s; "+
			"both clusters at once, %d windows of %s):\n\n", windows, window)
		fmt.Println("| members | bare memberlist: msgs/s sent / received | Farewell: msgs/s sent / received | bytes/s bare / Farewell | CPU bare / Farewell | CPU ratio (≤ 1.3) | Farewell msgs/s vs the smallest (±20 %) | blocked flagged everywhere after the expiration + |")
		fmt.Println("|---|---|---|---|---|---|---|---|")
		var firstRate float64 // a Farewell member's messages a second at the first size
		for i, n := range sizes {
			bare, fw := startCostChild(b, "bare", n), startCostChild(b, "farewell", n)
			var bareCost, fwCost costSample
			var ratios []float64
			for range windows {
				b0, f0 := bare.sample(b), fw.sample(b)
				time.Sleep(window) // the measurement window: idle members, nothing to poll for
				b1, f1 := bare.sample(b), fw.sample(b)
				bw, fwd := b1.minus(b0), f1.minus(f0)
				ratios = append(ratios, float64(fwd.cpu)/float64(bw.cpu))
				bareCost, fwCost = bareCost.plus(bw), fwCost.plus(fwd)
			}
			bare.stop()
			fw.stop()
			detect := blockedDetection(b, n)
			per := float64(n) * window.Seconds() * windows
			if i == 0 {
				firstRate = float64(fwCost.out+fwCost.in) / per
			}
			slices.Sort(ratios)
			fmt.Printf("| %d | %.1f / %.1f | %.1f / %.1f | %.0f / %.0f | %.3f %% / %.3f %% | **%.2f×** (windows %.2f–%.2f) | %.2f | %s |\n",
				n, float64(bareCost.out)/per, float64(bareCost.in)/per, float64(fwCost.out)/per, float64(fwCost.in)/per,
				float64(bareCost.bytes)/per/2, float64(fwCost.bytes)/per/2,
				100*bareCost.cpu.Seconds()/per, 100*fwCost.cpu.Seconds()/per, float64(fwCost.cpu)/float64(bareCost.cpu),
				ratios[0], ratios[len(ratios)-1], float64(fwCost.out+fwCost.in)/per/firstRate, detect)
		}
	}
}

// costSample is what a cluster of members had sent and received, and the CPU its
// process had used, at one moment (or between two).
type costSample struct {
	out, in, bytes int64
	cpu            time.Duration
}

func (a costSample) minus(b costSample) costSample {
	return costSample{out: a.out - b.out, in: a.in - b.in, bytes: a.bytes - b.bytes, cpu: a.cpu - b.cpu}
}

func (a costSample) plus(b costSample) costSample {
	return costSample{out: a.out + b.out, in: a.in + b.in, bytes: a.bytes + b.bytes, cpu: a.cpu + b.cpu}
}

// costChildEnv tells this test binary to run as a cluster for BenchmarkMemberCost:
// "bare:N" or "farewell:N".
const costChildEnv = "FAREWELL_COST_CHILD"

// costChild is a cluster of idle members in a process of its own.
type costChild struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startCostChild starts n members of a kind in a child process and returns once their
// joins' gossip has died down.
func startCostChild(b *testing.B, kind string, n int) *costChild {
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemberCostChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s:%d", costChildEnv, kind, n))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &costChild{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	b.Cleanup(c.stop)
	// The child says "ready" once settled; its settling is bounded by a minute.
	for c.out.Scan() {
		if c.out.Text() == "ready" {
			return c
		}
		fmt.Fprintln(os.Stderr, c.out.Text()) // what it says on its way: a failure's words
	}
	b.Fatalf("the %s cluster of %d ended before it was ready: %v", kind, n, c.out.Err())
	return nil
}

// sample asks the child for its counters.
func (c *costChild) sample(b *testing.B) costSample {
	var s costSample
	if _, err := io.WriteString(c.in, "sample\n"); err != nil {
		b.Fatal(err)
	}
	if !c.out.Scan() {
		b.Fatalf("the child ended: %v", c.out.Err())
	}
	var cpu int64
	if _, err := fmt.Sscan(c.out.Text(), &s.out, &s.in, &s.bytes, &cpu); err != nil {
		b.Fatalf("the child said %q: %v", c.out.Text(), err)
	}
	s.cpu = time.Duration(cpu)
	return s
}

// stop ends the child (closing its input ends it) and waits for it; a second call
// does nothing.
func (c *costChild) stop() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.in.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// TestMemberCostChild is not a test: it is the process BenchmarkMemberCost runs each
// cluster in (and skips otherwise). It starts the members, says "ready" once they
// settle, and answers every "sample" line with what they sent and received so far and
// the CPU the process used, until its input ends.
func TestMemberCostChild(t *testing.T) {
	spec := os.Getenv(costChildEnv)
	if spec == "" {
		t.Skip("a child process of BenchmarkMemberCost")
	}
	kind, size, _ := strings.Cut(spec, ":")
	n, err := strconv.Atoi(size)
	if err != nil || n < 2 || kind != "bare" && kind != "farewell" {
		t.Fatalf("%s=%q: want bare:N or farewell:N", costChildEnv, spec)
	}
	var c traffic
	var addrs []string
	for i := range n {
		var addr string
		var stop func()
		if kind == "bare" {
			addr, stop = bareMember(t, fmt.Sprintf("bare-%03d", i), addrs, &c)
		} else {
			var m *Member
			m, stop = farewellMember(t, fmt.Sprintf("fw-%03d", i), addrs, &c)
			addr = m.Addr()
		}
		defer stop()
		addrs = append(addrs, addr)
	}
	settle(t, n, &c)
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fmt.Println(c.out.Load(), c.in.Load(), c.outBytes.Load()+c.inBytes.Load(), int64(cpuTime(t)))
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
		var seeds []string
		for _, p := range members {
			seeds = append(seeds, p.Addr())
		}
		if err := joinOne(seeds, func(addr string) error { return m.Join(context.Background(), []string{addr}) }); err != nil {
			b.Fatal(err)
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
