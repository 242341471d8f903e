// Package worker builds Farewell's Temporal workers: the orchestrator worker (workflows
// and cluster activities, on task queue "farewell", as an observer member of the
// cluster) and the node worker (a node's own steps, on "farewell-node-<name>").
// Interceptors such as tracing come with the client the workers are built on.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/workflows"
)

// StopTimeout is how long a stopping worker lets running activities finish.
const StopTimeout = 10 * time.Second

// Orchestrator is what the orchestrator worker runs with.
type Orchestrator struct {
	// Observer is this process's observer member of the cluster.
	Observer *cluster.Member
	// Plan is given to every shutdown that does not bring its own (shutdown.*).
	Plan plan.Plan
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Namespace of the workflows, for the watchdog's lookups ("" means default).
	Namespace string
	// Limits are the cluster's disruption budget (budget.*).
	Limits plan.Limits
}

// NewOrchestrator builds the worker that runs GracefulShutdown and the cluster
// activities.
func NewOrchestrator(c client.Client, o Orchestrator) sdkworker.Worker {
	return NewOrchestratorOn(c, o, Observe(o.Observer))
}

// NewOrchestratorOn is NewOrchestrator with the cluster seen through observer (o.Observer
// is not used): benchmarks give it a cluster of their own.
func NewOrchestratorOn(c client.Client, o Orchestrator, observer activities.Observer) sdkworker.Worker {
	w := sdkworker.New(c, workflows.TaskQueue, sdkworker.Options{WorkerStopTimeout: StopTimeout})
	wfs := &workflows.Shutdowns{Plan: o.Plan, Limits: o.Limits}
	w.RegisterWorkflowWithOptions(wfs.GracefulShutdown, workflow.RegisterOptions{Name: workflows.WorkflowName})
	w.RegisterWorkflowWithOptions(workflows.Sweep, workflow.RegisterOptions{Name: workflows.SweepWorkflowName})
	w.RegisterWorkflowWithOptions(wfs.Budget, workflow.RegisterOptions{Name: workflows.BudgetWorkflowName})
	w.RegisterWorkflowWithOptions(wfs.Drain, workflow.RegisterOptions{Name: workflows.DrainWorkflowName})
	w.RegisterWorkflowWithOptions(wfs.DrainPreflight, workflow.RegisterOptions{Name: workflows.DrainPreflightName})
	st := starter.New(c, starter.Options{Namespace: o.Namespace, Logger: o.Logger})
	w.RegisterActivity(&activities.ClusterActivities{Observer: observer, Logger: o.Logger,
		Shutdowns: shutdowns{st: st}, Budget: st, Fleet: st})
	return w
}

// NewNode builds a node's worker: it serves the node's own task queue only, so that a
// step can run nowhere but on the node it is for.
func NewNode(c client.Client, acts *activities.NodeActivities) sdkworker.Worker {
	w := sdkworker.New(c, workflows.NodeTaskQueue(acts.Member.Name()), sdkworker.Options{
		WorkerStopTimeout: StopTimeout,
		// A node runs a handful of steps in its life, one at a time: one long poll is
		// plenty, and a fleet of nodes costs the server half the polls.
		MaxConcurrentActivityTaskPollers: 1,
		// It runs no workflow: without this it would hold two workflow-task long polls
		// (and a sticky one) for nothing, and Temporal's frontend allows 1,200 long
		// polls per API and namespace (frontend.namespaceCount): a fleet of 600 nodes
		// used them all, and the orchestrators' polls were refused — every shutdown
		// and drain stood still (BenchmarkDrainFleet).
		DisableWorkflowWorker: true,
	})
	w.RegisterActivity(acts)
	return w
}

// EnsureSearchAttributes adds the search attributes Farewell's workflows set when the
// namespace lacks them. Without them every workflow task would fail, so a worker must
// not start when they cannot be added.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %s: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range workflows.SearchAttributes() {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: missing,
	})
	if err != nil {
		var names, args []string
		for name, typ := range missing {
			names = append(names, name)
			args = append(args, fmt.Sprintf("--name %s --type %s", name, typ))
		}
		slices.Sort(names)
		slices.Sort(args)
		return fmt.Errorf("namespace %s lacks search attributes %s and they could not be added (%v); create them with: "+
			"temporal operator search-attribute create --namespace %s %s", namespace, strings.Join(names, ", "), err,
			namespace, strings.Join(args, " "))
	}
	return nil
}
