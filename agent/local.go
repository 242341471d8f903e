package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

// ShutdownLocal runs the node's plan in this process, without Temporal: the same steps
// with the same timeouts, retries and isolation (a failed step never stops the next),
// and the same decisions (plan.Decide) as the workflow, as far as one node alone can
// act on them: there is no peer to evict it and nobody to ask whether the cluster saw it
// go, so a node that must be forced out ends itself (Terminate). It ends out of the
// cluster, or back in service after an abort.
func (a *Agent) ShutdownLocal(ctx context.Context, reason, requestedBy string) *workflows.ShutdownReport {
	return a.shutdownLocal(ctx, reason, requestedBy, time.Time{}, false)
}

// terminateReserve is what a local shutdown under a deadline keeps for terminating the
// node when its steps did not take it out.
const terminateReserve = 5 * time.Second

// shutdownLocal runs the local plan; with a deadline the steps end terminateReserve
// before it, so that the node is out by then. durable says a shutdown workflow of this
// node exists and will resume: then nothing is rolled back (policy abort acts as
// continue), for a rollback would fight it.
func (a *Agent) shutdownLocal(ctx context.Context, reason, requestedBy string, deadline time.Time, durable bool) *workflows.ShutdownReport {
	l := &local{a: a, ctx: ctx, deadline: deadline, durable: durable, report: &workflows.ShutdownReport{
		Node: a.member.Name(), NodeInstance: a.member.Instance(), Reason: reason,
		RequestedBy: strings.TrimSpace(requestedBy + " (local fallback)"), Started: time.Now(),
	}}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		l.ctx, cancel = context.WithDeadline(ctx, deadline.Add(-terminateReserve))
		defer cancel()
	}
	// A node alone may always end itself; only a peer's eviction needs force allowed.
	l.facts.ForceAllowed, l.facts.TerminateLeft, l.facts.LeftAloneIsOut = true, true, true
	// Out of the cluster with a service that did not stop, it ends itself as the
	// workflow would end it: nothing of it may go on serving.
	l.facts.TerminateUnstopped = true
	l.facts.ServicesStopped = a.plan.Index(plan.StopServices) < 0
	for _, spec := range a.plan.Steps {
		if l.step(spec) {
			break
		}
	}
	return l.finish()
}

// local is one run of the plan in this process.
type local struct {
	a        *Agent
	ctx      context.Context // the steps': ends terminateReserve before the deadline
	deadline time.Time       // zero: none
	durable  bool
	report   *workflows.ShutdownReport
	facts    plan.Facts
}

// step runs one step, or records why it is skipped; it reports whether the graceful
// steps stop here (an abort).
func (l *local) step(spec plan.StepSpec) bool {
	res := plan.StepResult{Name: spec.Name, Started: time.Now()}
	defer func() { l.report.Steps = append(l.report.Steps, res) }()
	switch {
	case l.facts.SkipRest != "":
		res.Status, res.Note = plan.StepSkipped, "skipped: "+l.facts.SkipRest
		return false
	case l.facts.ForceReason != "":
		res.Status, res.Note = plan.StepSkipped, "skipped: "+l.facts.ForceReason
		return false
	}
	step, ok := activities.StepNamed(spec.Name)
	if !ok {
		res.Status, res.Error = plan.StepFailed, "no implementation of step "+spec.Name
		return false
	}
	run := func(ctx context.Context, in activities.StepInput) (activities.StepOutput, error) {
		return step.Run(l.a.acts, ctx, in)
	}
	in := activities.StepInput{Node: l.report.Node, Instance: l.report.NodeInstance, Step: spec.Name}
	out, attempts, err := runLocal(l.ctx, spec, in, run)
	res.Attempts, res.Duration = attempts, plan.Millis(time.Since(res.Started))
	if err == nil {
		res.Status, res.Note = plan.StepSucceeded, out.Note
		l.facts.Succeeded(spec.Name)
		l.a.log.Info("local shutdown step succeeded", "step", spec.Name, "attempts", attempts)
		return false
	}
	res.Status, res.Error = plan.StepFailed, err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		res.Status = plan.StepTimedOut
	}
	l.a.log.Warn("local shutdown step did not succeed; going on", "step", spec.Name, "status", res.Status, "error", err)
	eff := plan.AfterFailure(spec, res.Status, activities.Classify(err), l.facts.Irreversible)
	if eff.Action == plan.ActAbort && l.durable {
		eff.Action, eff.Why = plan.ActContinue, ""
		eff.Note = "policy abort acts as continue: this node's shutdown workflow will resume, a rollback would fight it"
	}
	res.Note = strings.TrimSpace(res.Note + " " + eff.Note)
	if eff.Gone && l.report.Gone == "" {
		l.report.Gone = res.Error
	}
	return l.facts.Failed(eff)
}

