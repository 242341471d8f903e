package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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
// k = 14, 50, 200. Target: ≤ 1.5; and
// never more than two between their first step and their leave.
//
//	go test ./e2e -run '^$' -bench BudgetQueue -benchtime 1x
func BenchmarkBudgetQueue(b *testing.B) {
	const maxParallel = 2
	for range b.N {
		var rows []string
		worst := 0.0
		for _, k := range []int{14, 50, 200} {
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
	defer orch.Stop()
	var names []string
	for i := range k + 5 {
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
	for i, n := range names[k:] {
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
	return ratio, fmt.Sprintf("%d at once: %.2f (%s vs %d waves × %s), at most %d in flight",
		k, ratio, took.Round(10*time.Millisecond), waves, median(lone).Round(time.Millisecond), most)
}
