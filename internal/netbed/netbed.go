// Package netbed makes a testbed of real hosts on one Linux machine: each host is a
// network namespace with an address on private networks that exist only inside the
// namespaces the bed made (bridges in a "switch" namespace of its own; nothing routes
// out). Faults are real: a host's port on a network goes down (its packets are dropped,
// as when a switch port dies), a network splits in two (hosts moved to a second
// bridge), processes are killed, frozen and restarted.
//
// A bed removes everything it made — processes, namespaces, and with them every link
// and bridge — on Close, and Sweep removes what a killed run left behind. It needs root
// and the ip(8) and nsenter(1) commands; Available says why not when they are missing.
package netbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Prefix starts the name of every namespace a bed makes; the creating process's PID
// follows it, so that Sweep can tell a live run's namespaces from a dead one's.
const Prefix = "fwbed"

// A Net is one network of the bed: a bridge in the switch namespace and a /24 inside
// 10.213.0.0/16 (private, and reachable only from inside the bed's namespaces).
type Net struct {
	// Name is short: it names interfaces ("cluster" → host interface "cluster0").
	Name string
	// Octet is the subnet's third octet: 10.213.<Octet>.0/24.
	Octet int
}

// Subnet is the net's CIDR.
func (n Net) Subnet() string { return fmt.Sprintf("10.213.%d.0/24", n.Octet) }

// Host is one namespace of the bed.
type Host struct {
	Name string
	// NS is the namespace's name (ip netns).
	NS  string
	idx int
	bed *Bed
	// Addrs maps each net the host is on to its address there.
	Addrs map[string]string
}

// Addr is the host's address on net, "" when it is not on it.
func (h *Host) Addr(net string) string { return h.Addrs[net] }

// Bed is a set of hosts on a set of nets. Safe for concurrent use.
type Bed struct {
	id   string
	sw   string // the switch namespace: one bridge per net (and its split half)
	nets map[string]Net

	mu    sync.Mutex
	hosts map[string]*Host
	order []*Host
	procs []*Proc
	split map[string]map[string]bool // net → hosts moved to its second bridge
	// cleanups run on Close, after the processes ended (folders made outside the test's).
	cleanups []func()
}

var beds atomic.Int64

// Available says why a bed cannot be made here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root (tests and CI run as root)")
	}
	for _, cmd := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(cmd); err != nil {
			return fmt.Errorf("%s is not installed: %w", cmd, err)
		}
	}
	name := fmt.Sprintf("%sprobe%d", Prefix, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
	return nil
}

// New makes an empty bed with the given nets.
func New(nets ...Net) (*Bed, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	Sweep()
	b := &Bed{
		id:    fmt.Sprintf("%s%d-%d", Prefix, os.Getpid(), beds.Add(1)),
		nets:  map[string]Net{},
		hosts: map[string]*Host{},
		split: map[string]map[string]bool{},
	}
	b.sw = b.id + "-sw"
	if err := run("ip", "netns", "add", b.sw); err != nil {
		return nil, err
	}
	for _, n := range nets {
		if len(n.Name) > 8 || n.Octet < 1 || n.Octet > 254 {
			b.Close()
			return nil, fmt.Errorf("net %q/%d: names are at most 8 bytes, octets 1–254", n.Name, n.Octet)
		}
		b.nets[n.Name] = n
		for _, br := range []string{bridge(n.Name, false), bridge(n.Name, true)} {
			if err := b.ip(b.sw, "link", "add", br, "type", "bridge"); err != nil {
				b.Close()
				return nil, err
			}
			if err := b.ip(b.sw, "link", "set", br, "up"); err != nil {
				b.Close()
				return nil, err
			}
		}
	}
	return b, nil
}

// bridge names a net's bridge, or the bridge of its split-off half.
func bridge(net string, half bool) string {
	if half {
		return "br-" + net + "-b"
	}
	return "br-" + net
}

// swPort names the switch side of a host's link to a net.
func swPort(h *Host, net string) string { return fmt.Sprintf("%s%d", net[:1], h.idx) }

// AddHost makes a host on the given nets; its address on each is 10.213.<octet>.<n>,
// n counting hosts from 10.
func (b *Bed) AddHost(name string, nets ...string) (*Host, error) {
	b.mu.Lock()
	if _, ok := b.hosts[name]; ok {
		b.mu.Unlock()
		return nil, fmt.Errorf("host %q exists", name)
	}
	h := &Host{Name: name, NS: fmt.Sprintf("%s-h%d", b.id, len(b.order)+1), idx: len(b.order) + 10, bed: b, Addrs: map[string]string{}}
	if h.idx > 250 {
		b.mu.Unlock()
		return nil, errors.New("a bed holds at most 240 hosts")
	}
	b.hosts[name] = h
	b.order = append(b.order, h)
	b.mu.Unlock()

	if err := run("ip", "netns", "add", h.NS); err != nil {
		return nil, err
	}
	if err := b.ip(h.NS, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	for _, name := range nets {
		n, ok := b.nets[name]
		if !ok {
			return nil, fmt.Errorf("host %s: no net %q", h.Name, name)
		}
		port, inside := swPort(h, name), name+"0"
		if err := b.ip(b.sw, "link", "add", port, "type", "veth", "peer", "name", inside, "netns", h.NS); err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("10.213.%d.%d", n.Octet, h.idx)
		for _, args := range [][]string{
			{b.sw, "link", "set", port, "master", bridge(name, false)},
			{b.sw, "link", "set", port, "up"},
			{h.NS, "addr", "add", addr + "/24", "dev", inside},
			{h.NS, "link", "set", inside, "up"},
		} {
			if err := b.ip(args[0], args[1:]...); err != nil {
				return nil, err
			}
		}
		h.Addrs[name] = addr
	}
	return h, nil
}

// Host returns the host of that name.
func (b *Bed) Host(name string) *Host {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hosts[name]
}

// Hosts lists the hosts in the order they were added.
func (b *Bed) Hosts() []*Host {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.order)
}

