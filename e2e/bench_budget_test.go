package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
	farewellworker "github.com/farewell-project/farewell/worker"
	"github.com/farewell-project/farewell/workflows"
)

// inFlightFleet is a trivial fleet that counts the nodes between their first step and
// their leave: never more than the budget's max_parallel may be there at once.
type inFlightFleet struct {
	*trivialFleet
	mu        sync.Mutex
	now, most int
}

type countedNode struct {
	*trivialNode
	f *inFlightFleet
}

func (n countedNode) SetState(ctx context.Context, state string) error {
	if state == activities.StateLeaving {
		n.f.mu.Lock()
		n.f.now++
		n.f.most = max(n.f.most, n.f.now)
		n.f.mu.Unlock()
	}
	return n.trivialNode.SetState(ctx, state)
}

func (n countedNode) Leave(d time.Duration) error {
	n.f.mu.Lock()
	n.f.now--
	n.f.mu.Unlock()
	return n.trivialNode.Leave(d)
}

// BenchmarkBudgetQueue (P6): k shutdowns started at once under budget.max_parallel 2,
// nodes with trivial steps, against their waves × a lone shutdown (⌈k/2⌉ × the median
// of four lone shutdowns after a first that starts the budget, in the same run), for
// k = 14, 50, 200 (FAREWELL_BENCH_QUEUE=k for one k alone). Target: ≤ 1.5; and
// never more than two between their first step and their leave.
//
//	go test ./e2e -run '^$' -bench BudgetQueue -benchtime 1x
func BenchmarkBudgetQueue(b *testing.B) {
	const maxParallel = 2
	for range b.N {
		var rows []string
		worst := 0.0
		sizes := []int{14, 50, 200}
		if k, err := strconv.Atoi(os.Getenv("FAREWELL_BENCH_QUEUE")); err == nil && k > 0 {
			sizes = []int{k} // one size, for a quick look
		}
		for _, k := range sizes {
			ratio, row := budgetQueue(b, k, maxParallel)
			rows = append(rows, row)
			worst = max(worst, ratio)
		}
		fmt.Println("P6 many shutdowns at once under budget.max_parallel 2, trivial steps:")
		for _, r := range rows {
			fmt.Println("   " + r)
		}
		benchRow("P6", "14, 50 and 200 shutdowns at once under budget.max_parallel 2 (trivial steps) vs their waves × a lone shutdown",
			strings.Join(rows, "; "), "≤ 1.5, never more than 2 in flight", "go test ./e2e -run '^$' -bench BudgetQueue -benchtime 1x")
		b.ReportMetric(worst, "worst-ratio")
	}
}

func budgetQueue(b *testing.B, k, maxParallel int) (float64, string) {
	f := newBenchFixture(b, nil)
	defer f.close()
	c := f.starter.Client()
	fleet := &inFlightFleet{trivialFleet: newTrivialFleet()}
	workers := []interface{ Start() error }{}
	orch := farewellworker.NewOrchestratorOn(c, farewellworker.Orchestrator{Plan: f.cfg.Shutdown.MustPlan(), Logger: quietLogger(),
		Limits: plan.Limits{MaxParallel: maxParallel}}, fleet)
	workers = append(workers, orch)
	stopOrch := sync.OnceFunc(orch.Stop)
	defer stopOrch()
	var names []string
	// k queued, five lone, and k more started at once with no cap.
	for i := range 2*k + 5 {
		n := fleet.add(fmt.Sprintf("queued-%d", i+1))
		w := farewellworker.NewNode(c, &activities.NodeActivities{Member: countedNode{n, fleet}, Logger: quietLogger()})
		workers = append(workers, w)
		defer w.Stop()
		names = append(names, n.Name())
	}
	f.orchestrator.Stop() // its tasks are this orchestrator's
	for _, w := range workers {
		if err := w.Start(); err != nil {
			b.Fatal(err)
		}
	}
	shutdown := func(node string) (*workflows.ShutdownReport, error) {
		ctx := context.Background()
		run, err := f.starter.Shutdown(ctx, workflows.ShutdownRequest{Node: node, RequestedBy: "bench"})
		if err != nil {
			return nil, err
		}
		return f.starter.Wait(ctx, run, nil)
	}
	var lone []time.Duration
	for i, n := range names[k : k+5] {
		start := time.Now()
		if r, err := shutdown(n); err != nil || r.Outcome != plan.Graceful {
			b.Fatalf("%s: %v %+v", n, err, r)
		}
		if i > 0 { // the first starts the budget
			lone = append(lone, time.Since(start))
		}
	}
	fleet.mu.Lock()
	fleet.most = 0
	fleet.mu.Unlock()
	took := runConcurrently(b, k, func(i int) {
		if r, err := shutdown(names[i]); err != nil || r.Outcome != plan.Graceful {
			b.Errorf("%s: %v %+v", names[i], err, r)
		}
	})
	waves := (k + maxParallel - 1) / maxParallel
	ideal := time.Duration(waves) * median(lone)
	ratio := took.Seconds() / ideal.Seconds()
	fleet.mu.Lock()
	most := fleet.most
	fleet.mu.Unlock()
	if most > maxParallel {
		b.Errorf("%d shutdowns were between their first step and their leave at once; max_parallel is %d", most, maxParallel)
	}
	// The same number at once with no cap (another k nodes, an orchestrator without
	// limits): the most this machine's server and workers do. No budget can beat it, so
	// when it is above waves × a lone shutdown, that yardstick is out of reach here.
	stopOrch()
	free := farewellworker.NewOrchestratorOn(c, farewellworker.Orchestrator{Plan: f.cfg.Shutdown.MustPlan(), Logger: quietLogger()}, fleet)
	if err := free.Start(); err != nil {
		b.Fatal(err)
	}
	defer free.Stop()
	uncapped := runConcurrently(b, k, func(i int) {
		if r, err := shutdown(names[k+5+i]); err != nil || r.Outcome != plan.Graceful {
			b.Errorf("%s: %v %+v", names[k+5+i], err, r)
		}
	})
	return ratio, fmt.Sprintf("%d at once: %.2f (%s vs %d waves × %s); with no cap they took %s, so %.2f of the most this machine does; at most %d in flight",
		k, ratio, took.Round(10*time.Millisecond), waves, median(lone).Round(time.Millisecond), uncapped.Round(10*time.Millisecond),
		took.Seconds()/max(ideal, uncapped).Seconds(), most)
}

