package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkNodeProcess prints what an idle `farewell node` process costs: its resident
// memory and CPU over an idle window, in a 3-node loopback cluster (heartbeats on, demo
// services running, no Temporal: --offline). The process is this test binary acting as
// farewell, so its text is larger than the real binary's; resident memory is what counts.
//
//	go test ./e2e -run '^$' -bench NodeProcess -benchtime 1x
func BenchmarkNodeProcess(b *testing.B) {
	const window = 5 * time.Second
	for range b.N {
		first := startProcess(b, nil, "node", "--offline", "--name", "idle-1", "--bind", "127.0.0.1:0")
		seed := field(first.waitLine("ready ", time.Minute), "cluster")
		for _, name := range []string{"idle-2", "idle-3"} {
			p := startProcess(b, nil, "node", "--offline", "--name", name, "--bind", "127.0.0.1:0", "--join", seed)
			p.waitLine("ready ", time.Minute)
		}
		pid := first.cmd.Process.Pid
		eventually(b, 30*time.Second, "three alive nodes", func() bool {
			code, out, _ := runCLI(b, nil, "members", "--join", seed, "--output", "json")
			return code == 0 && strings.Count(out, `"state": "alive"`) == 3
		})
		cpu0 := procCPU(b, pid)
		time.Sleep(window) // the measurement window itself
		cpu := procCPU(b, pid) - cpu0
		rss := procRSSKiB(b, pid)
		b.ReportMetric(float64(rss)/1024, "MiB-RSS")
		b.ReportMetric(100*cpu.Seconds()/window.Seconds(), "%CPU")
		fmt.Printf("idle farewell node (3-node cluster, heartbeat 1s): RSS %.1f MiB, CPU %.2f%% over %s\n",
			float64(rss)/1024, 100*cpu.Seconds()/window.Seconds(), window)
	}
}

func procRSSKiB(b *testing.B, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Skip("no /proc")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kb
		}
	}
	return 0
}

// procCPU is the user+system CPU time of pid (clock ticks of 10 ms).
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Skip("no /proc")
	}
	fields := strings.Fields(string(data)[strings.LastIndexByte(string(data), ')')+2:])
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
