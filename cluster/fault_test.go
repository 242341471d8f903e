package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestParseFaultMode(t *testing.T) {
	for in, want := range map[string]string{
		"stall":       "stall",
		"drop":        "drop",
		"isolate":     "isolate",
		"delay:200ms": "delay:200ms",
	} {
		f, err := ParseFaultMode(in)
		if err != nil || f.String() != want {
			t.Errorf("%q: %v %v, want %s", in, f, err, want)
		}
	}
	for in, want := range map[string]string{
		"delay:0s":   "delay needs a positive duration",
		"delay:-1s":  "delay needs a positive duration",
		"delay:soon": "delay needs a positive duration",
		"delay":      "want stall, drop, isolate or delay:DURATION",
		"":           "want stall, drop, isolate or delay:DURATION",
		"Stall":      "want stall, drop, isolate or delay:DURATION",
	} {
		if _, err := ParseFaultMode(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error saying %q", in, err, want)
		}
	}
	if s := (Fault{}).String(); s != "none" {
		t.Errorf("no fault reads %q", s)
	}
	if s := (Fault{Mode: FaultDelay, Delay: time.Second, Peers: []string{"a", "b:1"}}).String(); s != "delay:1s to a,b:1" {
		t.Errorf("a delay to two peers reads %q", s)
	}
}

// A fault selects the traffic it names: its peers (by name or address), and packets or
// streams only when it says so.
func TestFaultSelectsItsTraffic(t *testing.T) {
	a := memberlist.Address{Name: "node-2", Addr: "127.0.0.1:7002"}
	for _, c := range []struct {
		what           string
		f              Fault
		packet, stream bool
	}{
		{"none", Fault{}, false, false},
		{"everything", Fault{Mode: FaultDrop}, true, true},
		{"packets only", Fault{Mode: FaultDrop, PacketsOnly: true}, true, false},
		{"streams only", Fault{Mode: FaultDrop, StreamsOnly: true}, false, true},
		{"the peer by name", Fault{Mode: FaultDrop, Peers: []string{"node-2"}}, true, true},
		{"the peer by address", Fault{Mode: FaultDrop, Peers: []string{"127.0.0.1:7002"}}, true, true},
		{"another peer", Fault{Mode: FaultDrop, Peers: []string{"node-3", "127.0.0.1:7003"}}, false, false},
	} {
		if got := c.f.selects(a, false); got != c.packet {
			t.Errorf("%s: selects a packet %v", c.what, got)
		}
		if got := c.f.selects(a, true); got != c.stream {
			t.Errorf("%s: selects a stream %v", c.what, got)
		}
	}
}
