package netbed

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/farewell-project/farewell/internal/testkit"
)

// helperEnv makes the test binary a tiny network tool inside a host: "listen ADDR"
// accepts connections for good, "dial ADDR" connects once (exit 0) or fails (exit 1).
const helperEnv = "NETBED_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "listen":
		l, err := net.Listen("tcp", os.Args[len(os.Args)-1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("listening")
		for {
			c, err := l.Accept()
			if err != nil {
				os.Exit(1)
			}
			c.Close()
		}
	case "dial":
		c, err := net.DialTimeout("tcp", os.Args[len(os.Args)-1], 500*time.Millisecond)
		if err != nil {
			os.Exit(1)
		}
		c.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func newBed(t *testing.T, nets ...Net) *Bed {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("FAREWELL_NETBED") == "require" {
			t.Fatalf("the testbed is required here: %v", err)
		}
		t.Skipf("no testbed: %v", err)
	}
	b, err := New(nets...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

func listen(t *testing.T, h *Host, addr string) {
	t.Helper()
	p, err := h.Start(Spec{Name: "listen", Path: os.Args[0], Args: []string{addr}, Env: []string{helperEnv + "=listen"}})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the listener on "+h.Name, func() bool { _, ok := p.Line("listening"); return ok })
}

// reaches reports whether from can open a TCP connection to addr.
func reaches(t *testing.T, from *Host, addr string) bool {
	t.Helper()
	p, err := from.Start(Spec{Name: "dial", Path: os.Args[0], Args: []string{addr}, Env: []string{helperEnv + "=dial"}})
	if err != nil {
		t.Fatal(err)
	}
	return p.WaitFor(10*time.Second) == 0
}

func TestHostsReachEachOtherOnlyWhereTheNetsSay(t *testing.T) {
	b := newBed(t, Net{Name: "cluster", Octet: 1}, Net{Name: "temporal", Octet: 2})
	a, err := b.AddHost("a", "cluster", "temporal")
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.AddHost("c", "cluster", "temporal")
	if err != nil {
		t.Fatal(err)
	}
	d, err := b.AddHost("d", "cluster")
	if err != nil {
		t.Fatal(err)
	}
	if a.Addr("cluster") == c.Addr("cluster") || !strings.HasPrefix(a.Addr("cluster"), "10.213.1.") || d.Addr("temporal") != "" {
		t.Fatalf("addresses: a %v, c %v, d %v", a.Addrs, c.Addrs, d.Addrs)
	}
	onCluster, onTemporal := a.Addr("cluster")+":9000", a.Addr("temporal")+":9001"
	listen(t, a, onCluster)
	listen(t, a, onTemporal)

	if !reaches(t, c, onCluster) || !reaches(t, c, onTemporal) || !reaches(t, d, onCluster) {
		t.Fatal("hosts on the same nets do not reach each other")
	}
	if reaches(t, d, onTemporal) {
		t.Error("d is not on the temporal net, yet reaches a's address there")
	}

	// A host cut from one net keeps the other.
	if err := b.Cut("a", "cluster"); err != nil {
		t.Fatal(err)
	}
	if reaches(t, c, onCluster) {
		t.Error("c reaches a on the cluster net after a was cut from it")
	}
	if !reaches(t, c, onTemporal) {
		t.Error("a cut from the cluster net lost the temporal net too")
	}
	if err := b.Heal("a", "cluster"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "c to reach a again after the heal", func() bool { return reaches(t, c, onCluster) })

	// A split: a alone on one side, c and d on the other.
	if err := b.Split("cluster", "a"); err != nil {
		t.Fatal(err)
	}
	if reaches(t, c, onCluster) || reaches(t, d, onCluster) {
		t.Error("the split did not separate a from c and d")
	}
	listen(t, c, c.Addr("cluster")+":9002")
	if !reaches(t, d, c.Addr("cluster")+":9002") {
		t.Error("c and d, on the same side of the split, do not reach each other")
	}
	if !reaches(t, c, onTemporal) {
		t.Error("a split of the cluster net cut the temporal net too")
	}
	if err := b.Join("cluster"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the split to heal", func() bool { return reaches(t, c, onCluster) })
}

func TestCloseRemovesEverythingAndSweepTheLeftoversOfADeadRun(t *testing.T) {
	b := newBed(t, Net{Name: "cluster", Octet: 1})
	h, err := b.AddHost("a", "cluster")
	if err != nil {
		t.Fatal(err)
	}
	listen(t, h, h.Addr("cluster")+":9000")
	names := []string{b.sw, h.NS}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range names {
		if exists(ns) {
			t.Errorf("namespace %s is left after Close", ns)
		}
	}

	// What a killed run leaves: a namespace named for a PID that is gone, with a
	// process in it.
	stale, straggler := leftover(t)
	Sweep()
	if exists(stale) {
		t.Fatalf("Sweep left %s", stale)
	}
	testkit.Eventually(t, 10*time.Second, "the straggler to be killed", func() bool { return ProcState(straggler.Process.Pid) == "" })
}

// leftover makes what a killed run leaves: a namespace named for a PID that is gone,
// with a process in it, and returns both once the process is in there (before, nsenter
// holds the namespace open and enters it after a Sweep looked: under load, a straggler
// was seen left running in no namespace's name). Another test binary's Sweep may take
// it first (it is stale to every run): then it makes another.
func leftover(t *testing.T) (string, *exec.Cmd) {
	t.Helper()
	for range 5 {
		dead := exec.Command("true")
		if err := dead.Run(); err != nil {
			t.Fatal(err)
		}
		stale := fmt.Sprintf("%s%d-1-h1", Prefix, dead.Process.Pid)
		if err := run("ip", "netns", "add", stale); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = removeNamespaces([]string{stale}) })
		straggler := exec.Command("nsenter", "--net="+filepath.Join("/run/netns", stale), "--", os.Args[0], "127.0.0.1:0")
		straggler.Env = []string{helperEnv + "=listen"}
		if err := straggler.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = straggler.Wait(); close(exited) }()
		t.Cleanup(func() { _ = straggler.Process.Kill() }) // when Sweep failed to
		pid := strconv.Itoa(straggler.Process.Pid)
		in := func() bool {
			out, err := exec.Command("ip", "netns", "pids", stale).Output()
			return err == nil && slices.Contains(strings.Fields(string(out)), pid)
		}
		testkit.Eventually(t, 10*time.Second, "the straggler in "+stale+", or gone", func() bool {
			select {
			case <-exited:
				return true
			default:
				return in()
			}
		})
		select {
		case <-exited:
			t.Logf("%s was swept by another run before its straggler got in; again", stale)
		default:
			return stale, straggler
		}
	}
	t.Fatal("every namespace made was swept by another run before its straggler got in")
	return "", nil
}
