package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/agent"
	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/demo"
	"github.com/farewell-project/farewell/devserver"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/telemetry"
	"github.com/farewell-project/farewell/worker"
	"github.com/farewell-project/farewell/workflows"
)

// fastTimings makes memberlist's failure detection and gossip quick on loopback.
func fastTimings(c *memberlist.Config) {
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.PushPullInterval = time.Second
	c.SuspicionMult = 2
	c.TCPTimeout = time.Second
	c.GossipToTheDeadTime = 2 * time.Second
}

// testConfig is the default configuration with short timeouts, so that every failure
// path ends within seconds.
func testConfig() config.Config {
	c := config.DefaultConfig()
	c.Cluster.Bind = "127.0.0.1:0"
	c.Cluster.Profile = config.ProfileLocal
	c.Cluster.HeartbeatInterval = 100 * time.Millisecond
	c.Cluster.HeartbeatExpiration = time.Second
	step := func(startToClose time.Duration) config.Step {
		return config.Step{StartToClose: startToClose, ScheduleToStart: 2 * time.Second, MaxAttempts: 2,
			Backoff: 100 * time.Millisecond, OnFailure: plan.Continue}
	}
	c.Shutdown.Steps = map[string]config.Step{
		plan.SetGracefullyLeft: step(time.Second),
		plan.StopHeartbeat:     step(time.Second),
		plan.Deregister:        step(2 * time.Second),
		plan.StopServices:      step(3 * time.Second),
	}
	c.Shutdown.ConvergenceTimeout = 5 * time.Second
	return c
}

// testNode is a node of the end-to-end cluster: a real member with its worker and
// demo services, in this process.
type testNode struct {
	agent  *agent.Agent
	http   string
	faults *activities.Faults
}

func (n *testNode) member() *cluster.Member { return n.agent.Member() }

// e2eStack is an embedded Temporal server, the orchestrator worker with its observer,
// and nodes, all real, on loopback.
type e2eStack struct {
	t        testing.TB
	cfg      config.Config
	srv      *devserver.Server
	client   client.Client
	observer *cluster.Member
	worker   sdkworker.Worker
	nodes    map[string]*testNode
	starter  *starter.Starter
	tel      *telemetry.Telemetry
}

func newStack(t testing.TB, cfg config.Config, nodes int) *e2eStack {
	t.Helper()
	return newStackWith(t, cfg, nodes, nil)
}

// newStackWith builds the stack with tel's tracing and metrics on its client and nodes.
func newStackWith(t testing.TB, cfg config.Config, nodes int, tel *telemetry.Telemetry) *e2eStack {
	t.Helper()
	return newStackOn(t, cfg, nodes, devserver.Options{}, tel)
}

