// Package agent is what a host application embeds to take part in Farewell: a cluster
// member with the host's services registered on it, the node's Temporal worker that
// runs its shutdown steps, and an orderly way out on SIGTERM — the durable shutdown
// workflow when Temporal can be reached, the same plan run locally when it cannot.
// Done tells the host when its node has nothing left to serve, whoever ended it: its
// own SIGTERM, a shutdown started from the CLI or a drain, or a peer's eviction.
//
// It never links the Temporal server: only package devserver does.
package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/worker"
	"github.com/farewell-project/farewell/workflows"
)

// Options configure an Agent.
type Options struct {
	// Config supplies cluster.* (membership), temporal.* (the connection) and
	// shutdown.* (the plan run locally when Temporal cannot be reached).
	Config config.Config
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Client, if set, is the Temporal connection to use (the agent does not close it).
	// nil means dial temporal.*, retrying in the background while the node serves.
	Client client.Client
	// Offline runs without Temporal: shutdowns run the plan locally.
	Offline bool
	// Dial adds interceptors and metrics to the connection the agent makes.
	Dial starter.DialOptions
	// GossipFault, if set, is armed on the member's transport and switches on when its
	// shutdown begins (demos and tests of a hung gossip layer).
	GossipFault *cluster.Fault
	// StepFaults, if set, injects failures into the node's steps (demos and tests).
	StepFaults *activities.Faults
	// Tune adjusts memberlist's configuration (tests use faster timings).
	Tune func(*memberlist.Config)
	// Tracer makes the spans of the node's real work; nil means the global provider's.
	Tracer trace.Tracer
	// Steps are the host's own shutdown steps, run among the built-in ones (see Step).
	Steps []Step
}

// Step is a shutdown step of the host's own: draining connections, handing over
// leadership, flushing state. It runs on the node's worker as an activity under the
// same rules as the built-in steps — its timeouts and attempts, its failure policy, the
// force fallback, the local plan when Temporal is away — and shows in the report, the
// UI and the traces like them. shutdown.steps.NAME.* in the node's configuration
// overrides its spec.
type Step struct {
	// Name: lower-case letters, digits and '-', not one Farewell uses.
	Name string
	// Before or After names the built-in step it runs next to (plan.SetGracefullyLeft,
	// plan.StopHeartbeat, plan.Deregister, plan.StopServices); exactly one is set.
	Before, After string
	// Run does the work; it must honour ctx and be safe to run again.
	Run func(ctx context.Context) error
	// StartToClose bounds one attempt; 0 means 10s.
	StartToClose time.Duration
	// MaxAttempts counts the first; 0 means 2.
	MaxAttempts int
	// Backoff is the wait before the second attempt; 0 means 100ms.
	Backoff time.Duration
	// OnFailure is what the shutdown does when the step ends without succeeding:
	// plan.Continue (the default), plan.Abort or plan.Force.
	OnFailure plan.Policy
}