// Cut takes host's port on net down: what it sends there is dropped and nothing reaches
// it, as when its switch port dies. Its other nets are untouched.
func (b *Bed) Cut(host, net string) error { return b.port(host, net, "down") }

// Heal brings host's port on net back up.
func (b *Bed) Heal(host, net string) error { return b.port(host, net, "up") }

func (b *Bed) port(host, net, state string) error {
	h := b.Host(host)
	if h == nil || h.Addrs[net] == "" {
		return fmt.Errorf("%s is not on net %s", host, net)
	}
	return b.ip(b.sw, "link", "set", swPort(h, net), state)
}

// Split cuts net in two: the hosts named move to a second bridge, and hear only each
// other there; the rest stay together on the first. Heal with Join.
func (b *Bed) Split(net string, hosts ...string) error {
	for _, name := range hosts {
		h := b.Host(name)
		if h == nil || h.Addrs[net] == "" {
			return fmt.Errorf("split %s: %s is not on it", net, name)
		}
		if err := b.ip(b.sw, "link", "set", swPort(h, net), "master", bridge(net, true)); err != nil {
			return err
		}
		b.mu.Lock()
		if b.split[net] == nil {
			b.split[net] = map[string]bool{}
		}
		b.split[net][name] = true
		b.mu.Unlock()
	}
	return nil
}

// Join heals every split of net: all its hosts are on one bridge again.
func (b *Bed) Join(net string) error {
	b.mu.Lock()
	moved := b.split[net]
	delete(b.split, net)
	b.mu.Unlock()
	for name := range moved {
		if err := b.ip(b.sw, "link", "set", swPort(b.Host(name), net), "master", bridge(net, false)); err != nil {
			return err
		}
	}
	return nil
}

// HealAll brings every port up and joins every split net.
func (b *Bed) HealAll() error {
	var errs []error
	for net := range b.nets {
		errs = append(errs, b.Join(net))
	}
	for _, h := range b.Hosts() {
		for net := range h.Addrs {
			errs = append(errs, b.Heal(h.Name, net))
		}
	}
	return errors.Join(errs...)
}

// Close kills every process in the bed's namespaces and deletes them, which removes
// their links and the bridges with them.
func (b *Bed) Close() error {
	b.mu.Lock()
	procs := slices.Clone(b.procs)
	names := []string{b.sw}
	for _, h := range b.order {
		names = append(names, h.NS)
	}
	b.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	for _, p := range procs {
		p.WaitFor(10 * time.Second)
	}
	err := removeNamespaces(names)
	b.mu.Lock()
	cleanups := b.cleanups
	b.cleanups = nil
	b.mu.Unlock()
	for _, f := range cleanups {
		f()
	}
	return err
}

// removeNamespaces kills what runs in each namespace and deletes it.
func removeNamespaces(names []string) error {
	var errs []error
	for _, ns := range names {
		killIn(ns)
	}
	for _, ns := range names {
		if !exists(ns) {
			continue
		}
		if err := run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killIn SIGKILLs every process in namespace ns, until none is left (bounded).
func killIn(ns string) {
	for range 50 {
		out, err := exec.Command("ip", "netns", "pids", ns).Output()
		pids := strings.Fields(string(out))
		if err != nil || len(pids) == 0 {
			return
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond) // the kernel reaps them; nothing to poll but the list itself
	}
}

func exists(ns string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", ns))
	return err == nil
}

// Sweep removes the namespaces of beds whose process is gone (a run that was killed,
// or timed out, before it could clean up), and everything running in them.
func Sweep() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	var stale []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), Prefix)
		if !ok {
			continue
		}
		digits := rest
		if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			digits = rest[:i]
		}
		pid, err := strconv.Atoi(digits)
		if err != nil {
			continue
		}
		if pid != os.Getpid() && syscall.Kill(pid, 0) != nil {
			stale = append(stale, e.Name())
		}
	}
	_ = removeNamespaces(stale)
}

func (b *Bed) ip(ns string, args ...string) error {
	return run("ip", append([]string{"-n", ns}, args...)...)
}

func run(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
