package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
)

// SweepRequest says what makes a zombie and what to do about one.
type SweepRequest struct {
	activities.ZombieQuery
	// Action is report or shutdown.
	Action string `json:"action"`
	// DryRun reports what the action would do, and does nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// Describe says in a few words what a sweep does with what it finds.
func (r SweepRequest) Describe() string {
	s := "report zombies"
	if r.Action == SweepActionShutdown {
		s = "shut zombies down"
	}
	if r.DryRun {
		s += " (dry run)"
	}
	return s
}

// Sweep actions.
const (
	SweepActionReport   = "report"
	SweepActionShutdown = "shutdown"
)

// SweepFinding is one zombie and what the sweep did about it.
type SweepFinding struct {
	activities.Zombie
	// Did says what was done: reported, a shutdown started or joined, one already
	// running, or what a dry run would have done.
	Did     string `json:"did"`
	RunID   string `json:"run_id,omitempty"`
	Problem string `json:"problem,omitempty"`
}

// SweepReport is what a sweep found and did.
type SweepReport struct {
	Findings []SweepFinding `json:"findings"`
	// Nodes counts the nodes looked at.
	Nodes    int       `json:"nodes"`
	Action   string    `json:"action"`
	DryRun   bool      `json:"dry_run,omitempty"`
	Started  time.Time `json:"started"`
	Observer string    `json:"observer,omitempty"`
}

// Sweep is the watchdog: it looks through the orchestrator observer's view for nodes
// nobody asked to stop that are neither serving nor out — alive but blocked, leaving
// with no shutdown running, evicted yet heartbeating — and reports each (log, metric,
// this run's result and search attribute FarewellZombies) or, when the action says so,
// starts its shutdown with reason "watchdog: <why>", requested by "watchdog".
func Sweep(ctx workflow.Context, req SweepRequest) (*SweepReport, error) {
	log := workflow.GetLogger(ctx)
	// Findings is [] when there are none (the result reads "findings": [], not null).
	// The report has no duration: workflow time stands still within one task, so it
	// would say 0s; the run's own duration is Temporal's.
	r := &SweepReport{Findings: []SweepFinding{}, Action: req.Action, DryRun: req.DryRun, Started: workflow.Now(ctx)}
	if req.Action != SweepActionReport && req.Action != SweepActionShutdown {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("sweep action %q: want report or shutdown", req.Action), ErrTypeBadRequest, nil)
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: plan.LookupTimeout,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: activities.NonRetryable},
	})
	var found activities.ZombiesOutput
	if err := workflow.ExecuteLocalActivity(lctx, clusterActs.FindZombies, req.ZombieQuery).Get(lctx, &found); err != nil {
		return nil, err
	}
	r.Nodes = found.Nodes
	metrics := workflow.GetMetricsHandler(ctx)
	for _, z := range found.Zombies {
		f := SweepFinding{Zombie: z, Did: "reported"}
		running := false
		if z.Kind != activities.ZombieEvictedAlive {
			if err := workflow.ExecuteLocalActivity(lctx, clusterActs.ShutdownRunning, z.Node).Get(lctx, &running); err != nil {
				f.Problem = "could not tell whether a shutdown runs: " + err.Error()
			}
		}
		switch {
		case running:
			f.Did = "a shutdown is running: left to it"
		case req.Action == SweepActionShutdown && req.DryRun:
			f.Did = "would start a shutdown (dry run)"
		case req.Action == SweepActionShutdown && f.Problem == "":
			var out activities.StartShutdownOutput
			err := workflow.ExecuteLocalActivity(lctx, clusterActs.StartShutdown, activities.StartShutdownInput{
				Node: z.Node, Reason: "watchdog: " + z.Why, RequestedBy: "watchdog", Force: z.Kind == activities.ZombieEvictedAlive,
			}).Get(lctx, &out)
			switch {
			case err != nil:
				f.Problem = "shutdown not started: " + err.Error()
			case out.Joined:
				f.Did, f.RunID = "joined the shutdown running", out.RunID
			default:
				f.Did, f.RunID = "started a shutdown", out.RunID
			}
		}
		log.Warn("zombie found", "node", z.Node, "instance", z.Instance, "kind", z.Kind, "why", z.Why, "did", f.Did)
		metrics.WithTags(map[string]string{"kind": z.Kind, "action": req.Action}).Counter(MetricZombies).Inc(1)
		r.Findings = append(r.Findings, f)
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, ZombiesKey.ValueSet(int64(len(r.Findings)))); err != nil {
		log.Warn("search attributes not updated", "error", err)
	}
	workflow.SetCurrentDetails(ctx, r.Markdown())
	return r, nil
}

// Markdown renders a sweep for the Temporal UI.
func (r *SweepReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Watchdog sweep** of %s: %s, action %s", count(r.Nodes, "node"), count(len(r.Findings), "zombie"), r.Action)
	if r.DryRun {
		b.WriteString(" (dry run)")
	}
	b.WriteString("\n\n")
	if len(r.Findings) == 0 {
		b.WriteString("Nothing found: every node serves or is out.\n")
		return b.String()
	}
	b.WriteString("| node | kind | for | why | did |\n|---|---|---|---|---|\n")
	for _, f := range r.Findings {
		did := f.Did
		if f.Problem != "" {
			did += " — " + f.Problem
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", escapeMarkdown(f.Node), f.Kind, f.For, escapeMarkdown(f.Why), escapeMarkdown(did))
	}
	return b.String()
}
