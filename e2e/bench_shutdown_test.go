package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
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

// benchFixture is a 5-node loopback cluster (an observer, four long-lived nodes, and a
// fresh target per shutdown) with the embedded server and the orchestrator worker.
type benchFixture struct {
	b        *testing.B
	cfg      config.Config
	observer *cluster.Member
	// orchestrator is the orchestrator worker.
	orchestrator sdkworker.Worker
	starter      *starter.Starter
	n            int
	tel          *telemetry.Telemetry
	// uiURL is the Temporal UI's, when the fixture runs it (newBenchFixtureWithUI).
	uiURL string
	// agents are the fixture's nodes, in order of start.
	agents []*agent.Agent
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

// quietLogger discards what the benchmarks' servers and workers log, unless
// FAREWELL_BENCH_LOG names a file: warnings and errors go there (a benchmark that stalls
// says why).
func quietLogger() *slog.Logger { return slog.New(benchLogHandler()) }

var benchLog = sync.OnceValue(func() io.Writer {
	if p := os.Getenv("FAREWELL_BENCH_LOG"); p != "" {
		if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			return f
		}
	}
	return nil
})

func benchLogHandler() slog.Handler {
	if w := benchLog(); w != nil {
		return slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})
	}
	return slog.DiscardHandler
}

func quietMemberlist(c *memberlist.Config) { c.LogOutput = io.Discard }

// newBenchFixture builds the fixture; tel, if set, traces its client and nodes.
func newBenchFixture(b *testing.B, tel *telemetry.Telemetry) *benchFixture {
	return newBenchFixtureWithUI(b, tel, false)
}

// newBenchFixtureWithUI is newBenchFixture with the Temporal UI when withUI.
func newBenchFixtureWithUI(b *testing.B, tel *telemetry.Telemetry, withUI bool) *benchFixture {
	cfg := config.DefaultConfig()
	cfg.Cluster.Bind = "127.0.0.1:0"
	f := &benchFixture{b: b, cfg: cfg, tel: tel}
	opts := devserver.Options{Port: freePort(b), NoUI: !withUI, InMemory: true, SearchAttributes: workflows.SearchAttributes(), Logger: quietLogger()}
	if withUI {
		opts.UIPort = freePort(b)
	}
	srv, err := devserver.Start(context.Background(), opts)
	if err != nil {
		b.Fatal(err)
	}
	if withUI {
		f.uiURL = srv.UIURL() + "/namespaces/" + srv.Namespace()
	}
	f.closers = append(f.closers, srv.Stop)
	copts := client.Options{HostPort: srv.Address(), Logger: quietSDKLogger()}
	if tel != nil {
		if copts.Interceptors, err = tel.ClientInterceptors(); err != nil {
			b.Fatal(err)
		}
	}
	c, err := client.Dial(copts)
	if err != nil {
		b.Fatal(err)
	}
	f.closers = append(f.closers, c.Close)
	cfg.Temporal.Address = srv.Address()

	oc := cfg.Cluster
	oc.Name = "observer"
	mopts, _, err := agent.MemberOptions(oc, agent.ForOrchestrator)
	if err != nil {
		b.Fatal(err)
	}
	mopts.Logger, mopts.Tune = quietLogger(), quietMemberlist
	f.observer, err = cluster.New(mopts)
	if err != nil {
		b.Fatal(err)
	}
	f.closers = append(f.closers, f.observer.Close)
	w := worker.NewOrchestrator(c, worker.Orchestrator{Observer: f.observer, Plan: cfg.Shutdown.MustPlan(), Logger: quietLogger()})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	f.orchestrator = w
	f.closers = append(f.closers, w.Stop)
	f.starter = starter.New(c, starter.Options{Namespace: srv.Namespace(), Logger: quietLogger()})
	for range 3 {
		f.node(true) // the long-lived members; with the observer and the target, five
	}
	return f
}

// node starts a node, with its worker when withWorker, and waits until the observer
// sees it alive.
func (f *benchFixture) node(withWorker bool) *agent.Agent { return f.nodeWith(withWorker, nil) }

// nodeWith is node with gossip armed to fail as the node's shutdown begins.
func (f *benchFixture) nodeWith(withWorker bool, gossip *cluster.Fault) *agent.Agent {
	f.n++
	cfg := f.cfg
	cfg.Cluster.Name = fmt.Sprintf("bench-%d", f.n)
	cfg.Cluster.Join = []string{f.observer.Addr()}
	opts := agent.Options{Config: cfg, Logger: quietLogger(), Offline: true, Tune: quietMemberlist, GossipFault: gossip}
	if f.tel != nil {
		opts.Tracer = f.tel.Tracer()
	}
	if withWorker {
		opts.Client, opts.Offline = f.starter.Client(), false
	}
	ag, err := agent.Start(context.Background(), opts)
	if err != nil {
		f.b.Fatal(err)
	}
	f.closers = append(f.closers, ag.Close)
	f.agents = append(f.agents, ag)
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
	if r.Outcome != plan.Graceful || !r.Converged {
		f.b.Fatalf("not graceful: %s %s: force %q steps %+v pending %v", r.Outcome, r.Error, r.ForceReason, r.Steps, r.Pending)
	}
	return took
}