// BenchmarkDrainFleet (P3 at 1,000): a drain of 1,000 nodes whose steps are trivial (an
// in-memory fleet behind the same activities, each node with its own worker, as P4's),
// --max-parallel 50, against its waves × a lone shutdown (the median of nine, after a
// first, in the same run). Target: ≤ 1.2. Never more than 50 between their first step
// and their leave; the drain's history stays bounded (it continues as new).
//
//	go test ./e2e -run '^$' -bench DrainFleet -benchtime 1x
func BenchmarkDrainFleet(b *testing.B) {
	nodes, parallel := 1000, 50
	if n, err := strconv.Atoi(os.Getenv("FAREWELL_BENCH_DRAIN_NODES")); err == nil && n > 0 {
		nodes, parallel = n, max(n/20, 1)
	}
	for range b.N {
		f := newBenchFixtureWithUI(b, nil, os.Getenv("FAREWELL_BENCH_UI") != "")
		ui := newBenchUI(b, f)
		c := f.starter.Client()
		fleet := &inFlightFleet{trivialFleet: newTrivialFleet()}
		orch := farewellworker.NewOrchestratorOn(c, farewellworker.Orchestrator{Plan: f.cfg.Shutdown.MustPlan(), Logger: quietLogger()}, fleet)
		f.orchestrator.Stop()
		if err := orch.Start(); err != nil {
			b.Fatal(err)
		}
		var names []string
		var workers []interface{ Stop() }
		setup := time.Now()
		// The nodes drained, five for lone shutdowns, and a wave's worth started at once
		// without a drain: the most this machine's server and workers do per second.
		const lones = 10 // a first, then nine: the median of nine
		for i := range nodes + lones + parallel {
			n := fleet.add(fmt.Sprintf("fleet-%04d", i+1))
			w := farewellworker.NewNode(c, &activities.NodeActivities{Member: countedNode{n, fleet}, Logger: quietLogger()})
			if err := w.Start(); err != nil {
				b.Fatal(err)
			}
			workers = append(workers, w)
			names = append(names, n.Name())
		}
		fmt.Fprintf(os.Stderr, "%d node workers up in %s\n", nodes+lones+parallel, time.Since(setup).Round(time.Millisecond))
		ctx := context.Background()
		var lone []time.Duration
		for i, n := range names[nodes : nodes+lones] {
			start := time.Now()
			run, err := f.starter.Shutdown(ctx, workflows.ShutdownRequest{Node: n, RequestedBy: "bench"})
			if err == nil {
				_, err = f.starter.Wait(ctx, run, nil)
			}
			if err != nil {
				b.Fatal(err)
			}
			if i > 0 {
				lone = append(lone, time.Since(start))
			}
		}
		one := median(lone)
		ideal := time.Duration(plan.Waves(nodes, parallel)) * one
		burst := runConcurrently(b, parallel, func(i int) {
			run, err := f.starter.Shutdown(ctx, workflows.ShutdownRequest{Node: names[nodes+lones+i], RequestedBy: "bench"})
			if err == nil {
				_, err = f.starter.Wait(ctx, run, nil)
			}
			if err != nil {
				b.Error(err)
			}
		})
		bound := time.Duration(float64(burst) * float64(nodes) / float64(parallel))
		fleet.mu.Lock()
		fleet.most = 0
		fleet.mu.Unlock()

		req := workflows.DrainRequest{Name: fmt.Sprintf("fleet-%d", time.Now().UnixNano()), Selector: activities.Selector{Nodes: names[:nodes]},
			Limits: plan.Limits{MaxParallel: parallel}, RequestedBy: "bench", FailureThreshold: 1}
		start := time.Now()
		run, err := f.starter.Drain(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		stopWatch := watchDrain(ctx, c, run.WorkflowID, start)
		looked, drained := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(looked)
			if ui == nil {
				return
			}
			// Half way: the page a person watches while it runs (the browser's work
			// costs the drain some of its two cores).
			for ; ; time.Sleep(time.Second) {
				select {
				case <-drained:
					return
				default:
				}
				var p workflows.DrainReport
				if v, err := c.QueryWorkflow(ctx, run.WorkflowID, "", workflows.QueryProgress); err == nil && v.Get(&p) == nil && p.Count()[workflows.DrainDone] >= nodes/2 {
					break
				}
			}
			ui.shot(run.WorkflowID, currentRun(ctx, c, run.WorkflowID), "user-metadata", "drain-fleet-running", "running")
		}()
		var r workflows.DrainReport
		err = c.GetWorkflow(ctx, run.WorkflowID, "").Get(ctx, &r)
		stopWatch()
		close(drained)
		<-looked
		if err != nil {
			b.Fatal(err)
		}
		wall := time.Since(start)
		done := r.Count()[workflows.DrainDone]
		fleet.mu.Lock()
		most := fleet.most
		fleet.mu.Unlock()
		// The drain's runs, and the longest history among them.
		runs, longest := 0, 0
		it, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s'", run.WorkflowID)})
		if err == nil {
			for _, e := range it.GetExecutions() {
				runs++
				longest = max(longest, int(e.GetHistoryLength()))
			}
		}
		ratio := wall.Seconds() / ideal.Seconds()
		fmt.Printf("\nP3 at %d nodes (trivial steps), max-parallel %d: %s; ideal %d waves × %s (lone: %v) = %s; ratio %.2f (target ≤ 1.2); "+
			"%d done, at most %d in flight; %d runs (continue-as-new), longest history %d events\n",
			nodes, parallel, wall.Round(time.Millisecond), plan.Waves(nodes, parallel), one.Round(time.Millisecond), roundAll(lone),
			ideal.Round(time.Millisecond), ratio, done, most, runs, longest)
		fmt.Printf("   against this machine's throughput (%d shutdowns at once without a drain: %s, so %d take at least %s): %.2f\n",
			parallel, burst.Round(time.Millisecond), nodes, bound.Round(time.Millisecond), wall.Seconds()/bound.Seconds())
		if done != nodes || most > parallel {
			b.Errorf("%d of %d done, at most %d in flight (max-parallel %d)", done, nodes, most, parallel)
		}
		benchRow("P3k", fmt.Sprintf("drain of %d nodes with trivial steps, --max-parallel %d, vs its waves × a lone shutdown", nodes, parallel),
			fmt.Sprintf("%.2f (%s vs %s); %.2f of the throughput bound (%d at once without a drain took %s); at most %d in flight; %d runs, longest history %d events",
				ratio, wall.Round(time.Millisecond), ideal.Round(time.Millisecond), wall.Seconds()/bound.Seconds(), parallel, burst.Round(time.Millisecond),
				most, runs, longest), "≤ 1.2, ≤ 50 in flight", "go test ./e2e -run '^$' -bench DrainFleet -benchtime 1x")
		b.ReportMetric(ratio, "ratio")
		if ui != nil {
			last := currentRun(ctx, c, run.WorkflowID)
			ui.shot(run.WorkflowID, last, "user-metadata", "drain-fleet-done", "Outcome")
			ui.shot(run.WorkflowID, last, "memo", "drain-fleet-memo", "more")
			ui.close()
			fmt.Printf("   (with FAREWELL_BENCH_UI the browser shared the machine: the figures above are not the row's)\n")
		}
		for _, w := range workers {
			w.Stop()
		}
		orch.Stop()
		f.close()
	}
}

// watchDrain prints the drain's progress every ten seconds (a long wait shows where it
// stands) until the returned function is called.
func watchDrain(ctx context.Context, c client.Client, id string, start time.Time) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Second):
			}
			qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
			var r workflows.DrainReport
			v, err := c.QueryWorkflow(qctx, id, "", workflows.QueryProgress)
			if err == nil {
				err = v.Get(&r)
			}
			qcancel()
			if err != nil {
				fmt.Fprintf(os.Stderr, "drain at %s: not queried: %v\n", time.Since(start).Round(time.Second), err)
				continue
			}
			fmt.Fprintf(os.Stderr, "drain at %s: %v, run %d, waiting: %q\n", time.Since(start).Round(time.Second), r.Count(), r.Runs, r.Waiting)
		}
	}()
	return func() { cancel(); <-done }
}
