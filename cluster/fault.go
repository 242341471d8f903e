package cluster

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// FaultMode is what a FaultTransport does to the traffic a Fault selects.
type FaultMode string

const (
	// FaultNone lets traffic through.
	FaultNone FaultMode = ""
	// FaultStall blocks sends until the fault is cleared or the transport shuts down,
	// and blocks dials until their timeout: a hung network stack.
	FaultStall FaultMode = "stall"
	// FaultDrop discards sends (reporting success) and fails dials.
	FaultDrop FaultMode = "drop"
	// FaultDelay holds each send and dial for Fault.Delay.
	FaultDelay FaultMode = "delay"
	// FaultIsolate cuts the member off both ways: what it sends is dropped (as with
	// FaultDrop) and what others send it is discarded on arrival.
	FaultIsolate FaultMode = "isolate"
)

// Fault selects outgoing traffic and what happens to it.
type Fault struct {
	Mode FaultMode
	// Delay is the hold time of FaultDelay.
	Delay time.Duration
	// Peers limits the fault to these node names or host:port addresses; empty means
	// every peer.
	Peers []string
	// PacketsOnly or StreamsOnly limit the fault to UDP packets or TCP streams.
	PacketsOnly bool
	StreamsOnly bool
}

// ParseFaultMode reads "stall", "drop", "isolate" or "delay:DURATION".
func ParseFaultMode(s string) (Fault, error) {
	switch {
	case s == string(FaultStall):
		return Fault{Mode: FaultStall}, nil
	case s == string(FaultDrop):
		return Fault{Mode: FaultDrop}, nil
	case s == string(FaultIsolate):
		return Fault{Mode: FaultIsolate}, nil
	case strings.HasPrefix(s, string(FaultDelay)+":"):
		d, err := time.ParseDuration(strings.TrimPrefix(s, string(FaultDelay)+":"))
		if err != nil || d <= 0 {
			return Fault{}, fmt.Errorf("fault %q: delay needs a positive duration, like delay:200ms", s)
		}
		return Fault{Mode: FaultDelay, Delay: d}, nil
	}
	return Fault{}, fmt.Errorf("fault %q: want stall, drop, isolate or delay:DURATION", s)
}

func (f Fault) String() string {
	if f.Mode == FaultNone {
		return "none"
	}
	s := string(f.Mode)
	if f.Mode == FaultDelay {
		s += ":" + f.Delay.String()
	}
	if len(f.Peers) > 0 {
		s += " to " + strings.Join(f.Peers, ",")
	}
	return s
}

func (f Fault) selects(a memberlist.Address, stream bool) bool {
	if f.Mode == FaultNone || (stream && f.PacketsOnly) || (!stream && f.StreamsOnly) {
		return false
	}
	return len(f.Peers) == 0 || slices.Contains(f.Peers, a.Name) || slices.Contains(f.Peers, a.Addr)
}

var errTransportShutdown = errors.New("transport shut down")

// FaultTransport is a memberlist transport that injects faults into outgoing packets and
// streams, switched at run time. With no fault set it is the plain network transport.
// Its methods are safe for concurrent use.
type FaultTransport struct {
	memberlist.NodeAwareTransport

	mu       sync.Mutex
	fault    Fault
	armed    *Fault
	changed  chan struct{} // closed and replaced whenever the fault changes
	shutdown chan struct{}
	once     sync.Once
	packets  chan *memberlist.Packet
	streams  chan net.Conn
	closed   chan struct{} // closed once the inner transport shut down
}

var _ memberlist.NodeAwareTransport = (*FaultTransport)(nil)

// NewFaultTransport wraps inner.
func NewFaultTransport(inner memberlist.NodeAwareTransport) *FaultTransport {
	t := &FaultTransport{NodeAwareTransport: inner, changed: make(chan struct{}), shutdown: make(chan struct{}),
		packets: make(chan *memberlist.Packet), streams: make(chan net.Conn), closed: make(chan struct{})}
	go t.forward()
	return t
}

