package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.temporal.io/sdk/client"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/agent"
	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/demo"
	"github.com/farewell-project/farewell/devserver"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/worker"
	"github.com/farewell-project/farewell/workflows"
)

// benchFixture is a 5-node loopback cluster (an observer, four long-lived nodes, and a
// fresh target per shutdown) with the embedded server and the orchestrator worker.
type benchFixture struct {
	b        *testing.B
	cfg      config.Config
	observer *cluster.Member
	starter  *starter.Starter
	n        int
	// closers run at the end of each benchmark run, not at b's cleanup (after all of
	// its runs): a live cluster of an earlier run would gossip with members of the
	// next that got its freed ports.
	closers []func()
}

func (f *benchFixture) close() {
	for i := len(f.closers) - 1; i >= 0; i-- {
		f.closers[i]()
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func quietMemberlist(c *memberlist.Config) { c.LogOutput = io.Discard }

func newBenchFixture(b *testing.B) *benchFixture {
	cfg := config.DefaultConfig()
	cfg.Cluster.Bind = "127.0.0.1:0"
	f := &benchFixture{b: b, cfg: cfg}
	srv, err := devserver.Start(context.Background(), devserver.Options{Port: freePort(b), NoUI: true, InMemory: true,
		SearchAttributes: workflows.SearchAttributes(), Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	f.closers = append(f.closers, srv.Stop)
	c, err := client.Dial(client.Options{HostPort: srv.Address(), Logger: quietSDKLogger()})
	if err != nil {
		b.Fatal(err)
	}
	f.closers = append(f.closers, c.Close)
	cfg.Temporal.Address = srv.Address()

	oc := cfg.Cluster
	oc.Name = "observer"
	f.observer, err = cluster.New(cluster.Options{Cluster: oc, Role: cluster.RoleObserver, Logger: quietLogger(), Tune: quietMemberlist})
	if err != nil {
		b.Fatal(err)
	}
	f.closers = append(f.closers, f.observer.Close)
	w := worker.NewOrchestrator(c, f.observer, quietLogger())
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	f.closers = append(f.closers, w.Stop)
	plan := workflows.PlanFromConfig(cfg.Shutdown)
	f.starter = starter.New(c, starter.Options{Namespace: srv.Namespace(), Plan: &plan, Logger: quietLogger()})
	for range 3 {
		f.node(true) // the long-lived members; with the observer and the target, five
	}
	return f
}

// node starts a node, with its worker when withWorker, and waits until the observer
// sees it alive.
func (f *benchFixture) node(withWorker bool) *agent.Agent {
	f.n++
	cfg := f.cfg
	cfg.Cluster.Name = fmt.Sprintf("bench-%d", f.n)
	cfg.Cluster.Join = []string{f.observer.Addr()}
	opts := agent.Options{Config: cfg, Logger: quietLogger(), Offline: true, Tune: quietMemberlist}
	if withWorker {
		opts.Client, opts.Offline = f.starter.Client(), false
	}
	ag, err := agent.Start(context.Background(), opts)
	if err != nil {
		f.b.Fatal(err)
	}
	f.closers = append(f.closers, ag.Close)
	if _, err := demo.Register(ag.Member(), "", quietLogger()); err != nil {
		f.b.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for stateOfAll(f, ag.Member().Name()) != cluster.StateAlive {
		if time.Now().After(deadline) {
			f.b.Fatalf("%s not seen alive", ag.Member().Name())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ag
}

func stateOfAll(f *benchFixture, node string) cluster.State {
	return stateOf(f.observer, node)
}

// viaWorkflow is one graceful shutdown through Temporal: trigger → report (converged).
func (f *benchFixture) viaWorkflow(ag *agent.Agent) time.Duration {
	ctx := context.Background()
	start := time.Now()
	run, err := f.starter.Shutdown(ctx, workflows.ShutdownRequest{Node: ag.Member().Name(), RequestedBy: "bench"})
	if err != nil {
		f.b.Fatal(err)
	}
	r, err := f.starter.Wait(ctx, run, nil)
	if err != nil {
		f.b.Fatal(err)
	}
	took := time.Since(start)
	if r.Outcome != workflows.OutcomeGraceful || !r.Converged {
		f.b.Fatalf("not graceful: %s %s: force %q steps %+v pending %v", r.Outcome, r.Error, r.ForceReason, r.Steps, r.Pending)
	}
	return took
}

// direct is the same shutdown with no Temporal: lookup, the four steps with the same
// StartToClose each, and the same convergence check, called in-process.
func (f *benchFixture) direct(ag *agent.Agent) time.Duration {
	ctx := context.Background()
	plan := workflows.PlanFromConfig(f.cfg.Shutdown)
	acts := ag.Activities()
	cacts := &activities.ClusterActivities{Observer: f.observer, Logger: quietLogger()}
	steps := map[string]func(context.Context, activities.StepInput) (activities.StepOutput, error){
		config.StepSetGracefullyLeft: acts.SetGracefullyLeft,
		config.StepStopHeartbeat:     acts.StopHeartbeat,
		config.StepDeregister:        acts.Deregister,
		config.StepStopServices:      acts.StopServices,
	}
	node := ag.Member().Name()
	start := time.Now()
	if _, err := cacts.Lookup(ctx, activities.LookupInput{Node: node}); err != nil {
		f.b.Fatal(err)
	}
	for _, spec := range plan.Steps {
		sctx, cancel := context.WithTimeout(ctx, spec.StartToClose)
		_, err := steps[spec.Name](sctx, activities.StepInput{Node: node, Step: spec.Name})
		cancel()
		if err != nil {
			f.b.Fatalf("%s: %v", spec.Name, err)
		}
	}
	conv, err := cacts.VerifyConvergence(ctx, activities.ConvergenceInput{Node: node, Timeout: plan.ConvergenceTimeout})
	if err != nil || !conv.Converged {
		f.b.Fatalf("not converged: %v %+v", err, conv)
	}
	return time.Since(start)
}

// BenchmarkShutdown (P1) compares a graceful shutdown of one node of a 5-node loopback
// cluster through the workflow on the embedded server (trigger → report, converged)
// with the same steps called directly in-process with the same timeouts: medians of
// b.N each, interleaved, and their ratio, in one run.
//
//	go test ./e2e -run '^$' -bench Shutdown -benchtime 20x
func BenchmarkShutdown(b *testing.B) {
	f := newBenchFixture(b)
	defer f.close()
	f.viaWorkflow(f.node(true)) // warm up: first workflow, first connections
	f.direct(f.node(false))
	var wf, direct []time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		ag := f.node(true)
		b.StartTimer()
		wf = append(wf, f.viaWorkflow(ag))
		b.StopTimer()
		ag = f.node(false)
		b.StartTimer()
		direct = append(direct, f.direct(ag))
	}
	b.StopTimer()
	mw, md := median(wf), median(direct)
	b.ReportMetric(float64(mw.Microseconds())/1000, "workflow-ms")
	b.ReportMetric(float64(md.Microseconds())/1000, "direct-ms")
	b.ReportMetric(float64(mw)/float64(md), "ratio")
	fmt.Printf("P1 graceful shutdown, 5-node loopback cluster, n=%d each: workflow median %s, direct median %s, ratio %.2f\n",
		b.N, mw.Round(100*time.Microsecond), md.Round(100*time.Microsecond), float64(mw)/float64(md))
}
