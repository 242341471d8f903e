package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/agent"
	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/demo"
	"github.com/farewell-project/farewell/embedded"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/worker"
	"github.com/farewell-project/farewell/workflows"
)

// faultSpec is what --fault asks of one node.
type faultSpec struct {
	gossip *cluster.Fault
	steps  map[string]activities.StepFault
	// heartbeatStopped: the node never publishes its application heartbeat (alive for
	// memberlist, blocked for Farewell).
	heartbeatStopped bool
}

// parseFault reads TARGET=MODE: gossip=stall|drop|isolate|delay:D, STEP=hang|error or
// heartbeat=stop.
func parseFault(spec faultSpec, v string) (faultSpec, error) {
	target, mode, ok := strings.Cut(v, "=")
	if !ok {
		return spec, usageError("--fault %q: want gossip=stall, STEP=hang|error or heartbeat=stop", v)
	}
	if target == "heartbeat" {
		if mode != "stop" {
			return spec, usageError("--fault %q: the heartbeat fault is heartbeat=stop", v)
		}
		spec.heartbeatStopped = true
		return spec, nil
	}
	if target == "gossip" {
		f, err := cluster.ParseFaultMode(mode)
		if err != nil {
			return spec, usageError("--fault %q: %v", v, err)
		}
		spec.gossip = &f
		return spec, nil
	}
	step, fault, err := activities.ParseStepFault(v)
	if err != nil {
		return spec, usageError("--fault: %v (or gossip=stall)", err)
	}
	if spec.steps == nil {
		spec.steps = map[string]activities.StepFault{}
	}
	spec.steps[step] = fault
	return spec, nil
}

// observerTarget names the observer in dev's --fault: its gossip fault is armed, and
// SIGUSR1 switches it on.
const observerTarget = "observer"

// parseNodeFaults reads --fault values of the form NODE:TARGET=MODE.
func parseNodeFaults(values []string, nodes int) (map[string]faultSpec, error) {
	out := map[string]faultSpec{}
	for _, v := range values {
		node, rest, ok := strings.Cut(v, ":")
		if !ok || node == "" || strings.Contains(node, "=") {
			return nil, usageError("--fault %q: want NODE:gossip=stall or NODE:STEP=hang|error", v)
		}
		if !slices.Contains(nodeNames(nodes), node) && node != observerTarget {
			return nil, usageError("--fault %q: unknown node %q (demo nodes are node-1 … node-%d, or %s)", v, node, nodes, observerTarget)
		}
		spec, err := parseFault(out[node], rest)
		if err != nil {
			return nil, err
		}
		out[node] = spec
	}
	return out, nil
}

func nodeNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("node-%d", i+1)
	}
	return names
}

// stackOptions describe an embedded stack for `dev` and `demo`.
type stackOptions struct {
	port, uiPort, clusterPort, nodes int
	db                               string
	faults                           map[string]faultSpec
	serverLog                        slog.Level
}

// devNode is one demo node of the embedded stack.
type devNode struct {
	agent *agent.Agent
	http  string
	steps *activities.Faults
}

// stack is everything `farewell dev` runs in one process.
type stack struct {
	log      *slog.Logger
	srv      embedded.Server
	client   client.Client
	orch     *worker.Orchestrating
	observer *cluster.Member
	nodes    map[string]*devNode
	names    []string
}