// PacketCh delivers incoming packets, unless the member is isolated.
func (t *FaultTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// StreamCh delivers incoming streams, unless the member is isolated.
func (t *FaultTransport) StreamCh() <-chan net.Conn { return t.streams }

// forward passes what arrives on to memberlist, discarding it while isolated. Once the
// transport shuts down it discards everything until the inner transport is closed, so
// that no listener of the inner transport stays blocked on a send.
func (t *FaultTransport) forward() {
	inPackets, inStreams := t.NodeAwareTransport.PacketCh(), t.NodeAwareTransport.StreamCh()
	for {
		select {
		case p := <-inPackets:
			if t.Current().Mode == FaultIsolate {
				continue
			}
			select {
			case t.packets <- p:
			case <-t.shutdown:
			}
		case c := <-inStreams:
			if t.Current().Mode == FaultIsolate {
				c.Close()
				continue
			}
			select {
			case t.streams <- c:
			case <-t.shutdown:
				c.Close()
			}
		case <-t.closed:
			return
		}
	}
}

// Set switches to fault f now; stalled sends re-check it at once.
func (t *FaultTransport) Set(f Fault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fault = f
	close(t.changed)
	t.changed = make(chan struct{})
}

// Clear lets all traffic through again.
func (t *FaultTransport) Clear() { t.Set(Fault{}) }

// Current returns the fault in effect.
func (t *FaultTransport) Current() Fault {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fault
}

// Arm keeps f until Trigger switches it on.
func (t *FaultTransport) Arm(f Fault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.armed = &f
}

// Trigger switches an armed fault on and reports whether there was one.
func (t *FaultTransport) Trigger() (Fault, bool) {
	t.mu.Lock()
	armed := t.armed
	t.armed = nil
	t.mu.Unlock()
	if armed == nil {
		return Fault{}, false
	}
	t.Set(*armed)
	return *armed, true
}

func (t *FaultTransport) state() (Fault, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fault, t.changed
}

// WriteTo is the address-only form of WriteToAddress.
func (t *FaultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends a packet unless the fault holds or drops it.
func (t *FaultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	for {
		f, changed := t.state()
		if !f.selects(a, false) {
			return t.NodeAwareTransport.WriteToAddress(b, a)
		}
		switch f.Mode {
		case FaultDrop, FaultIsolate:
			return time.Now(), nil
		case FaultDelay:
			if err := t.sleep(f.Delay); err != nil {
				return time.Time{}, err
			}
			return t.NodeAwareTransport.WriteToAddress(b, a)
		default: // stall
			select {
			case <-changed:
			case <-t.shutdown:
				return time.Time{}, errTransportShutdown
			}
		}
	}
}

// DialTimeout is the address-only form of DialAddressTimeout.
func (t *FaultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream unless the fault holds or refuses it.
func (t *FaultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		f, changed := t.state()
		if !f.selects(a, true) {
			return t.NodeAwareTransport.DialAddressTimeout(a, timeout)
		}
		switch f.Mode {
		case FaultDrop, FaultIsolate:
			return nil, fmt.Errorf("dial %s: connection dropped by injected fault", a.Addr)
		case FaultDelay:
			if err := t.sleep(f.Delay); err != nil {
				return nil, err
			}
			return t.NodeAwareTransport.DialAddressTimeout(a, timeout)
		default: // stall
			select {
			case <-changed:
			case <-deadline.C:
				return nil, fmt.Errorf("dial %s: i/o timeout (stalled by injected fault)", a.Addr)
			case <-t.shutdown:
				return nil, errTransportShutdown
			}
		}
	}
}

func (t *FaultTransport) sleep(d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-t.shutdown:
		return errTransportShutdown
	}
}

// Shutdown releases every stalled send, then shuts the network transport down.
func (t *FaultTransport) Shutdown() error {
	first := false
	t.once.Do(func() { close(t.shutdown); first = true })
	err := t.NodeAwareTransport.Shutdown()
	if first {
		close(t.closed)
	}
	return err
}
