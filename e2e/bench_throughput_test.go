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

	"github.com/farewell-project/farewell/plan"
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

// BenchmarkThroughput (P4) starts 50 graceful shutdowns of real loopback nodes at once
// and, on the same server in the same run, 50 no-op workflows that each run as many
// activities (remote and local) as one of those shutdowns did; it compares their
// throughputs: shutdowns per second over no-op workflows per second. Target: ≥ 0.7.
//
//	go test ./e2e -run '^$' -bench Throughput -benchtime 1x
func BenchmarkThroughput(b *testing.B) {
	const n = 50
	for range b.N {
		f := newBenchFixture(b, nil)
		c := f.starter.Client()
		ww := worker.New(c, throughputWorkflowQueue, worker.Options{})
		ww.RegisterWorkflow(noopsShaped)
		aw := worker.New(c, throughputActivityQueue, worker.Options{})
		aw.RegisterActivity(noopActivity)
		for _, w := range []worker.Worker{ww, aw} {
			if err := w.Start(); err != nil {
				b.Fatal(err)
			}
			f.closers = append(f.closers, w.Stop)
		}
		var names []string
		for range n + 1 {
			names = append(names, f.node(true).Member().Name())
		}
		// One shutdown alone first, for the shape the no-op workflows copy.
		f.viaWorkflow(f.agents[len(f.agents)-1])
		names = names[:n]
		d, err := c.DescribeWorkflowExecution(context.Background(), workflows.WorkflowID(f.agents[len(f.agents)-1].Member().Name()), "")
		if err != nil {
			b.Fatal(err)
		}
		shape := shapeOf(b, c, d.GetWorkflowExecutionInfo().GetExecution().GetWorkflowId(), d.GetWorkflowExecutionInfo().GetExecution().GetRunId())

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
			var steps time.Duration
			for _, st := range r.Steps {
				parts[st.Name] = append(parts[st.Name], st.Duration.Std())
				steps += st.Duration.Std()
			}
			parts["before the first step"] = append(parts["before the first step"], r.Steps[0].Started.Sub(r.Started))
			parts["after the last step"] = append(parts["after the last step"], r.Total.Std()-r.Steps[len(r.Steps)-1].Started.Sub(r.Started)-r.Steps[len(r.Steps)-1].Duration.Std())
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
		fmt.Print("   inside the shutdowns (median / slowest):")
		for _, k := range slices.Sorted(maps.Keys(parts)) {
			d := parts[k]
			slices.Sort(d)
			fmt.Printf(" %s %s/%s;", k, median(d).Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
		}
		fmt.Println()
		ratio := noops.Seconds() / shutdowns.Seconds()
		b.ReportMetric(shutdowns.Seconds(), "shutdowns-s")
		b.ReportMetric(noops.Seconds(), "noops-s")
		b.ReportMetric(ratio, "ratio")
		fmt.Fprintf(os.Stdout, "P4 throughput: %d graceful shutdowns at once in %s (%.1f/s); %d no-op workflows of %d remote + %d local activities in %s (%.1f/s); ratio %.2f (target ≥ 0.7)\n",
			n, shutdowns.Round(time.Millisecond), n/shutdowns.Seconds(), n, shape.Remote, shape.Local, noops.Round(time.Millisecond), n/noops.Seconds(), ratio)
		benchRow("P4", fmt.Sprintf("%d shutdowns at once vs %d no-op workflows with as many activities (%d remote, %d local)", n, n, shape.Remote, shape.Local),
			fmt.Sprintf("%.2f (%.1f vs %.1f per second)", ratio, n/shutdowns.Seconds(), n/noops.Seconds()), "≥ 0.7",
			"go test ./e2e -run '^$' -bench Throughput -benchtime 1x")
		f.close()
	}
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
