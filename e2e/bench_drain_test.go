package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

// BenchmarkDrain (P3) drains 100 loopback nodes (one process, each with its worker)
// with --max-parallel 10 and compares the drain's wall time with the ideal: 10 waves
// × one shutdown's time, the median of three lone shutdowns measured in the same run on
// the same cluster. Target: at most 1.1×. It prints both.
//
//	go test ./e2e -run '^$' -bench Drain -benchtime 1x
func BenchmarkDrain(b *testing.B) {
	nodes, parallel := 100, 10
	if n, err := strconv.Atoi(os.Getenv("FAREWELL_BENCH_DRAIN_NODES")); err == nil && n > 0 {
		nodes, parallel = n, max(n/10, 1) // a smaller run, same shape
	}
	for range b.N {
		f := newBenchFixture(b, nil)
		// A hundred members in one process on two cores do a hundred hosts' gossip: the
		// local profile's 1s TCP timeout is too short for a push/pull now and then (lan's
		// is 10s), and checking every member's heartbeat signature every second would
		// take most of a core (a node on its own host checks its hundred in 5 ms a
		// second): heartbeats every 5s, the rest as configured.
		f.cfg.Cluster.Profile = config.ProfileLAN
		f.cfg.Cluster.HeartbeatInterval, f.cfg.Cluster.HeartbeatExpiration = 5*time.Second, 30*time.Second
		var drained []string
		setup := time.Now()
		for range nodes {
			drained = append(drained, f.node(true).Member().Name())
		}
		fmt.Fprintf(os.Stderr, "%d nodes up in %s\n", nodes, time.Since(setup).Round(time.Millisecond))
		var lone []time.Duration
		for range 3 {
			lone = append(lone, f.viaWorkflow(f.node(true)))
		}
		one := median(lone)
		fmt.Fprintf(os.Stderr, "lone shutdowns: %v\n", roundAll(lone))
		ideal := time.Duration(plan.Waves(nodes, parallel)) * one

		ctx := context.Background()
		req := workflows.DrainRequest{Name: fmt.Sprintf("bench-%d", time.Now().UnixNano()), Selector: activities.Selector{Nodes: drained},
			Limits: plan.Limits{MaxParallel: parallel}, RequestedBy: "bench"}
		start := time.Now()
		run, err := f.starter.Drain(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		var r workflows.DrainReport
		if err := f.starter.Client().GetWorkflow(ctx, run.WorkflowID, "").Get(ctx, &r); err != nil {
			b.Fatal(err)
		}
		wall := time.Since(start)
		var took []time.Duration
		var starts, ends []time.Time
		for _, n := range r.Nodes {
			if n.State != workflows.DrainDone || n.Outcome != plan.Graceful {
				b.Fatalf("%s: %s %s %s", n.Node, n.State, n.Outcome, n.Note)
			}
			took = append(took, n.Took.Std())
			starts, ends = append(starts, n.Started), append(ends, n.Started.Add(n.Took.Std()))
		}
		slices.Sort(took)
		// How long a slot stood empty: from the k-th end to the (k+parallel)-th start.
		slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
		slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
		var gaps []time.Duration
		for i := parallel; i < len(starts); i++ {
			gaps = append(gaps, starts[i].Sub(ends[i-parallel]))
		}
		slices.Sort(gaps)
		b.ReportMetric(wall.Seconds(), "drain-s")
		b.ReportMetric(ideal.Seconds(), "ideal-s")
		b.ReportMetric(wall.Seconds()/ideal.Seconds(), "ratio")
		fmt.Printf("\nP3 drain of %d nodes, max-parallel %d: %s; ideal %d waves × %s (median of %v, lone shutdowns) = %s; ratio %.3f (target ≤ 1.1)\n"+
			"   each shutdown inside the drain: median %s, slowest %s; a freed slot's next start: median %s, p90 %s\n",
			nodes, parallel, wall.Round(time.Millisecond), plan.Waves(nodes, parallel), one.Round(time.Millisecond), roundAll(lone), ideal.Round(time.Millisecond),
			wall.Seconds()/ideal.Seconds(), median(took).Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond),
			median(gaps).Round(time.Millisecond), gaps[len(gaps)*9/10].Round(time.Millisecond))
		benchRow("P3", fmt.Sprintf("drain of %d nodes, --max-parallel %d, vs its waves × a lone shutdown", nodes, parallel),
			fmt.Sprintf("%.2f (%s vs %s)", wall.Seconds()/ideal.Seconds(), wall.Round(time.Millisecond), ideal.Round(time.Millisecond)), "≤ 1.1",
			"go test ./e2e -run '^$' -bench Drain -benchtime 1x")
		f.close()
	}
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
