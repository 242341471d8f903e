package plan

import (
	"fmt"
	"strings"
	"time"
)

// Action is what a shutdown does after a step that did not succeed.
type Action string

const (
	// ActContinue records the failure and runs the next step.
	ActContinue Action = "continue"
	// ActAbort stops the graceful steps and rolls the node back.
	ActAbort Action = "abort"
	// ActForce skips the remaining graceful steps and forces the node out.
	ActForce Action = "force"
)

// Failure is why a step did not succeed, as far as the decisions care.
type Failure string

const (
	// FailStep: the step itself failed or timed out.
	FailStep Failure = "step"
	// FailWorkerGone: the node's worker did not pick the step up (schedule-to-start).
	FailWorkerGone Failure = "worker-gone"
	// FailEvicted: the node was evicted by someone else meanwhile.
	FailEvicted Failure = "evicted"
	// FailLeaveUnconfirmed: the node shut its memberlist down after a leave nobody
	// confirmed; it cannot be put back, and did not deregister either.
	FailLeaveUnconfirmed Failure = "leave-unconfirmed"
	// FailCutShort: an operator's force-now cut the step short.
	FailCutShort Failure = "cut-short"
	// FailCancelled: the shutdown was cancelled while the step ran.
	FailCancelled Failure = "cancelled"
	// FailProcessGone: another process of the node's name answered: the process the
	// run acts on is gone (and the other is not touched).
	FailProcessGone Failure = "process-gone"
)

// StepEffect is what a step that did not succeed changes in the run.
type StepEffect struct {
	Action Action
	// Why is the reason of an abort or a force.
	Why string
	// SkipRest, when set, says why the remaining node steps cannot run.
	SkipRest string
	// Irreversible: the node can no longer be put back in service.
	Irreversible bool
	// EvictedByOther: someone else evicted the node.
	EvictedByOther bool
	// Gone: the process the run acts on is gone.
	Gone bool
	// LeftAlone: the node shut its memberlist down by itself (its leave went
	// unconfirmed): it is no member any more, by its own account.
	LeftAlone bool
	// Note is added to the step's result.
	Note string
}

// Succeeded records what a graceful step's success establishes.
func (f *Facts) Succeeded(step string) {
	switch step {
	case Deregister:
		f.Deregistered, f.Irreversible = true, true
	case StopServices:
		f.ServicesStopped = true
	}
}

// Failed records what a step that did not succeed changes (AfterFailure's effect e),
// and reports whether the graceful steps stop here (an abort). The first reason to
// skip the rest, or to force, stands.
func (f *Facts) Failed(e StepEffect) (stop bool) {
	if f.SkipRest == "" {
		f.SkipRest = e.SkipRest
	}
	f.EvictedByOther = f.EvictedByOther || e.EvictedByOther
	f.Gone = f.Gone || e.Gone
	f.Irreversible = f.Irreversible || e.Irreversible
	f.LeftAlone = f.LeftAlone || e.LeftAlone
	switch e.Action {
	case ActAbort:
		f.AbortReason = e.Why
		return true
	case ActForce:
		if f.ForceReason == "" {
			f.ForceReason = e.Why
		}
	}
	return false
}

// AfterFailure decides what follows a step that ended with status (failed or timed
// out) for reason f, given whether the node could still be put back in service.
func AfterFailure(spec StepSpec, status StepStatus, f Failure, irreversible bool) StepEffect {
	switch f {
	case FailEvicted:
		return StepEffect{Action: ActContinue, SkipRest: "node was evicted during the shutdown", EvictedByOther: true}
	case FailCutShort:
		return StepEffect{Action: ActContinue}
	case FailCancelled:
		return StepEffect{Action: ActAbort, Why: "the shutdown was cancelled", Note: "cancelled by the operator"}
	case FailProcessGone:
		return StepEffect{Action: ActContinue, Gone: true, SkipRest: "the node's process is gone: another process has its name"}
	}
	e := StepEffect{Action: ActContinue, Irreversible: irreversible}
	switch f {
	case FailLeaveUnconfirmed:
		e.Irreversible, e.LeftAlone = true, true
	case FailWorkerGone:
		e.SkipRest = fmt.Sprintf("the node's worker did not pick up %s within %s", spec.Name, spec.ScheduleToStart)
	}
	switch spec.OnFailure {
	case Force:
		e.Action, e.Why = ActForce, fmt.Sprintf("%s %s (policy force)", spec.Name, status)
	case Abort:
		if e.Irreversible {
			e.Note = "policy abort acts as continue: the node already left memberlist"
		} else {
			e.Action, e.Why = ActAbort, fmt.Sprintf("%s %s (policy abort)", spec.Name, status)
		}
	}
	return e
}

