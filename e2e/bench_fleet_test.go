package e2e

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/farewell-project/farewell/activities"
)

// trivialFleet is a cluster whose nodes' steps do nothing but change a state in memory:
// what P4 needs to measure the workflow's own cost, apart from gossip. It is the
// orchestrator's Observer, and each of its nodes is an activities.Member.
type trivialFleet struct {
	mu    sync.Mutex
	nodes map[string]*trivialNode
}

var _ activities.Observer = (*trivialFleet)(nil)

type trivialNode struct {
	fleet      *trivialFleet
	name, inst string
	state      string
	heartbeat  bool
	left       bool
	evicted    string
}

var _ activities.Member = (*trivialNode)(nil)

func newTrivialFleet() *trivialFleet { return &trivialFleet{nodes: map[string]*trivialNode{}} }

func (f *trivialFleet) add(name string) *trivialNode {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := &trivialNode{fleet: f, name: name, inst: fmt.Sprintf("%012x", len(f.nodes)+1), state: activities.StateAlive, heartbeat: true}
	f.nodes[name] = n
	return n
}

func (f *trivialFleet) Name() string { return "observer" }

func (f *trivialFleet) info(n *trivialNode) activities.MemberInfo {
	return activities.MemberInfo{Name: n.name, Addr: "127.0.0.1:1", Role: activities.RoleNode, State: n.state, Instance: n.inst}
}

func (f *trivialFleet) Member(name string) (activities.MemberInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nodes[name]
	if !ok {
		return activities.MemberInfo{}, false
	}
	return f.info(n), true
}

func (f *trivialFleet) Members() []activities.MemberInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []activities.MemberInfo
	for _, n := range f.nodes {
		out = append(out, f.info(n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *trivialFleet) Evict(_ context.Context, node, _, reason string) (activities.EvictResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nodes[node]
	n.state, n.evicted = activities.StateEvicted, reason
	return activities.EvictResult{Confirmed: true}, nil
}

func (f *trivialFleet) WaitConverged(_ context.Context, q activities.ConvergenceQuery, _ time.Duration, progress func(activities.Convergence)) (activities.Convergence, error) {
	f.mu.Lock()
	state := f.nodes[q.Node].state
	f.mu.Unlock()
	out := state == activities.StateLeft || state == activities.StateEvicted
	c := activities.Convergence{Status: "converged", Converged: out, Views: map[string]string{"observer": state}, Answered: 1, Needed: 1}
	if !out {
		c.Status, c.Pending = "pending", []string{"observer"}
	}
	if progress != nil {
		progress(c)
	}
	return c, nil
}

func (n *trivialNode) Name() string     { return n.name }
func (n *trivialNode) Instance() string { return n.inst }

func (n *trivialNode) State() string {
	n.fleet.mu.Lock()
	defer n.fleet.mu.Unlock()
	return n.state
}

func (n *trivialNode) SetState(_ context.Context, state string) error {
	n.fleet.mu.Lock()
	defer n.fleet.mu.Unlock()
	n.state = state
	return nil
}

func (n *trivialNode) HeartbeatRunning() bool {
	n.fleet.mu.Lock()
	defer n.fleet.mu.Unlock()
	return n.heartbeat
}

func (n *trivialNode) StartHeartbeat() { n.setHeartbeat(true) }
func (n *trivialNode) StopHeartbeat()  { n.setHeartbeat(false) }

func (n *trivialNode) setHeartbeat(on bool) {
	n.fleet.mu.Lock()
	defer n.fleet.mu.Unlock()
	n.heartbeat = on
}

func (n *trivialNode) Leave(time.Duration) error {
	n.fleet.mu.Lock()
	defer n.fleet.mu.Unlock()
	n.state, n.left, n.heartbeat = activities.StateLeft, true, false
	return nil
}

func (n *trivialNode) Left() (bool, error) {
	n.fleet.mu.Lock()
	defer n.fleet.mu.Unlock()
	return n.left, nil
}

func (n *trivialNode) Evicted() (string, string, bool) {
	n.fleet.mu.Lock()
	defer n.fleet.mu.Unlock()
	return "observer", n.evicted, n.evicted != ""
}

func (n *trivialNode) Services() []string        { return nil }
func (n *trivialNode) RunningServices() []string { return nil }

func (n *trivialNode) StopServices(context.Context, func(activities.ServiceResult)) []activities.ServiceResult {
	return nil
}

func (n *trivialNode) Terminate(context.Context) []activities.ServiceResult {
	_ = n.Leave(0)
	return nil
}