// direct is the same shutdown with no Temporal: lookup, the four steps with the same
// StartToClose each, and the same convergence check, called in-process.
func (f *benchFixture) direct(ag *agent.Agent) time.Duration {
	ctx := context.Background()
	p := f.cfg.Shutdown.MustPlan()
	acts := ag.Activities()
	cacts := &activities.ClusterActivities{Observer: worker.Observe(f.observer), Logger: quietLogger()}
	steps := map[string]func(context.Context, activities.StepInput) (activities.StepOutput, error){
		plan.SetGracefullyLeft: acts.SetGracefullyLeft,
		plan.StopHeartbeat:     acts.StopHeartbeat,
		plan.Deregister:        acts.Deregister,
		plan.StopServices:      acts.StopServices,
	}
	node := ag.Member().Name()
	start := time.Now()
	if _, err := cacts.Lookup(ctx, activities.LookupInput{Node: node}); err != nil {
		f.b.Fatal(err)
	}
	for _, spec := range p.Steps {
		sctx, cancel := context.WithTimeout(ctx, spec.StartToClose)
		_, err := steps[spec.Name](sctx, activities.StepInput{Node: node, Instance: ag.Member().Instance(), Step: spec.Name})
		cancel()
		if err != nil {
			f.b.Fatalf("%s: %v", spec.Name, err)
		}
	}
	conv, err := cacts.VerifyConvergence(ctx, activities.ConvergenceInput{Node: node, Timeout: plan.Duration(p.ConvergenceTimeout)})
	if err != nil || !conv.Converged {
		f.b.Fatalf("not converged: %v %+v", err, conv)
	}
	return time.Since(start)
}

// BenchmarkShutdown (P1) compares a graceful shutdown of one node of a 5-node loopback
// cluster through the workflow on the embedded server (trigger → report, converged)
// with the same steps called directly in-process with the same timeouts: medians of
// b.N each, interleaved, and their ratio; then the same with tracing on (an OTel SDK
// tracer provider exporting to memory), for the overhead of tracing. One run.
//
//	go test ./e2e -run '^$' -bench Shutdown -benchtime 20x
func BenchmarkShutdown(b *testing.B) {
	plainWF, plainDirect := benchShutdown(b, nil)
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Role: "bench", SpanExporter: tracetest.NewInMemoryExporter()})
	if err != nil {
		b.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	tracedWF, tracedDirect := benchShutdown(b, tel)

	mw, md, tw, td := median(plainWF), median(plainDirect), median(tracedWF), median(tracedDirect)
	b.ReportMetric(float64(mw.Microseconds())/1000, "workflow-ms")
	b.ReportMetric(float64(md.Microseconds())/1000, "direct-ms")
	b.ReportMetric(float64(mw)/float64(md), "ratio")
	b.ReportMetric(float64(tw)/float64(td), "traced-ratio")
	fmt.Printf("P1 graceful shutdown, 5-node loopback cluster, n=%d each: workflow median %s, direct median %s, ratio %.2f; "+
		"with tracing: workflow %s, direct %s, ratio %.2f; traced/untraced workflow %.2f\n",
		b.N, mw.Round(100*time.Microsecond), md.Round(100*time.Microsecond), float64(mw)/float64(md),
		tw.Round(100*time.Microsecond), td.Round(100*time.Microsecond), float64(tw)/float64(td), float64(tw)/float64(mw))
	benchRow("P1", "graceful shutdown through the workflow vs the same steps called directly",
		fmt.Sprintf("%.2f (%s vs %s, medians of %d); traced %.2f", float64(mw)/float64(md), mw.Round(time.Millisecond), md.Round(time.Millisecond), b.N, float64(tw)/float64(td)),
		"≤ 1.05", "go test ./e2e -run '^$' -bench Shutdown -benchtime 20x")
}

// benchShutdown measures b.N shutdowns each way, interleaved, on a fixture of its own.
func benchShutdown(b *testing.B, tel *telemetry.Telemetry) (wf, direct []time.Duration) {
	f := newBenchFixture(b, tel)
	defer f.close()
	f.viaWorkflow(f.node(true)) // warm up: first workflow, first connections
	f.direct(f.node(false))
	for range b.N {
		ag := f.node(true)
		wf = append(wf, f.viaWorkflow(ag))
		ag = f.node(false)
		direct = append(direct, f.direct(ag))
	}
	return wf, direct
}