// Facts are what a driver knows of a run when it asks Decide what to do next. The
// driver records the result of each thing Decide asks for and asks again, until Decide
// concludes; every action is asked for at most once, so the loop ends.
type Facts struct {
	// CanEvict: a healthy peer can evict the node (false for a node alone).
	CanEvict bool
	// CanVerify: the members can be asked how they see the node.
	CanVerify bool
	// ForceAllowed: the plan or the request lets the node be forced out.
	ForceAllowed bool

	// ForceReason is set once forcing the node out was decided.
	ForceReason string
	// AbortReason is set once putting the node back was decided.
	AbortReason string

	// Changed: a step succeeded, or ran and may have done part of its work.
	Changed bool
	// AllSucceeded: every graceful step succeeded.
	AllSucceeded bool
	// Irreversible: the node's memberlist shut down; nothing can be rolled back.
	Irreversible bool
	// Deregistered: the deregister step succeeded.
	Deregistered bool
	// LeftAlone: the node's memberlist shut down by its own account, though nobody
	// confirmed its leave (deregister failed that way). With its services stopped, it is
	// out: no member, serving nothing, and its process ends by itself — when the rule
	// LeftAloneIsOut holds (runs recorded before it keep going without).
	LeftAlone, LeftAloneIsOut bool
	// AlreadyOut: the node was left or evicted when the run began.
	AlreadyOut bool
	// EvictedByOther: someone else evicted the node meanwhile.
	EvictedByOther bool
	// SkipRest says why the node's steps cannot run (its worker is gone, it is out).
	SkipRest string
	// Gone: the process the run acts on is gone: another process has the name now, or
	// no member knows it any more. It counts as out, and is never acted on again.
	Gone bool
	// ServicesStopped: every service of the node stopped.
	ServicesStopped bool
	// TerminateUnstopped is the rule that a node out of the cluster whose services did
	// not all stop is terminated (runs recorded before it keep going without).
	TerminateUnstopped bool
	// TerminateLeft is the rule that a node forced out after it deregistered is still
	// terminated when its eviction finds it gone because it left: its process may still
	// serve (runs recorded before it keep going without). The termination acts on the
	// run's process only: a newer one refuses it.
	TerminateLeft bool

	RollbackTried, RolledBack  bool
	EvictTried, Evicted        bool
	TerminateTried, Terminated bool

	// Checks counts the convergence checks run; ChecksAfterForce those after forcing
	// began. Convergence is the last one's result.
	Checks, ChecksAfterForce int
	Convergence              Convergence
	// Pending lists the members that still saw the node in at the last check.
	Pending []string
}

// Do is one thing Decide asks a driver to do.
type Do string

const (
	DoRollback  Do = "rollback"
	DoVerify    Do = "verify"
	DoForce     Do = "force" // start forcing: record Why as the force reason
	DoAbort     Do = "abort" // start aborting: record Why as the abort reason
	DoEvict     Do = "evict"
	DoTerminate Do = "terminate"
	DoConclude  Do = "conclude"
)

// Decision is what to do next; when Do is DoConclude, the outcome and why.
type Decision struct {
	Do      Do
	Outcome Outcome
	Why     string
}

func conclude(o Outcome, why string) Decision { return Decision{Do: DoConclude, Outcome: o, Why: why} }

// Decide says what a run whose graceful steps are over does next: check convergence,
// roll back, force the node out (evict, terminate), or conclude with an outcome. It is
// the one place where the shutdown's rules about its end are written.
func Decide(f Facts) Decision {
	if f.AbortReason != "" {
		if d, ok := decideAbort(f); ok {
			return d
		}
	}
	if f.ForceReason != "" {
		return decideForce(f)
	}
	if f.Deregistered || f.AlreadyOut || f.EvictedByOther || f.Gone {
		if f.TerminateUnstopped && !f.ServicesStopped && !f.TerminateTried && f.SkipRest == "" && !f.AlreadyOut && !f.Gone {
			return Decision{Do: DoTerminate} // out of the cluster, but something may still serve
		}
		if f.Checks == 0 && f.CanVerify {
			return Decision{Do: DoVerify}
		}
		if f.Convergence == Pending && f.CanVerify {
			return notOut(f, "not every member saw the node out (pending: "+strings.Join(f.Pending, ", ")+")")
		}
		var why string
		if f.Convergence == Unverified && f.CanVerify {
			why = "convergence unverified: too few members answered to tell that every one sees the node out"
		}
		switch {
		case f.EvictedByOther:
			return conclude(Forced, join("evicted by another member during the shutdown", why))
		case f.Terminated:
			return conclude(Forced, join("its services did not all stop: it was terminated", why))
		case f.Gone:
			return conclude(Degraded, join("the process was gone: another process has the name now, or no member knows it", why))
		case f.TerminateUnstopped && !f.ServicesStopped && !f.AlreadyOut:
			return conclude(Degraded, join("its services did not all stop and its termination did not run", why))
		case f.AllSucceeded:
			return conclude(Graceful, why)
		}
		return conclude(Degraded, why)
	}
	why := "deregister did not succeed"
	if f.SkipRest != "" {
		why = f.SkipRest
	}
	return notOut(f, why)
}