// newStackOn builds the stack on a server started with srvOpts; every client connects
// as cfg.Temporal says (TLS, API key), to the server's address.
func newStackOn(t testing.TB, cfg config.Config, nodes int, srvOpts devserver.Options, tel *telemetry.Telemetry) *e2eStack {
	t.Helper()
	s := &e2eStack{t: t, cfg: cfg, nodes: map[string]*testNode{}, tel: tel}
	s.srv = startServer(t, srvOpts)
	s.cfg.Temporal.Address, s.cfg.Temporal.Namespace = s.srv.Address(), s.srv.Namespace()
	dopts := starter.DialOptions{Logger: testLogger(t)}
	if tel != nil {
		interceptors, err := tel.ClientInterceptors()
		if err != nil {
			t.Fatal(err)
		}
		dopts.Interceptors, dopts.MetricsHandler = interceptors, tel.MetricsHandler()
	}
	c, err := starter.Dial(context.Background(), agent.Connection(s.cfg.Temporal), dopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s.client = c

	// The orchestrator as `farewell worker` and `farewell dev` build it: its budget and
	// watchdog included.
	oc := s.cfg
	oc.Cluster.Name = "observer"
	asm, _, err := agent.Orchestrator(oc)
	if err != nil {
		t.Fatal(err)
	}
	asm.Logger, asm.Member.Tune = testLogger(t), fastTimings
	orch, err := worker.StartOrchestrator(context.Background(), s.client, asm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { orch.Stop(0) })
	s.observer, s.worker = orch.Observer, orch.Worker
	s.starter = starter.New(s.client, starter.Options{Namespace: s.srv.Namespace(), Logger: testLogger(t)})
	for i := 1; i <= nodes; i++ {
		s.addNode(fmt.Sprintf("node-%d", i), nil)
	}
	s.waitMembers()
	return s
}

// newObserver starts an observer member with fast timings, closed when t ends.
func newObserver(t testing.TB, c config.Cluster, name string) *cluster.Member {
	t.Helper()
	c.Name = name
	o, _, err := agent.MemberOptions(c, agent.ForOrchestrator)
	if err != nil {
		t.Fatal(err)
	}
	o.Logger, o.Tune = testLogger(t), fastTimings
	m, err := cluster.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// addNode starts a node that joins through the observer. gossip, if set, is armed.
func (s *e2eStack) addNode(name string, gossip *cluster.Fault) *testNode {
	s.t.Helper()
	return s.addNodeWith(name, func(o *agent.Options) { o.GossipFault = gossip })
}

// addNodeWith is addNode with the agent's options changed by with.
func (s *e2eStack) addNodeWith(name string, with func(*agent.Options)) *testNode {
	s.t.Helper()
	cfg := s.cfg
	cfg.Cluster.Name = name
	cfg.Cluster.Join = []string{s.observer.Addr()}
	faults := &activities.Faults{}
	opts := agent.Options{Config: cfg, Logger: testLogger(s.t), Client: s.client, StepFaults: faults, Tune: fastTimings}
	if s.tel != nil {
		opts.Tracer = s.tel.Tracer()
	}
	with(&opts)
	ag, err := agent.Start(context.Background(), opts)
	if err != nil {
		s.t.Fatalf("node %s: %v", name, err)
	}
	s.t.Cleanup(ag.Close)
	svc, err := demo.Register(ag.Member(), "", testLogger(s.t))
	if err != nil {
		s.t.Fatal(err)
	}
	n := &testNode{agent: ag, http: svc.HTTPAddr, faults: faults}
	s.nodes[name] = n
	return n
}

// members are every live cluster member but the node named: the observer and nodes.
func (s *e2eStack) members(except string) []*cluster.Member {
	out := []*cluster.Member{s.observer}
	for name, n := range s.nodes {
		if name == except {
			continue
		}
		_, _, evicted := n.member().Evicted()
		if left, _ := n.member().Left(); !left && !evicted {
			out = append(out, n.member()) // an evicted member is fencing itself: no survivor
		}
	}
	return out
}

func (s *e2eStack) waitMembers() {
	s.t.Helper()
	want := len(s.nodes) + 1
	eventually(s.t, 30*time.Second, "every member to see every other", func() bool {
		for _, m := range s.members("") {
			alive := 0
			for _, info := range m.Members() {
				if info.State == cluster.StateAlive {
					alive++
				}
			}
			if alive < want {
				return false
			}
		}
		return true
	})
}

// shutdown runs the shutdown of node through the workflow and returns its report.
func (s *e2eStack) shutdown(t testing.TB, node string) *workflows.ShutdownReport {
	t.Helper()
	_, report, err := s.run(t, workflows.ShutdownRequest{Node: node, Reason: "test", RequestedBy: t.Name()})
	if err != nil {
		t.Fatalf("shutdown of %s: %v", node, err)
	}
	t.Logf("report of %s: outcome %s in %s, steps %+v", node, report.Outcome, report.Total, report.Steps)
	return report
}

// run starts a shutdown and waits for its report; a refused shutdown is an error.
func (s *e2eStack) run(t testing.TB, req workflows.ShutdownRequest) (starter.Run, *workflows.ShutdownReport, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := s.starter.Shutdown(ctx, req)
	if err != nil {
		t.Fatalf("start shutdown of %s: %v", req.Node, err)
	}
	report, err := s.starter.Wait(ctx, run, nil)
	return run, report, err
}

// withPolicy is the override that sets step's on_failure to policy.
func withPolicy(step string, policy plan.Policy) *plan.Override {
	return &plan.Override{Steps: map[string]plan.StepOverride{step: {OnFailure: &policy}}}
}

// assertInvariant checks what every shutdown must end in: the node out of the cluster
// for every surviving member and no longer serving, or (aborted) back in service:
// alive for everyone, heartbeating, serving. Never leaving, silent or not serving.
func (s *e2eStack) assertInvariant(t testing.TB, node string, r *workflows.ShutdownReport) {
	t.Helper()
	n := s.nodes[node]
	ctx := context.Background()
	switch {
	case r.Outcome.Out():
		for _, m := range s.members(node) {
			if st := stateOf(m, node); !st.Out() {
				t.Errorf("invariant: %s ended %s, but %s sees it %s", node, r.Outcome, m.Name(), st)
			}
		}
		if left, _ := n.member().Left(); !left {
			t.Errorf("invariant: %s ended %s, but its memberlist still runs", node, r.Outcome)
		}
		if demo.Serving(ctx, n.http) {
			t.Errorf("invariant: %s ended %s, but it still serves", node, r.Outcome)
		}
	case r.Outcome == plan.Aborted:
		for _, m := range s.members(node) {
			if st := stateOf(m, node); st != cluster.StateAlive {
				t.Errorf("invariant: %s was rolled back, but %s sees it %s", node, m.Name(), st)
			}
		}
		if !n.member().HeartbeatRunning() || !demo.Serving(ctx, n.http) {
			t.Errorf("invariant: %s was rolled back, but heartbeat %v, serving %v", node, n.member().HeartbeatRunning(), demo.Serving(ctx, n.http))
		}
		seq := heartbeatSeen(s.observer, node)
		eventually(t, 10*time.Second, node+"'s heartbeat to advance at the observer", func() bool {
			info, _ := s.observer.Member(node)
			return heartbeatSeen(s.observer, node) > seq && !info.Blocked
		})
	default:
		t.Errorf("invariant: %s ended %s: neither out nor back in service (%s)", node, r.Outcome, r.Error)
	}
}

func stateOf(m *cluster.Member, node string) cluster.State {
	info, ok := m.Member(node)
	if !ok {
		return ""
	}
	return info.State
}

func heartbeatSeen(m *cluster.Member, node string) uint64 {
	info, _ := m.Member(node)
	return info.HeartbeatSeq
}

func stall() cluster.Fault { return cluster.Fault{Mode: cluster.FaultStall} }
