package agent

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/workflows"
)

// ShutdownLocal runs the shutdown plan in this process, without Temporal: the same
// steps with the same timeouts, retries and isolation (a failed step never stops the
// next), and the same policies as far as one node alone can apply them. There is no
// peer to evict it, so "force" ends the node here (Terminate) instead. The node ends
// out of the cluster, or back in service after an abort.
func (a *Agent) ShutdownLocal(ctx context.Context, reason, requestedBy string) *workflows.ShutdownReport {
	plan := workflows.PlanFromConfig(a.opts.Config.Shutdown)
	node := a.member.Name()
	r := &workflows.ShutdownReport{
		Node: node, Reason: reason, RequestedBy: strings.TrimSpace(requestedBy + " (local fallback)"),
		Started: time.Now(),
	}
	steps := map[string]func(context.Context, activities.StepInput) (activities.StepOutput, error){
		config.StepSetGracefullyLeft: a.acts.SetGracefullyLeft,
		config.StepStopHeartbeat:     a.acts.StopHeartbeat,
		config.StepDeregister:        a.acts.Deregister,
		config.StepStopServices:      a.acts.StopServices,
	}
	var forceReason string
	for _, spec := range plan.Steps {
		res := workflows.StepResult{Name: spec.Name, Started: time.Now()}
		if forceReason != "" {
			res.Status, res.Note = workflows.StepSkipped, "skipped: "+forceReason
			r.Steps = append(r.Steps, res)
			continue
		}
		out, attempts, err := runLocal(ctx, spec, activities.StepInput{Node: node, Step: spec.Name}, steps[spec.Name])
		res.Attempts, res.DurationMS = attempts, time.Since(res.Started).Milliseconds()
		if err == nil {
			res.Status, res.Note = workflows.StepSucceeded, out.Note
			a.log.Info("local shutdown step succeeded", "step", spec.Name, "attempts", attempts)
			r.Steps = append(r.Steps, res)
			continue
		}
		res.Status, res.Error = workflows.StepFailed, err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			res.Status = workflows.StepTimedOut
		}
		r.Steps = append(r.Steps, res)
		a.log.Warn("local shutdown step did not succeed; going on", "step", spec.Name, "status", res.Status, "error", err)
		left, _ := a.member.Left()
		switch {
		case spec.OnFailure == config.OnFailureAbort && !left:
			if a.rollbackLocal(ctx, node) {
				r.RolledBack, r.Error = true, "aborted: "+spec.Name+" "+string(res.Status)+" (policy abort)"
				for _, s := range plan.Steps[len(r.Steps):] {
					r.Steps = append(r.Steps, workflows.StepResult{Name: s.Name, Status: workflows.StepSkipped, Note: "skipped: shutdown aborted"})
				}
				return concludeLocal(r, workflows.OutcomeAborted, plan)
			}
			forceReason = "rollback after abort failed"
		case spec.OnFailure == config.OnFailureForce:
			forceReason = spec.Name + " " + string(res.Status) + " (policy force)"
		}
	}

	outcome := workflows.OutcomeGraceful
	for _, s := range r.Steps {
		if s.Status != workflows.StepSucceeded {
			outcome = workflows.OutcomeDegraded
		}
	}
	if left, _ := a.member.Left(); !left || forceReason != "" {
		// No peer can evict this node from here: end it for good instead.
		if forceReason == "" {
			forceReason = "deregister did not take the node out"
		}
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), plan.Steps[len(plan.Steps)-1].StartToClose)
		results := a.member.Terminate(tctx)
		cancel()
		left, _ := a.member.Left()
		r.ForceReason, r.Terminated, outcome = forceReason, left, workflows.OutcomeForced
		if err := cluster.Failed(results); err != nil {
			r.Error = "terminated, but not every service stopped: " + err.Error()
		}
	}
	if r.Error == "" {
		r.Error = "no convergence check: this node ran its shutdown alone, without Temporal"
	}
	return concludeLocal(r, outcome, plan)
}

// runLocal runs one step with its StartToClose per attempt and up to MaxAttempts
// attempts, backing off in between; non-retryable errors end it at once.
func runLocal(ctx context.Context, spec workflows.StepSpec, in activities.StepInput,
	step func(context.Context, activities.StepInput) (activities.StepOutput, error)) (activities.StepOutput, int, error) {
	backoff := spec.Backoff
	var lastErr error
	for attempt := 1; attempt <= spec.MaxAttempts; attempt++ {
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

func (a *Agent) rollbackLocal(ctx context.Context, node string) bool {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := runBounded(rctx, activities.StepInput{Node: node, Step: activities.StepRollback}, a.acts.Rollback); err != nil {
		a.log.Error("local rollback failed", "error", err)
		return false
	}
	return true
}

func concludeLocal(r *workflows.ShutdownReport, o workflows.Outcome, plan workflows.Plan) *workflows.ShutdownReport {
	r.Outcome = o
	r.Finished = time.Now()
	r.TotalMS = r.Finished.Sub(r.Started).Milliseconds()
	r.Slow = r.TotalMS > plan.SlowThreshold.Milliseconds()
	var slowest int64 = -1
	for _, s := range r.Steps {
		if s.DurationMS > slowest {
			slowest, r.SlowestStep = s.DurationMS, s.Name
		}
	}
	return r
}