// join puts two reasons together, either of which may be empty.
func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// notOut decides for a node not known to be out: force it out, or, when force is
// off, put it back if it still can be.
func notOut(f Facts, why string) Decision {
	switch {
	case f.ForceAllowed:
		return Decision{Do: DoForce, Why: why}
	case !f.Irreversible && !f.AlreadyOut && !f.EvictedByOther:
		return Decision{Do: DoAbort, Why: "force is disabled and " + why}
	case f.Checks == 0 && f.CanVerify:
		return Decision{Do: DoVerify}
	case f.Convergence == Converged:
		return conclude(Degraded, "")
	}
	return conclude(Failed, "force disabled and "+why)
}

// decideAbort handles an abort; ok is false when the abort is over and the run goes
// on (the node could not be put back and must be forced out).
func decideAbort(f Facts) (Decision, bool) {
	switch {
	case f.RolledBack:
		return conclude(Aborted, "aborted: "+f.AbortReason), true
	case !f.RollbackTried && !f.Changed:
		return conclude(Aborted, "aborted before any step changed the node: "+f.AbortReason), true
	case !f.RollbackTried && !f.Irreversible:
		return Decision{Do: DoRollback}, true
	case !f.RollbackTried, f.ForceReason != "":
		// Nothing to roll back any more (the node left), or forcing took over.
		return Decision{}, false
	case f.ForceAllowed:
		return Decision{Do: DoForce, Why: "rollback after abort failed"}, true
	case f.Checks == 0 && f.CanVerify:
		return Decision{Do: DoVerify}, true
	case f.Convergence == Converged:
		return conclude(Degraded, fmt.Sprintf("aborted (%s), but the rollback failed; the node is out", f.AbortReason)), true
	}
	return conclude(Failed, fmt.Sprintf("aborted (%s), but the rollback failed and force is disabled: the node may be half-stopped", f.AbortReason)), true
}

// decideForce drives a forced end: evict, terminate, check, conclude. The node is out
// when another member confirmed its eviction, its own worker terminated it, or its
// process is gone.
func decideForce(f Facts) Decision {
	leftFirst := f.TerminateLeft && f.Deregistered
	switch {
	case f.CanEvict && !f.EvictTried && !f.Gone:
		return Decision{Do: DoEvict}
	case !f.TerminateTried && f.SkipRest == "" && (!f.Gone || leftFirst):
		return Decision{Do: DoTerminate}
	case f.ChecksAfterForce == 0 && f.CanVerify:
		return Decision{Do: DoVerify}
	}
	// A node that shut its memberlist down and stopped its services, by its own
	// account, is out even when no peer confirmed its eviction (the orchestrator is in
	// a minority) and its termination found no worker (its process ended by itself).
	selfOut := f.LeftAloneIsOut && f.LeftAlone && f.ServicesStopped
	out := f.Evicted || f.EvictedByOther || f.Terminated || f.Gone || leftFirst || selfOut
	forcedOut := f.Evicted || f.EvictedByOther || f.Terminated
	switch {
	case selfOut && !forcedOut && f.Convergence != Pending:
		why := "it shut its memberlist down and stopped its services, though nobody confirmed its leave, its eviction or its termination"
		if f.Convergence == Unverified {
			why += "; convergence unverified: too few members answered to tell that every one sees the node out"
		}
		return conclude(Degraded, why)
	case leftFirst && !forcedOut && !f.ServicesStopped && f.Convergence != Pending:
		return conclude(Degraded, "it left, but its termination did not run: its services may still serve")
	case f.Gone && !forcedOut && f.Convergence != Pending:
		return conclude(Degraded, "the process was gone before it could be forced out: another process has the name now, or no member knows it")
	case out && (f.Convergence == Converged || !f.CanVerify):
		return conclude(Forced, "")
	case out && f.Convergence == Unverified:
		return conclude(Forced, "convergence unverified: too few members answered to tell that every one sees the node out")
	case !out && f.CanEvict:
		return conclude(Failed, "the eviction did not take: no other member confirmed it, and the node could not be terminated")
	case !out:
		return conclude(Failed, "the node could not be terminated")
	}
	return conclude(Failed, "the node was forced out, but not every member saw it out")
}

// Slowest names the step that took longest ("" for none).
func Slowest(steps []StepResult) string {
	name, longest := "", Duration(-1)
	for _, s := range steps {
		if s.Duration > longest {
			name, longest = s.Name, s.Duration
		}
	}
	return name
}

// Slow reports whether a shutdown that took total is slow under p.
func (p Plan) Slow(total time.Duration) bool { return total > p.SlowThreshold }

// StepsState tells whether every step succeeded, and whether any changed the node:
// succeeded, or ran and may have done part of its work (a rollback has something to
// undo).
func StepsState(steps []StepResult) (allSucceeded, changed bool) {
	allSucceeded = true
	for _, r := range steps {
		allSucceeded = allSucceeded && r.Status == StepSucceeded
		changed = changed || r.Status == StepSucceeded || r.Status == StepFailed || (r.Status == StepTimedOut && r.Attempts > 0)
	}
	return allSucceeded, changed
}