// finish acts on plan.Decide until it concludes.
func (l *local) finish() *workflows.ShutdownReport {
	r := l.report
	for {
		l.facts.AllSucceeded, l.facts.Changed = plan.StepsState(r.Steps)
		d := plan.Decide(l.facts)
		switch d.Do {
		case plan.DoRollback:
			l.facts.RollbackTried = true
			l.facts.RolledBack = l.a.rollbackLocal(l.ctx)
			r.RolledBack = l.facts.RolledBack
		case plan.DoAbort:
			l.facts.AbortReason = d.Why
		case plan.DoForce:
			l.facts.ForceReason = d.Why
		case plan.DoTerminate:
			l.terminate()
		case plan.DoConclude:
			return l.conclude(d)
		default:
			// Decide asks a node alone for neither an eviction nor a check.
			return l.conclude(plan.Decision{Do: plan.DoConclude, Outcome: plan.Failed, Why: "the local fallback cannot " + string(d.Do)})
		}
	}
}

// terminate ends the node here: services and heartbeat stopped, memberlist shut down.
func (l *local) terminate() {
	l.facts.TerminateTried = true
	l.report.ForceReason = l.facts.ForceReason
	timeout := plan.TerminateTimeout
	if s, ok := l.a.plan.Step(plan.StopServices); ok {
		timeout = max(timeout, s.StartToClose)
	}
	if !l.deadline.IsZero() {
		timeout = min(timeout, max(time.Until(l.deadline), time.Second))
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), timeout)
	results := l.a.acts.Member.Terminate(ctx)
	cancel()
	left, _ := l.a.member.Left()
	l.facts.Terminated, l.report.Terminated = left, left
	l.facts.Irreversible = l.facts.Irreversible || left
	if err := activities.FailedServices(results); err != nil {
		l.report.Error = "terminated, but not every service stopped: " + err.Error()
	}
}

func (l *local) conclude(d plan.Decision) *workflows.ShutdownReport {
	r := l.report
	r.Outcome = d.Outcome
	if d.Why != "" {
		r.Error = strings.TrimSuffix(d.Why+"; "+r.Error, "; ")
	}
	if r.Outcome.Out() {
		r.Error = strings.TrimSuffix("no convergence check: this node ran its shutdown alone, without Temporal; "+r.Error, "; ")
	}
	r.Finished = time.Now()
	total := r.Finished.Sub(r.Started)
	r.Total = plan.Millis(total)
	r.SlowestStep = plan.Slowest(r.Steps)
	r.Slow = l.a.plan.Slow(total)
	return r
}

// runLocal runs one step with its StartToClose per attempt and up to MaxAttempts
// attempts, backing off in between; non-retryable errors end it at once. It reports
// the attempts that ran, and never success without one.
func runLocal(ctx context.Context, spec plan.StepSpec, in activities.StepInput,
	step func(context.Context, activities.StepInput) (activities.StepOutput, error)) (activities.StepOutput, int, error) {
	backoff := spec.Backoff
	lastErr := fmt.Errorf("%s: no attempt ran", spec.Name)
	for attempt := 1; attempt <= spec.MaxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return activities.StepOutput{}, attempt - 1, err
		}
		actx, cancel := context.WithTimeout(ctx, spec.StartToClose)
		out, err := runBounded(actx, in, step)
		cancel()
		if err == nil {
			return out, attempt, nil
		}
		lastErr = err
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.NonRetryable() {
			return out, attempt, err
		}
		if attempt < spec.MaxAttempts {
			select {
			case <-ctx.Done():
				return out, attempt, ctx.Err()
			case <-time.After(backoff):
			}
			backoff *= 2
		}
	}
	return activities.StepOutput{}, spec.MaxAttempts, lastErr
}

// runBounded returns when the step does or its context ends, whichever is first: a
// step that ignores its context must not hold the shutdown (its StartToClose).
func runBounded(ctx context.Context, in activities.StepInput,
	step func(context.Context, activities.StepInput) (activities.StepOutput, error)) (activities.StepOutput, error) {
	type result struct {
		out activities.StepOutput
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := step(ctx, in)
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-ctx.Done():
		return activities.StepOutput{}, ctx.Err()
	}
}

func (a *Agent) rollbackLocal(ctx context.Context) bool {
	rctx, cancel := context.WithTimeout(ctx, plan.RollbackTimeout)
	defer cancel()
	in := activities.StepInput{Node: a.member.Name(), Instance: a.member.Instance(), Step: plan.Rollback}
	if _, err := runBounded(rctx, in, a.acts.Rollback); err != nil {
		a.log.Error("local rollback failed", "error", err)
		return false
	}
	return true
}
