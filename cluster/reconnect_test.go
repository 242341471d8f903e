package cluster

import (
	"testing"
	"time"

	"github.com/farewell-project/farewell/internal/testkit"
)

// A partition that lasts longer than memberlist gossips to the dead leaves the two
// halves apart for good after the network heals — unless members keep trying to
// rejoin the ones they see dead.
func TestAPartitionHealsAfterMemberlistForgotTheDead(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reconnect time.Duration
		heals     bool
	}{
		{"memberlist alone", -1, false},
		{"with reconnects", 300 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			members := newTestCluster(t, 4, func(o *Options) { o.ReconnectInterval = tc.reconnect })
			left, right := members[:2], members[2:]
			names := func(ms []*Member) []string {
				var out []string
				for _, m := range ms {
					out = append(out, m.Name(), m.Addr())
				}
				return out
			}
			for _, m := range left {
				m.Transport().Set(Fault{Mode: FaultDrop, Peers: names(right)})
			}
			for _, m := range right {
				m.Transport().Set(Fault{Mode: FaultDrop, Peers: names(left)})
			}
			// Apart for longer than GossipToTheDeadTime (2 s in fastTimings).
			waitAll(t, members, "each half to see the other dead for 3 s", func(m *Member) bool {
				other := right
				if m == right[0] || m == right[1] {
					other = left
				}
				for _, o := range other {
					info, _ := m.Member(o.Name())
					if info.State != StateDead || time.Since(info.Since) < 3*time.Second {
						return false
					}
				}
				return true
			})
			for _, m := range members {
				m.Transport().Clear()
			}
			merged := func() bool {
				for _, m := range members {
					for _, o := range members {
						if stateOf(m, o.Name()) != StateAlive {
							return false
						}
					}
				}
				return true
			}
			if got := testkit.Within(10*time.Second, merged); got != tc.heals {
				t.Fatalf("10 s after the heal, merged = %v; want %v", got, tc.heals)
			}
		})
	}
}
