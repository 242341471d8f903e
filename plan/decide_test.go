package plan

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestAfterFailure(t *testing.T) {
	spec := func(p Policy) StepSpec { return StepSpec{Name: Deregister, ScheduleToStart: 5e9, OnFailure: p} }
	tests := []struct {
		name         string
		policy       Policy
		failure      Failure
		irreversible bool
		want         StepEffect
	}{
		{"continue", Continue, FailStep, false, StepEffect{Action: ActContinue}},
		{"force", Force, FailStep, false, StepEffect{Action: ActForce, Why: "deregister failed (policy force)"}},
		{"abort", Abort, FailStep, false, StepEffect{Action: ActAbort, Why: "deregister failed (policy abort)"}},
		{"abort after leaving acts as continue", Abort, FailStep, true,
			StepEffect{Action: ActContinue, Irreversible: true, Note: "policy abort acts as continue: the node already left memberlist"}},
		{"unconfirmed leave is irreversible", Abort, FailLeaveUnconfirmed, false,
			StepEffect{Action: ActContinue, Irreversible: true, LeftAlone: true, Note: "policy abort acts as continue: the node already left memberlist"}},
		{"worker gone skips the rest", Continue, FailWorkerGone, false,
			StepEffect{Action: ActContinue, SkipRest: "the node's worker did not pick up deregister within 5s"}},
		{"worker gone under force", Force, FailWorkerGone, false,
			StepEffect{Action: ActForce, Why: "deregister failed (policy force)", SkipRest: "the node's worker did not pick up deregister within 5s"}},
		{"evicted meanwhile, whatever the policy", Abort, FailEvicted, false,
			StepEffect{Action: ActContinue, SkipRest: "node was evicted during the shutdown", EvictedByOther: true}},
		{"cut short by force-now", Abort, FailCutShort, false, StepEffect{Action: ActContinue}},
		{"cancelled", Continue, FailCancelled, false, StepEffect{Action: ActAbort, Why: "the shutdown was cancelled", Note: "cancelled by the operator"}},
		{"process gone, whatever the policy", Force, FailProcessGone, false,
			StepEffect{Action: ActContinue, Gone: true, SkipRest: "the node's process is gone: another process has its name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AfterFailure(spec(tt.policy), StepFailed, tt.failure, tt.irreversible); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// world scripts what each action Decide asks for yields.
type world struct {
	rollback, evict, terminate bool
	evictGone                  bool          // the eviction finds the process gone (it left)
	checks                     []Convergence // the last repeats
}

// v1 are the facts of a run under the rules of versionProcess.
func v1(f Facts) Facts { f.TerminateUnstopped = true; return f }

// v4 are the facts of a run under the current rules.
func v4(f Facts) Facts { f = v1(f); f.TerminateLeft = true; return f }
func v5(f Facts) Facts { f = v4(f); f.LeftAloneIsOut = true; return f }

// drive runs Decide as a driver would, recording what it asked for.
func drive(t *testing.T, f Facts, w world) ([]Do, Decision) {
	t.Helper()
	var did []Do
	for range 20 {
		d := Decide(f)
		if d.Do == DoConclude {
			return did, d
		}
		did = append(did, d.Do)
		switch d.Do {
		case DoRollback:
			f.RollbackTried, f.RolledBack = true, w.rollback
		case DoForce:
			f.ForceReason = d.Why
		case DoAbort:
			f.AbortReason = d.Why
		case DoEvict:
			f.EvictTried, f.Evicted = true, w.evict
			f.Gone = f.Gone || w.evictGone
		case DoTerminate:
			f.TerminateTried, f.Terminated = true, w.terminate
			f.Irreversible = f.Irreversible || w.terminate
			f.ServicesStopped = f.ServicesStopped || w.terminate
		case DoVerify:
			f.Convergence = w.checks[min(f.Checks, len(w.checks)-1)]
			f.Checks++
			if f.ForceReason != "" {
				f.ChecksAfterForce++
			}
		}
		if slices.Contains(did[:len(did)-1], d.Do) && d.Do != DoVerify {
			t.Fatalf("asked for %s twice: %v", d.Do, did)
		}
	}
	t.Fatalf("no conclusion after %v", did)
	return nil, Decision{}
}

func TestDecide(t *testing.T) {
	orch := Facts{CanEvict: true, CanVerify: true, ForceAllowed: true, Changed: true}
	with := func(mod func(*Facts)) Facts { f := orch; mod(&f); return f }
	ok := world{rollback: true, evict: true, terminate: true, checks: []Convergence{Converged}}
	pendingThen := func(c ...Convergence) world { w := ok; w.checks = append([]Convergence{Pending}, c...); return w }
	tests := []struct {
		name    string
		facts   Facts
		world   world
		did     []Do
		outcome Outcome
		why     string
	}{
		{"every step succeeded", with(func(f *Facts) { f.Deregistered, f.AllSucceeded, f.Irreversible = true, true, true }), ok,
			[]Do{DoVerify}, Graceful, ""},
		{"a step failed, the node left", with(func(f *Facts) { f.Deregistered, f.Irreversible = true, true }), ok,
			[]Do{DoVerify}, Degraded, ""},
		{"already left when the run began", with(func(f *Facts) { f.AlreadyOut, f.SkipRest = true, "node was already left" }), ok,
			[]Do{DoVerify}, Degraded, ""},
		{"evicted by someone else", with(func(f *Facts) { f.EvictedByOther, f.SkipRest = true, "evicted" }), ok,
			[]Do{DoVerify}, Forced, "evicted by another member"},
		{"deregister failed: forced", orch, ok, []Do{DoForce, DoEvict, DoTerminate, DoVerify}, Forced, ""},
		{"worker gone: evicted, not terminated", with(func(f *Facts) { f.SkipRest, f.Changed = "worker gone", false }), ok,
			[]Do{DoForce, DoEvict, DoVerify}, Forced, ""},
		{"members still see it in: forced", with(func(f *Facts) { f.Deregistered, f.Irreversible = true, true }), pendingThen(Converged),
			[]Do{DoVerify, DoForce, DoEvict, DoTerminate, DoVerify}, Forced, ""},
		{"eviction that does not converge: failed", orch, world{evict: true, checks: []Convergence{Pending}},
			[]Do{DoForce, DoEvict, DoTerminate, DoVerify}, Failed, "not every member saw it out"},
		{"eviction that does not take: failed", orch, world{checks: []Convergence{Converged}},
			[]Do{DoForce, DoEvict, DoTerminate, DoVerify}, Failed, "did not take"},
		{"force requested", with(func(f *Facts) { f.ForceReason = "force was requested" }), ok,
			[]Do{DoEvict, DoTerminate, DoVerify}, Forced, ""},
		{"force off, still reversible: rolled back", with(func(f *Facts) { f.ForceAllowed = false }), ok,
			[]Do{DoAbort, DoRollback}, Aborted, "force is disabled and deregister did not succeed"},
		{"force off, left without confirmation, converged: degraded", with(func(f *Facts) { f.ForceAllowed, f.Irreversible = false, true }), ok,
			[]Do{DoVerify}, Degraded, ""},
		{"force off, left without confirmation, pending: failed", with(func(f *Facts) { f.ForceAllowed, f.Irreversible = false, true }),
			world{checks: []Convergence{Pending}}, []Do{DoVerify}, Failed, "force disabled"},
		{"abort before any change", with(func(f *Facts) { f.AbortReason, f.Changed = "policy abort", false }), ok,
			nil, Aborted, "before any step changed"},
		{"abort rolls back", with(func(f *Facts) { f.AbortReason = "policy abort" }), ok, []Do{DoRollback}, Aborted, "aborted: policy abort"},
		{"abort whose rollback fails is forced", with(func(f *Facts) { f.AbortReason = "policy abort" }), world{evict: true, terminate: true, checks: []Convergence{Converged}},
			[]Do{DoRollback, DoForce, DoEvict, DoTerminate, DoVerify}, Forced, ""},
		{"abort whose rollback fails, force off, converged: degraded", with(func(f *Facts) { f.AbortReason, f.ForceAllowed = "policy abort", false }),
			world{checks: []Convergence{Converged}}, []Do{DoRollback, DoVerify}, Degraded, "rollback failed"},
		{"abort whose rollback fails, force off, pending: failed", with(func(f *Facts) { f.AbortReason, f.ForceAllowed = "policy abort", false }),
			world{checks: []Convergence{Pending}}, []Do{DoRollback, DoVerify}, Failed, "half-stopped"},
		{"abort after the node left acts as continue", with(func(f *Facts) {
			f.AbortReason, f.Deregistered, f.Irreversible, f.AllSucceeded = "cancel", true, true, true
		}), ok, []Do{DoVerify}, Graceful, ""},
		{"alone, left: no check to make", Facts{ForceAllowed: true, Deregistered: true, AllSucceeded: true, Irreversible: true}, ok,
			nil, Graceful, ""},
		{"alone, not out: terminates itself", Facts{ForceAllowed: true, Changed: true}, ok, []Do{DoForce, DoTerminate}, Forced, ""},
		{"alone, abort rolls back", Facts{ForceAllowed: true, Changed: true, AbortReason: "policy abort"}, ok, []Do{DoRollback}, Aborted, ""},

		// The rules of the fault matrix.
		{"process gone: out, and never touched", v1(with(func(f *Facts) { f.Gone, f.SkipRest = true, "gone" })), ok,
			[]Do{DoVerify}, Degraded, "the process was gone"},
		{"process gone while forcing: nothing evicted or terminated", v1(with(func(f *Facts) { f.Gone, f.ForceReason = true, "requested" })), ok,
			[]Do{DoVerify}, Degraded, "gone before it could be forced out"},
		{"left, services did not stop: terminated", v1(with(func(f *Facts) { f.Deregistered, f.Irreversible = true, true })), ok,
			[]Do{DoTerminate, DoVerify}, Forced, "it was terminated"},
		{"left, services did not stop, termination did not run", v1(with(func(f *Facts) { f.Deregistered, f.Irreversible = true, true })),
			world{checks: []Convergence{Converged}}, []Do{DoTerminate, DoVerify}, Degraded, "termination did not run"},
		{"left, services stopped: nothing to terminate", v1(with(func(f *Facts) {
			f.Deregistered, f.Irreversible, f.ServicesStopped, f.AllSucceeded = true, true, true, true
		})), ok, []Do{DoVerify}, Graceful, ""},
		{"left, too few answers: out, unverified", v1(with(func(f *Facts) {
			f.Deregistered, f.Irreversible, f.ServicesStopped, f.AllSucceeded = true, true, true, true
		})), world{checks: []Convergence{Unverified}}, []Do{DoVerify}, Graceful, "convergence unverified"},
		{"eviction nobody confirmed, node terminated: forced", v1(orch), world{terminate: true, checks: []Convergence{Converged}},
			[]Do{DoForce, DoEvict, DoTerminate, DoVerify}, Forced, ""},
		{"eviction nobody confirmed, node unreachable: failed", v1(with(func(f *Facts) { f.SkipRest = "worker gone" })),
			world{checks: []Convergence{Converged}}, []Do{DoForce, DoEvict, DoVerify}, Failed, "did not take"},
		{"forced after it left, eviction finds it gone: terminated", v4(with(func(f *Facts) {
			f.Deregistered, f.Irreversible, f.ForceReason = true, true, "flush-state failed (policy force)"
		})), world{evictGone: true, terminate: true, checks: []Convergence{Converged}}, []Do{DoEvict, DoTerminate, DoVerify}, Forced, ""},
		{"forced after it left, its termination fails: degraded", v4(with(func(f *Facts) {
			f.Deregistered, f.Irreversible, f.ForceReason = true, true, "flush-state failed (policy force)"
		})), world{evictGone: true, checks: []Convergence{Converged}}, []Do{DoEvict, DoTerminate, DoVerify}, Degraded, "termination did not run"},
		{"forced after it left, runs before the rule: not terminated", v1(with(func(f *Facts) {
			f.Deregistered, f.Irreversible, f.ForceReason = true, true, "flush-state failed (policy force)"
		})), world{evictGone: true, terminate: true, checks: []Convergence{Converged}}, []Do{DoEvict, DoVerify}, Degraded, "gone before"},
		// Found by the soak: an orchestrator in a minority, the node's leave unconfirmed,
		// its services stopped, its process ended by itself before its termination.
		{"left alone, services stopped, nothing confirmed: out, degraded", v5(with(func(f *Facts) {
			f.LeftAlone, f.Irreversible, f.ServicesStopped = true, true, true
		})), world{checks: []Convergence{Unverified}}, []Do{DoForce, DoEvict, DoTerminate, DoVerify}, Degraded, "nobody confirmed its leave, its eviction or its termination; convergence unverified"},
		{"left alone, services stopped, runs before the rule: failed", v4(with(func(f *Facts) {
			f.LeftAlone, f.Irreversible, f.ServicesStopped = true, true, true
		})), world{checks: []Convergence{Unverified}}, []Do{DoForce, DoEvict, DoTerminate, DoVerify}, Failed, "did not take"},
		{"left alone, services still running: failed", v5(with(func(f *Facts) { f.LeftAlone, f.Irreversible = true, true })),
			world{checks: []Convergence{Unverified}}, []Do{DoForce, DoEvict, DoTerminate, DoVerify}, Failed, "did not take"},
		{"left alone, services stopped, still in for some: failed", v5(with(func(f *Facts) {
			f.LeftAlone, f.Irreversible, f.ServicesStopped = true, true, true
		})), world{checks: []Convergence{Pending}}, []Do{DoForce, DoEvict, DoTerminate, DoVerify}, Failed, "not every member"},
		{"evicted, too few answers: forced, unverified", v1(orch), world{evict: true, terminate: true, checks: []Convergence{Unverified}},
			[]Do{DoForce, DoEvict, DoTerminate, DoVerify}, Forced, "unverified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			did, d := drive(t, tt.facts, tt.world)
			if !slices.Equal(did, tt.did) || d.Outcome != tt.outcome || !strings.Contains(d.Why, tt.why) {
				t.Errorf("did %v and concluded %s (%q)\nwant %v and %s (%q)", did, d.Outcome, d.Why, tt.did, tt.outcome, tt.why)
			}
		})
	}
	// Every outcome is reached by some row.
	reached := map[Outcome]bool{}
	for _, tt := range tests {
		reached[tt.outcome] = true
	}
	for _, o := range []Outcome{Graceful, Degraded, Forced, Aborted, Failed} {
		if !reached[o] {
			t.Errorf("no case ends %s", o)
		}
	}
}

func TestSlowest(t *testing.T) {
	steps := []StepResult{{Name: "a", Duration: 5}, {Name: "b", Duration: 9}, {Name: "c", Duration: 9}}
	if got := Slowest(steps); got != "b" {
		t.Errorf("slowest %q", got)
	}
	if Slowest(nil) != "" {
		t.Error("slowest of nothing")
	}
	if p := Default(); !p.Slow(p.SlowThreshold+1) || p.Slow(p.SlowThreshold) {
		t.Error("slow threshold")
	}
}

// What a step's end folds into the run's facts, the same for both drivers.
func TestFactsFoldStepEnds(t *testing.T) {
	var f Facts
	f.Succeeded(SetGracefullyLeft)
	if !reflect.DeepEqual(f, Facts{}) {
		t.Errorf("set-gracefully-left changed %+v", f)
	}
	f.Succeeded(Deregister)
	f.Succeeded(StopServices)
	if !f.Deregistered || !f.Irreversible || !f.ServicesStopped {
		t.Errorf("after deregister and stop-services: %+v", f)
	}

	var g Facts
	if g.Failed(StepEffect{Action: ActForce, Why: "first"}) || g.Failed(StepEffect{Action: ActForce, Why: "second"}) {
		t.Error("a force stopped the steps")
	}
	if g.ForceReason != "first" {
		t.Errorf("force reason %q; the first stands", g.ForceReason)
	}
	g.Failed(StepEffect{SkipRest: "worker gone", Gone: true, EvictedByOther: true, Irreversible: true})
	g.Failed(StepEffect{SkipRest: "later"})
	if g.SkipRest != "worker gone" || !g.Gone || !g.EvictedByOther || !g.Irreversible {
		t.Errorf("after a worker gone and a process gone: %+v", g)
	}
	if !g.Failed(StepEffect{Action: ActAbort, Why: "abort"}) || g.AbortReason != "abort" {
		t.Errorf("an abort did not stop the steps: %+v", g)
	}
}
