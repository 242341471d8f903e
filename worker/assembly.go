package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/telemetry"
)

// Assembly is an orchestrator as Farewell runs it: an observer member of the cluster,
// the orchestrator worker seeing the cluster through it, the watchdog's schedule.
// `farewell worker`, `farewell dev` and the end-to-end tests all build it with
// StartOrchestrator, so that the tests run what users run. agent.Orchestrator maps the
// configuration to it.
type Assembly struct {
	// Member are the observer member's options; Join where it joins the cluster.
	Member cluster.Options
	Join   []string
	// Plan, Limits and Namespace are the worker's (shutdown.*, budget.*, temporal.namespace).
	Plan      plan.Plan
	Limits    plan.Limits
	Namespace string
	// Watchdog is the sweep's schedule (watchdog.*); nil leaves the schedule as it is.
	Watchdog *Watchdog
	// SearchAttributes: check that the namespace has Farewell's, and add those missing.
	SearchAttributes bool
	// Meter, if set, gets the observer's view of the members.
	Meter metric.Meter
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Orchestrating is an orchestrator started by StartOrchestrator.
type Orchestrating struct {
	Observer *cluster.Member
	Worker   sdkworker.Worker
}

// StartOrchestrator starts an orchestrator on the client c: the namespace's search
// attributes (when asked), the observer member joined to the cluster, the worker, the
// watchdog's schedule. On an error, what it started is stopped.
func StartOrchestrator(ctx context.Context, c client.Client, a Assembly) (_ *Orchestrating, err error) {
	if a.Logger == nil {
		a.Logger = slog.Default()
	}
	if a.SearchAttributes {
		if err := EnsureSearchAttributes(ctx, c, a.Namespace); err != nil {
			return nil, err
		}
	}
	if a.Member.Logger == nil {
		a.Member.Logger = a.Logger
	}
	o := &Orchestrating{}
	defer func() {
		if err != nil {
			o.Stop(0)
		}
	}()
	if o.Observer, err = cluster.New(a.Member); err != nil {
		return nil, fmt.Errorf("observer member: %w", err)
	}
	if err := o.Observer.Join(ctx, a.Join); err != nil {
		return nil, fmt.Errorf("observer member: %w", err)
	}
	if a.Meter != nil {
		if err := telemetry.ObserveMembers(a.Meter, o.Observer); err != nil {
			return nil, err
		}
	}
	o.Worker = NewOrchestrator(c, Orchestrator{Observer: o.Observer, Plan: a.Plan, Logger: a.Logger, Namespace: a.Namespace, Limits: a.Limits})
	if err := o.Worker.Start(); err != nil {
		o.Worker = nil
		return nil, fmt.Errorf("start orchestrator worker: %w", err)
	}
	if a.Watchdog != nil {
		if err := EnsureWatchdog(ctx, c, *a.Watchdog); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Stop stops the worker, then the observer: with a leave of up to leave when it is not
// zero (the others see it left, not dead).
func (o *Orchestrating) Stop(leave time.Duration) {
	if o.Worker != nil {
		o.Worker.Stop()
	}
	switch {
	case o.Observer == nil:
	case leave > 0:
		_ = o.Observer.Leave(leave)
	default:
		o.Observer.Close()
	}
}
