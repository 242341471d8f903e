package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// benchCluster starts n quiet members with a memberlist profile's stock timings.
func benchCluster(b *testing.B, profile Profile, n int, heartbeat bool) []*Member {
	b.Helper()
	members := make([]*Member, 0, n)
	for i := range n {
		m := benchMember(b, profile, fmt.Sprintf("m-%03d", i))
		if i > 0 {
			if err := m.Join(context.Background(), []string{members[0].Addr()}); err != nil {
				b.Fatal(err)
			}
		}
		if heartbeat {
			m.StartHeartbeat()
		}
		members = append(members, m)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, m := range members {
		for len(m.Members()) < n {
			if time.Now().After(deadline) {
				b.Fatalf("%s sees %d of %d members", m.Name(), len(m.Members()), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return members
}

func benchMember(b *testing.B, profile Profile, name string) *Member {
	m, err := New(Options{Name: name, BindAddr: "127.0.0.1", Profile: profile, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Tune: func(c *memberlist.Config) { c.LogOutput = io.Discard }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Close)
	return m
}

// untilAll returns how long it took until cond held for every member.
func untilAll(b *testing.B, start time.Time, members []*Member, cond func(*Member) bool) time.Duration {
	deadline := start.Add(2 * time.Minute)
	pending := slices.Clone(members)
	for len(pending) > 0 {
		pending = slices.DeleteFunc(pending, cond)
		if time.Now().After(deadline) {
			b.Fatalf("%d members never saw the change", len(pending))
		}
		if len(pending) > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return time.Since(start)
}

// BenchmarkPropagation prints the time until every member sees a state change
// (SetState(leaving)) and a leave, for 5, 25 and 100 members on loopback with memberlist's
// local and lan profiles (their stock timings: gossip every 100 ms / 200 ms).
//
//	go test ./cluster -run '^$' -bench Propagation -benchtime 5x
func BenchmarkPropagation(b *testing.B) {
	for _, profile := range []Profile{ProfileLocal, ProfileLAN} {
		for _, n := range []int{5, 25, 100} {
			b.Run(fmt.Sprintf("%s/%d", profile, n), func(b *testing.B) {
				members := benchCluster(b, profile, n, false)
				// Close now rather than at cleanup: b's cleanups run after all of its
				// runs, and a live cluster of an earlier run would gossip with members
				// of the next that got its freed ports.
				defer closeAll(members)
				var stateTimes, leaveTimes []time.Duration
				for i := range b.N {
					// A state change: one member announces it is leaving, then comes back.
					target := members[1+i%(len(members)-1)]
					start := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					if err := target.SetState(ctx, StateLeaving); err != nil {
						b.Fatal(err)
					}
					cancel()
					stateTimes = append(stateTimes, untilAll(b, start, members, func(m *Member) bool {
						return stateOf(m, target.Name()) == StateLeaving
					}))
					ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
					if err := target.SetState(ctx, StateAlive); err != nil {
						b.Fatal(err)
					}
					cancel()
					untilAll(b, time.Now(), members, func(m *Member) bool { return stateOf(m, target.Name()) == StateAlive })

					// A leave: a fresh member joins (not timed) and leaves.
					leaver := benchMember(b, profile, fmt.Sprintf("leaver-%d", leaverSeq.Add(1)))
					if err := leaver.Join(context.Background(), []string{members[0].Addr()}); err != nil {
						b.Fatal(err)
					}
					untilAll(b, time.Now(), members, func(m *Member) bool { return stateOf(m, leaver.Name()) == StateAlive })
					// Timed from the call, while Leave still waits for memberlist's own
					// leave broadcast to finish.
					start = time.Now()
					leaveErr := make(chan error, 1)
					go func() { leaveErr <- leaver.Leave(10 * time.Second) }()
					leaveTimes = append(leaveTimes, untilAll(b, start, members, func(m *Member) bool {
						return stateOf(m, leaver.Name()) == StateLeft
					}))
					if err := <-leaveErr; err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(ms(medianOf(stateTimes)), "state-ms")
				b.ReportMetric(ms(medianOf(leaveTimes)), "leave-ms")
			})
		}
	}
}

// BenchmarkIdleMember prints what one idle member costs in a process: heap and CPU per
// member, measured over an idle 25-member cluster with heartbeats on (local profile).
// (e2e's BenchmarkNodeProcess measures a whole `farewell node` process.)
func BenchmarkIdleMember(b *testing.B) {
	const n, window = 25, 5 * time.Second
	for range b.N {
		before := heapBytes()
		members := benchCluster(b, ProfileLocal, n, true)
		after := heapBytes()
		cpu0 := cpuTime(b)
		time.Sleep(window) // the measurement window itself: idle members, nothing to poll for
		cpu := cpuTime(b) - cpu0
		b.ReportMetric(float64(after-before)/1024/n, "KiB-heap/member")
		b.ReportMetric(100*cpu.Seconds()/window.Seconds()/n, "%CPU/member")
		closeAll(members)
	}
}

// heapBytes is the live heap after a collection.
func heapBytes() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

var leaverSeq atomic.Int64

func closeAll(members []*Member) {
	for _, m := range members {
		m.Close()
	}
}

func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func medianOf(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
