package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
	farewellworker "github.com/farewell-project/farewell/worker"
	"github.com/farewell-project/farewell/workflows"
)

const (
	throughputWorkflowQueue = "bench-throughput-workflows"
	throughputActivityQueue = "bench-throughput-activities"
)

// activityShape is how many activities a workflow runs, one after another: remote ones
// (through matching, on another task queue) and local ones.
type activityShape struct {
	Remote, Local int
}

// noopsShaped runs shape's activities, all no-ops, one after another.
func noopsShaped(ctx workflow.Context, shape activityShape) error {
	rctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{TaskQueue: throughputActivityQueue, StartToCloseTimeout: 10 * time.Second})
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
	for range shape.Remote {
		if err := workflow.ExecuteActivity(rctx, noopActivity).Get(ctx, nil); err != nil {
			return err
		}
	}
	for range shape.Local {
		if err := workflow.ExecuteLocalActivity(lctx, noopActivity).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// shapeOf counts the activities a closed run scheduled, from its history.
func shapeOf(b *testing.B, c client.Client, workflowID, runID string) activityShape {
	var s activityShape
	it := c.GetWorkflowHistory(context.Background(), workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			s.Remote++
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if e.GetMarkerRecordedEventAttributes().GetMarkerName() == "LocalActivity" {
				s.Local++
			}
		}
	}
	return s
}

// BenchmarkThroughput (P4) starts 50 graceful shutdowns at once and, on the same server
// in the same run, 50 no-op workflows that each run as many activities (remote and
// local) as one of those shutdowns did, and compares their throughputs: shutdowns per
// second over no-op workflows per second. Target: ≥ 0.7. The row is for nodes whose
// steps are trivial (a state in memory, trivialFleet): the workflow's own cost. It then
// does the same with 50 real loopback members in this process, and prints that too:
// there gossip among 53 members on the same cores is most of the time.
//
//	go test ./e2e -run '^$' -bench Throughput -benchtime 1x
func BenchmarkThroughput(b *testing.B) {
	const n = 50
	for range b.N {
		t := throughput(b, n, "trivial")
		r := throughput(b, n, "real")
		benchRow("P4", fmt.Sprintf("%d shutdowns at once (nodes with trivial steps) vs %d no-op workflows with as many activities (%d remote, %d local)", n, n, t.shape.Remote, t.shape.Local),
			fmt.Sprintf("%.2f (%.1f vs %.1f per second); real loopback nodes %.2f", t.ratio(), t.shutdownRate(), t.noopRate(), r.ratio()), "≥ 0.7",
			"go test ./e2e -run '^$' -bench Throughput -benchtime 1x")
		b.ReportMetric(t.ratio(), "ratio")
		b.ReportMetric(r.ratio(), "real-ratio")
	}
}

// throughputResult is one throughput comparison.
type throughputResult struct {
	n                int
	shutdowns, noops time.Duration
	shape            activityShape
}

func (r throughputResult) shutdownRate() float64 { return float64(r.n) / r.shutdowns.Seconds() }
func (r throughputResult) noopRate() float64     { return float64(r.n) / r.noops.Seconds() }
func (r throughputResult) ratio() float64        { return r.noops.Seconds() / r.shutdowns.Seconds() }

// throughput measures n shutdowns at once against n no-op workflows of their shape, on
// a fresh server: with nodes whose steps are trivial ("trivial"), or real members ("real").
func throughput(b *testing.B, n int, kind string) throughputResult {
	f := newBenchFixture(b, nil)
	defer f.close()
	c := f.starter.Client()
	ww := worker.New(c, throughputWorkflowQueue, worker.Options{})
	ww.RegisterWorkflow(noopsShaped)
	aw := worker.New(c, throughputActivityQueue, worker.Options{})
	aw.RegisterActivity(noopActivity)
	workers := []worker.Worker{ww, aw}
	var names []string
	if kind == "trivial" {
		fleet := newTrivialFleet()
		workers = append(workers, farewellworker.NewOrchestratorOn(c, farewellworker.Orchestrator{Plan: f.cfg.Shutdown.MustPlan(), Logger: quietLogger()}, fleet))
		for i := range n + 1 {
			node := fleet.add(fmt.Sprintf("trivial-%d", i+1))
			workers = append(workers, farewellworker.NewNode(c, &activities.NodeActivities{Member: node, Logger: quietLogger()}))
			names = append(names, node.Name())
		}
		// The fixture's own orchestrator worker would take tasks meant for this one.
		f.orchestrator.Stop()
	} else {
		for range n + 1 {
			names = append(names, f.node(true).Member().Name())
		}
	}
	for _, w := range workers {
		if err := w.Start(); err != nil {
			b.Fatal(err)
		}
		defer w.Stop()
	}
	// One shutdown alone first, for the shape the no-op workflows copy.
	lone := names[n]
	run, err := f.starter.Shutdown(context.Background(), workflows.ShutdownRequest{Node: lone, RequestedBy: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	if r, err := f.starter.Wait(context.Background(), run, nil); err != nil || r.Outcome != plan.Graceful {
		b.Fatalf("%s: %v %+v", lone, err, r)
	}
	shape := shapeOf(b, c, run.WorkflowID, run.RunID)
	names = names[:n]

	var mu sync.Mutex
	parts := map[string][]time.Duration{}
	shutdowns := runConcurrently(b, n, func(i int) {
		ctx := context.Background()
		run, err := f.starter.Shutdown(ctx, workflows.ShutdownRequest{Node: names[i], RequestedBy: "bench"})
		if err != nil {
			b.Error(err)
			return
		}
		r, err := f.starter.Wait(ctx, run, nil)
		if err != nil || r.Outcome != plan.Graceful {
			b.Errorf("%s: %v %+v", names[i], err, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		parts["total"] = append(parts["total"], r.Total.Std())
		for _, st := range r.Steps {
			parts[st.Name] = append(parts[st.Name], st.Duration.Std())
		}
		parts["before the first step"] = append(parts["before the first step"], r.Steps[0].Started.Sub(r.Started))
	})
	noops := runConcurrently(b, n, func(int) {
		ctx := context.Background()
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: throughputWorkflowQueue}, noopsShaped, shape)
		if err == nil {
			err = run.Get(ctx, nil)
		}
		if err != nil {
			b.Error(err)
		}
	})
	res := throughputResult{n: n, shutdowns: shutdowns, noops: noops, shape: shape}
	fmt.Fprintf(os.Stdout, "P4 throughput, %s nodes: %d graceful shutdowns at once in %s (%.1f/s); %d no-op workflows of %d remote + %d local activities in %s (%.1f/s); ratio %.2f (target ≥ 0.7)\n",
		kind, n, shutdowns.Round(time.Millisecond), res.shutdownRate(), n, shape.Remote, shape.Local, noops.Round(time.Millisecond), res.noopRate(), res.ratio())
	fmt.Print("   inside the shutdowns (median / slowest):")
	for _, k := range slices.Sorted(maps.Keys(parts)) {
		d := parts[k]
		slices.Sort(d)
		fmt.Printf(" %s %s/%s;", k, median(d).Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
	}
	fmt.Println()
	return res
}

// runConcurrently runs f(0) … f(n-1) at once and returns the wall time until all end.
func runConcurrently(b *testing.B, n int, f func(i int)) time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() { f(i) })
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return time.Since(start)
}
