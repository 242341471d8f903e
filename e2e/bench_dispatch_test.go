package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/devserver"
)

const (
	benchWorkflowQueue = "bench-dispatch-workflows"
	benchActivityQueue = "bench-dispatch-activities"
)

// sixNoops runs six no-op activities one after another on another task queue, so every
// step is a real dispatch through matching (no eager execution).
func sixNoops(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           benchActivityQueue,
		StartToCloseTimeout: 10 * time.Second,
	})
	for range 6 {
		if err := workflow.ExecuteActivity(ctx, noopActivity).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

func noopActivity(context.Context) error { return nil }

// BenchmarkDispatch compares the embedded server with its history queue readers tuned
// (Farewell's default) against stock settings: the median time of a workflow running six
// sequential no-op activities, and the ratio, measured in one run.
//
//	go test ./e2e -run '^$' -bench Dispatch -benchtime 20x
func BenchmarkDispatch(b *testing.B) {
	medians := map[string]time.Duration{}
	for _, mode := range []struct {
		name  string
		stock bool
	}{{"tuned", false}, {"stock", true}} {
		b.Run(mode.name, func(b *testing.B) {
			srv := startServer(b, devserver.Options{StockRates: mode.stock, Logger: slog.New(slog.DiscardHandler)})
			c, err := client.Dial(client.Options{HostPort: srv.Address(), Logger: quietSDKLogger()})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ww := worker.New(c, benchWorkflowQueue, worker.Options{})
			ww.RegisterWorkflow(sixNoops)
			aw := worker.New(c, benchActivityQueue, worker.Options{})
			aw.RegisterActivity(noopActivity)
			for _, w := range []worker.Worker{ww, aw} {
				if err := w.Start(); err != nil {
					b.Fatal(err)
				}
				defer w.Stop()
			}
			ctx := context.Background()
			runOnce := func() time.Duration {
				start := time.Now()
				run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: benchWorkflowQueue}, sixNoops)
				if err != nil {
					b.Fatal(err)
				}
				if err := run.Get(ctx, nil); err != nil {
					b.Fatal(err)
				}
				return time.Since(start)
			}
			runOnce() // warm up connections and caches
			samples := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				samples = append(samples, runOnce())
			}
			b.StopTimer()
			med := median(samples)
			medians[mode.name] = med
			b.ReportMetric(float64(med.Microseconds())/1000, "median-ms")
		})
	}
	if medians["tuned"] > 0 && medians["stock"] > 0 {
		// Printed, not logged: a parent benchmark's log is dropped without -v.
		fmt.Printf("dispatch: six sequential activities, tuned median %s, stock median %s, stock/tuned = %.1fx\n",
			medians["tuned"].Round(time.Millisecond), medians["stock"].Round(time.Millisecond),
			float64(medians["stock"])/float64(medians["tuned"]))
		benchRow("P0", "six sequential no-op activities: embedded server tuned vs stock settings",
			fmt.Sprintf("%.1f× faster (tuned %s, stock %s, medians)", float64(medians["stock"])/float64(medians["tuned"]),
				medians["tuned"].Round(time.Millisecond), medians["stock"].Round(time.Millisecond)),
			"≥ 20×", "go test ./e2e -run '^$' -bench Dispatch -benchtime 20x")
	}
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