// startStack starts the embedded server and UI, the orchestrator worker with its
// observer member, and the demo nodes with their workers and services.
func (a *app) startStack(ctx context.Context, o stackOptions) (_ *stack, err error) {
	s := &stack{log: a.logger, nodes: map[string]*devNode{}}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	tc := a.cfg.Temporal
	tc.APIKey, tc.TLS = "", config.TLS{}
	var serverTLS *embedded.TLS
	if dt := a.cfg.Dev.TLS; dt.Cert != "" {
		// The stack's own clients connect as temporal.tls.* says.
		tc.TLS = a.cfg.Temporal.TLS
		tc.TLS.Enabled = true
		serverTLS = &embedded.TLS{Cert: dt.Cert, Key: dt.Key, ClientCA: dt.ClientCA, ClientCert: tc.TLS.Cert, ClientKey: tc.TLS.Key,
			CA: tc.TLS.CA, ServerName: tc.TLS.ServerName}
	}
	if a.opts.Server == nil {
		return nil, errNoServer
	}
	s.srv, err = a.opts.Server(ctx, embedded.Options{
		Port: o.port, UIPort: o.uiPort, DBPath: o.db, InMemory: o.db == "",
		SearchAttributes: workflows.SearchAttributes(),
		Logger:           a.logger.With("component", "temporal-server"),
		LogLevel:         o.serverLog,
		TLS:              serverTLS,
	})
	if err != nil {
		return nil, err
	}
	tc.Address, tc.Namespace = s.srv.Address(), s.srv.Namespace()
	dopts, err := a.dialOptions()
	if err != nil {
		return nil, err
	}
	s.client, err = starter.Dial(ctx, agent.Connection(tc), dopts)
	if err != nil {
		return nil, err
	}

	oc := a.cfg
	oc.Cluster.Name, oc.Cluster.Bind, oc.Cluster.Advertise = "farewell-observer", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.clusterPort)), ""
	oc.Temporal = tc
	asm, _, err := agent.Orchestrator(oc)
	if err != nil {
		return nil, err
	}
	if asm.Member.EvictSigner == nil {
		// The stack's own eviction key: its demo nodes check evictions against it.
		if asm.Member.EvictSigner, _, err = cluster.EvictKeyPair(); err != nil {
			return nil, err
		}
	}
	verifyKey := base64.StdEncoding.EncodeToString(asm.Member.EvictSigner.Public().(ed25519.PublicKey))
	asm.Logger, asm.Meter = a.logger, a.tel.Meter()
	s.orch, err = worker.StartOrchestrator(ctx, s.client, asm)
	if err != nil {
		return nil, err
	}
	s.observer = s.orch.Observer
	if f := o.faults[observerTarget].gossip; f != nil {
		s.observer.Transport().Arm(*f)
		a.logger.Warn("observer gossip fault armed: SIGUSR1 switches it on", "fault", f.String())
	}

	for _, name := range nodeNames(o.nodes) {
		cfg := a.cfg
		cfg.Temporal = tc
		cfg.Cluster.Name, cfg.Cluster.Bind, cfg.Cluster.Advertise = name, "127.0.0.1:0", ""
		cfg.Cluster.Join = []string{s.observer.Addr()}
		cfg.Cluster.EvictVerifyKey = verifyKey
		spec := o.faults[name]
		steps := &activities.Faults{}
		for step, f := range spec.steps {
			steps.Set(step, f)
		}
		ag, err := agent.Start(ctx, agent.Options{Config: cfg, Logger: a.logger, Client: s.client, GossipFault: spec.gossip,
			StepFaults: steps, Tracer: a.tel.Tracer()})
		if err != nil {
			return nil, fmt.Errorf("demo node %s: %w", name, err)
		}
		svc, err := demo.Register(ag.Member(), "", a.logger.With("node", name))
		if err != nil {
			ag.Close()
			return nil, err
		}
		if spec.heartbeatStopped {
			ag.Member().StopHeartbeat()
		}
		s.nodes[name] = &devNode{agent: ag, http: svc.HTTPAddr, steps: steps}
		s.names = append(s.names, name)
	}
	return s, nil
}

// readyLine is what `dev` and `demo` print once everything serves.
func (s *stack) readyLine() string {
	nodes := "none"
	if len(s.names) > 0 {
		nodes = strings.Join(s.names, ",")
	}
	db := s.srv.DBPath()
	if db == "" {
		db = "memory"
	}
	return fmt.Sprintf("ready ui=%s grpc=%s namespace=%s db=%s cluster=%s nodes=%s", s.srv.UIURL(), s.srv.Address(), s.srv.Namespace(), db, s.observer.Addr(), nodes)
}

func (s *stack) stop() {
	for _, n := range s.nodes {
		n.agent.Close()
	}
	if s.orch != nil {
		s.orch.Stop(0)
	}
	if s.client != nil {
		s.client.Close()
	}
	if s.srv != nil {
		s.srv.Stop()
	}
}

// errNoServer: this binary was built without the embedded server.
var errNoServer = errors.New("this binary carries no Temporal server (farewell-node runs on nodes): run farewell dev from the full farewell binary, or point temporal.address at a Temporal cluster")

// devServerPortError turns a taken port into a message naming the flag to change.
func devServerPortError(err error) error {
	if errors.Is(err, embedded.ErrPortInUse) {
		return fmt.Errorf("%w (is another farewell dev running? choose other ports with --port, --ui-port, --cluster-port)", err)
	}
	return err
}