// LocalPlan is the plan a node configured by cfg with the host's steps runs: the
// shutdown.* settings with the steps in place (its GracePeriod is what the node's process
// manager should allow). It refuses what Start refuses.
func LocalPlan(cfg config.Config, steps []Step) (plan.Plan, error) {
	p, err := cfg.Shutdown.Plan()
	if err != nil {
		return p, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	p, _, _, err = hostSteps(p, steps, cfg.Shutdown.HostSteps())
	return p, err
}

// hostSteps checks the host's steps against the plan and applies the configuration's
// overrides of them; it returns the plan with them in place.
func hostSteps(p plan.Plan, steps []Step, overrides map[string]config.Step) (plan.Plan, []plan.HostStep, map[string]activities.HostStepFunc, error) {
	var host []plan.HostStep
	funcs := map[string]activities.HostStepFunc{}
	for _, s := range steps {
		spec := plan.StepSpec{Name: s.Name, StartToClose: cmp.Or(s.StartToClose, 10*time.Second), ScheduleToStart: 5 * time.Second,
			MaxAttempts: cmp.Or(s.MaxAttempts, 2), Backoff: cmp.Or(s.Backoff, 100*time.Millisecond), OnFailure: cmp.Or(s.OnFailure, plan.Continue)}
		if o, ok := overrides[s.Name]; ok {
			spec = o.Over(spec)
		}
		if s.Run == nil {
			return p, nil, nil, fmt.Errorf("step %q: no Run func", s.Name)
		}
		host = append(host, plan.HostStep{Spec: spec, Before: s.Before, After: s.After})
		funcs[s.Name] = s.Run
	}
	for _, name := range slices.Sorted(maps.Keys(overrides)) {
		if _, ok := funcs[name]; !ok && !plan.IsBuiltin(name) {
			return p, nil, nil, fmt.Errorf("%w: shutdown.steps.%s: no such step (this host registered %d: %s)", config.ErrInvalid, name, len(steps), strings.Join(slices.Sorted(maps.Keys(funcs)), ", "))
		}
	}
	merged, err := plan.WithHostSteps(p, host)
	if err != nil {
		return p, nil, nil, fmt.Errorf("host steps: %w", err)
	}
	return merged, host, funcs, nil
}

// redialEvery is the wait between attempts to reach Temporal.
const redialEvery = 2 * time.Second

// Agent is a node's membership in the cluster, its worker, and its way out.
type Agent struct {
	opts   Options
	plan   plan.Plan
	log    *slog.Logger
	member *cluster.Member
	acts   *activities.NodeActivities

	mu          sync.Mutex
	client      client.Client
	ownsClient  bool
	worker      sdkworker.Worker
	stopDial    context.CancelFunc
	dialDone    chan struct{}
	shuttingOwn bool // a Shutdown call is under way: its report ends the agent

	done     chan struct{}
	doneOnce sync.Once
	exit     Exit
	stop     chan struct{} // closed by Close: the watcher ends
}

// Start joins the cluster as a node (through cluster.join, if set), starts the
// heartbeat and the node's worker. If Temporal cannot be reached the node still serves
// as a member; the agent keeps trying in the background and says so.
func Start(ctx context.Context, opts Options) (*Agent, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p, err := opts.Config.Shutdown.Plan()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	p, host, funcs, err := hostSteps(p, opts.Steps, opts.Config.Shutdown.HostSteps())
	if err != nil {
		return nil, err
	}
	mopts, open, err := MemberOptions(opts.Config.Cluster, ForNode)
	if err != nil {
		return nil, err
	}
	for _, w := range open {
		opts.Logger.Warn("insecure cluster membership: " + w)
	}
	a := &Agent{opts: opts, plan: p, dialDone: make(chan struct{}), done: make(chan struct{}), stop: make(chan struct{})}
	mopts.Logger, mopts.Tune, mopts.Steps = opts.Logger, opts.Tune, len(host)
	mopts.OnEvicted = a.onEvicted
	m, err := cluster.New(mopts)
	if err != nil {
		return nil, err
	}
	if err := m.Join(ctx, opts.Config.Cluster.Join); err != nil {
		m.Close()
		return nil, err
	}
	a.member, a.log = m, opts.Logger.With("node", m.Name())
	a.acts = &activities.NodeActivities{Member: worker.NodeMember(m), Faults: opts.StepFaults, Logger: opts.Logger, Tracer: opts.Tracer, Plan: p,
		Host: funcs, HostPlan: host}
	if opts.GossipFault != nil {
		m.Transport().Arm(*opts.GossipFault)
		a.log.Warn("gossip fault armed: it switches on when this node's shutdown begins", "fault", opts.GossipFault.String())
	}
	m.StartHeartbeat()
	switch {
	case opts.Client != nil:
		close(a.dialDone)
		if err := a.startWorker(opts.Client, false); err != nil {
			m.Close()
			return nil, err
		}
	case opts.Offline:
		close(a.dialDone)
	default:
		dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		a.stopDial = cancel
		go a.connect(dctx)
	}
	go a.watch()
	return a, nil
}

// Member is the agent's cluster member; register services on Member().Services().
func (a *Agent) Member() *cluster.Member { return a.member }

// Activities are the node's step implementations.
func (a *Agent) Activities() *activities.NodeActivities { return a.acts }

// Plan is the plan this node runs alone when it cannot reach Temporal.
func (a *Agent) Plan() plan.Plan { return a.plan.Clone() }

func (a *Agent) connect(ctx context.Context) {
	defer close(a.dialDone)
	warned := false
	for {
		c, err := starter.Dial(ctx, Connection(a.opts.Config.Temporal), starter.DialOptions{
			Logger: a.opts.Logger, Interceptors: a.opts.Dial.Interceptors, MetricsHandler: a.opts.Dial.MetricsHandler,
		})
		if err == nil {
			if err := a.startWorker(c, true); err != nil {
				a.log.Error("node worker did not start", "error", err)
				c.Close()
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !warned {
			a.log.Warn("Temporal cannot be reached; serving as a member and retrying in the background",
				"address", a.opts.Config.Temporal.Address, "every", redialEvery, "error", err)
			warned = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(redialEvery):
		}
	}
}

func (a *Agent) startWorker(c client.Client, owns bool) error {
	w := worker.NewNode(c, a.acts)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker of node %s: %w", a.member.Name(), err)
	}
	a.mu.Lock()
	a.client, a.ownsClient, a.worker = c, owns, w
	a.mu.Unlock()
	a.log.Info("node worker serving", "task_queue", workflows.NodeTaskQueue(a.member.Name()))
	return nil
}

// StopWorker stops the node's worker; the member stays. Demos use it to show a node
// whose worker is gone.
func (a *Agent) StopWorker() {
	a.mu.Lock()
	w := a.worker
	a.worker = nil
	a.mu.Unlock()
	if w != nil {
		w.Stop()
	}
}

func (a *Agent) temporal() client.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.client
}

// Shutdown takes the node out of the cluster. With Temporal it starts (or joins) the
// node's shutdown workflow — with the orchestrator's plan — and waits for it, bounded
// by the plan's budget, while the node's worker runs the steps; without, or if the
// workflow cannot be started or followed, it runs the node's own plan locally. It
// returns the report either way; a report that says the node is out ends the agent.
func (a *Agent) Shutdown(ctx context.Context, reason, requestedBy string) *workflows.ShutdownReport {
	a.mu.Lock()
	a.shuttingOwn = true
	a.mu.Unlock()
	r := a.shutdown(ctx, reason, requestedBy)
	a.mu.Lock()
	a.shuttingOwn = false
	a.mu.Unlock()
	if r.Outcome.Out() {
		a.finish(Exit{Outcome: r.Outcome, Report: r, Why: "its shutdown ended " + string(r.Outcome)})
	}
	return r
}

// Bounds of a node's own shutdown (its SIGTERM) when Temporal goes away.
const (
	// startWithin bounds the start of the shutdown workflow: a server that does not
	// answer by then is taken to be unreachable.
	startWithin = 3 * time.Second
	// checkEvery is how often the node asks Temporal about its running shutdown, and
	// lostAfter how long Temporal may not answer before the node finishes alone.
	checkEvery = 500 * time.Millisecond
	lostAfter  = 3 * time.Second
	// graceMargin is kept between the end of the local plan and the grace period.
	graceMargin = time.Second
)

func (a *Agent) shutdown(ctx context.Context, reason, requestedBy string) *workflows.ShutdownReport {
	deadline := time.Now().Add(a.opts.Config.Shutdown.GracePeriod - graceMargin)
	c := a.temporal()
	if c == nil {
		a.log.Warn("Temporal cannot be reached: running the shutdown plan locally, with the same timeouts")
		return a.shutdownLocal(ctx, reason, requestedBy, deadline, false)
	}
	st := starter.New(c, starter.Options{Namespace: a.opts.Config.Temporal.Namespace, Logger: a.log})
	sctx, cancel := context.WithTimeout(ctx, startWithin)
	// The node is going away whatever the budget says: it never holds its own shutdown back.
	run, err := st.Shutdown(sctx, workflows.ShutdownRequest{Node: a.member.Name(), Reason: reason, RequestedBy: requestedBy, Unblockable: true})
	cancel()
	if err != nil {
		a.log.Warn("shutdown workflow could not be started: running the plan locally", "error", err)
		return a.shutdownLocal(ctx, reason, requestedBy, deadline, false)
	}
	a.log.Info("shutdown workflow running; the node's worker serves its steps", "workflow_id", run.WorkflowID, "run_id", run.RunID, "joined", run.Joined)
	report, err := a.follow(ctx, st, run)
	if err == nil {
		return report
	}
	if errors.Is(err, starter.ErrUnknownNode) {
		a.log.Error("the orchestrator does not know this node; running the plan locally", "error", err)
		return a.shutdownLocal(ctx, reason, requestedBy, deadline, false)
	}
	// The workflow will resume when Temporal comes back; stop serving its steps, so
	// that the local plan is the one thing driving this node from here.
	a.log.Warn("lost Temporal during the shutdown: finishing it here, within the grace period",
		"error", err, "grace_ends_in", time.Until(deadline).Round(time.Millisecond))
	a.StopWorker()
	return a.shutdownLocal(ctx, reason, requestedBy, deadline, true)
}

// errTemporalLost: Temporal did not answer about the running shutdown for lostAfter.
var errTemporalLost = errors.New("no answer from Temporal")

// follow waits for the run's report, asking Temporal about it every checkEvery: when
// Temporal does not answer for lostAfter, it gives up with errTemporalLost.
func (a *Agent) follow(ctx context.Context, st *starter.Starter, run starter.Run) (*workflows.ShutdownReport, error) {
	wctx, cancel := context.WithTimeout(ctx, a.plan.Budget()+30*time.Second)
	defer cancel()
	type result struct {
		r   *workflows.ShutdownReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := st.Wait(wctx, run, nil)
		done <- result{r, err}
	}()
	tick := time.NewTicker(checkEvery)
	defer tick.Stop()
	answered := time.Now()
	for {
		select {
		case r := <-done:
			return r.r, r.err
		case <-wctx.Done():
			return nil, wctx.Err()
		case <-tick.C:
		}
		cctx, ccancel := context.WithTimeout(wctx, checkEvery)
		_, err := st.Client().DescribeWorkflowExecution(cctx, run.WorkflowID, run.RunID)
		ccancel()
		switch {
		case err == nil:
			answered = time.Now()
		case time.Since(answered) > lostAfter:
			return nil, fmt.Errorf("%w for %s about %s: %v", errTemporalLost, lostAfter, run.WorkflowID, err)
		}
	}
}

// Close stops the worker and the connection it made, and shuts the member down
// without a leave.
func (a *Agent) Close() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	if a.stopDial != nil {
		a.stopDial()
	}
	<-a.dialDone
	a.StopWorker()
	a.mu.Lock()
	c, owns := a.client, a.ownsClient
	a.client = nil
	a.mu.Unlock()
	if c != nil && owns {
		c.Close()
	}
	a.member.Close()
}
