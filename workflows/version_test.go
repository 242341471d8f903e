package workflows

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
)

// A run keeps the decisions of the version it started with. The committed histories
// hold runs of versions 0, 1, 2, 4 and 7 (and replay them, in this package too); this
// runs the same graceful shutdown as each version from 1 on, so that a run of every
// version — 3, 5 and 6 included — is held to what that version does: whether and how it
// asks the budget, how it gives the lease back, when the list's step column follows it.
func TestEachVersionKeepsItsOwnDecisions(t *testing.T) {
	for _, tc := range []struct {
		version  workflow.Version
		asks     int  // leases asked of the budget
		bySignal bool // asked by signal, the answer awaited outside the budget
		giveBack string
		column   bool // the step column follows every step (before versionStepColumn)
	}{
		{versionMemo, 0, false, "", true},
		{versionProcess, 0, false, "", true},
		{versionBudget, 1, false, "activity", true},
		{versionHostSteps, 1, false, "activity", true},
		{versionBudgetQueue, 1, true, "signal", true},
		{versionStepColumn, 1, true, "signal", false},
		{versionGiveBackByActivity, 1, true, "local activity", false},
	} {
		t.Run(fmt.Sprint("version ", tc.version), func(t *testing.T) {
			h := newHarness(t)
			h.atVersion(tc.version)
			r := h.run(ShutdownRequest{})
			if r.Outcome != plan.Graceful {
				t.Fatalf("outcome %s", r.Outcome)
			}
			if h.called("acquire") != tc.asks || (h.called("ask-by-signal") > 0) != tc.bySignal {
				t.Errorf("asked the budget %d times, %d by signal; want %d, by signal: %v", h.called("acquire"), h.called("ask-by-signal"), tc.asks, tc.bySignal)
			}
			how := ""
			switch {
			case h.called("release-activity") > 0:
				how = "activity"
			case h.called("give-back") > 0:
				how = "local activity"
			case h.called("release") > 0:
				how = "signal"
			}
			if h.called("release") != tc.asks || how != tc.giveBack {
				t.Errorf("gave the lease back %d times, by %q; want %d, by %q", h.called("release"), how, tc.asks, tc.giveBack)
			}
			_, steps, _ := h.listed()
			if column := len(steps) > 1; column != tc.column {
				t.Errorf("the step column showed %v; want it to follow every step: %v", steps, tc.column)
			}
		})
	}
}

// A run of versionHostSteps on, started by a drain that holds its lease, leaves the
// lease to the drain; an earlier run gave it back itself.
func TestALeaseTheDrainHoldsIsTheDrainsFromVersionHostSteps(t *testing.T) {
	for _, tc := range []struct {
		version  workflow.Version
		releases int
	}{{versionBudget, 1}, {versionHostSteps, 0}, {versionGiveBackByActivity, 0}} {
		h := newHarness(t)
		h.atVersion(tc.version)
		if r := h.run(ShutdownRequest{Leased: true, Drain: "rack-1"}); r.Outcome != plan.Graceful || h.called("release") != tc.releases {
			t.Errorf("version %d: outcome %s, gave the drain's lease back %d times, want %d", tc.version, r.Outcome, h.called("release"), tc.releases)
		}
	}
}

// atVersion has the run take version v, as a run that started under code of that
// version does.
func (h *harness) atVersion(v workflow.Version) {
	h.env.OnGetVersion("farewell", workflow.DefaultVersion, versionGiveBackByActivity).Return(v)
}

func versionName(v workflow.Version) string { return fmt.Sprint("version ", v) }

// A node whose services did not all stop is terminated from versionProcess on; a run of
// version 1 concluded without it, as it did then.
func TestUnstoppedServicesAreTerminatedFromVersionProcess(t *testing.T) {
	for _, tc := range []struct {
		version    workflow.Version
		terminated bool
	}{{versionMemo, false}, {versionProcess, true}, {versionGiveBackByActivity, true}} {
		t.Run(versionName(tc.version), func(t *testing.T) {
			h := newHarness(t)
			h.atVersion(tc.version)
			h.set(plan.StopServices, fails(errors.New("api did not stop")))
			r := h.run(ShutdownRequest{})
			if got := h.called(plan.Terminate) > 0; got != tc.terminated || r.Terminated != tc.terminated {
				t.Errorf("outcome %s, terminate called %v (report: %v); want %v", r.Outcome, got, r.Terminated, tc.terminated)
			}
		})
	}
}

// From versionProcess on a forced run evicts the process it looked up (not whichever
// has the name), counts the eviction only when another member confirmed it, and still
// terminates a process that was evicted but lives on; a version-1 run did none of it.
func TestVersionProcessActsOnTheProcess(t *testing.T) {
	for _, tc := range []struct {
		version  workflow.Version
		instance string // the process the eviction names
		evicted  bool   // an unconfirmed eviction counted
		zombie   bool   // an evicted process that lives on terminated
	}{{versionMemo, "", true, false}, {versionProcess, "p1", false, true}} {
		t.Run(versionName(tc.version), func(t *testing.T) {
			h := newHarness(t)
			h.atVersion(tc.version)
			h.lookup = func(in activities.LookupInput) (activities.LookupOutput, error) {
				return activities.LookupOutput{Node: in.Node, Instance: "p1", State: activities.StateAlive, Members: 5}, nil
			}
			var named string
			h.evict = func(in activities.EvictInput) (activities.EvictOutput, error) {
				named = in.Instance
				return activities.EvictOutput{By: "observer"}, nil // nobody confirmed it
			}
			r := h.run(ShutdownRequest{Force: true})
			if named != tc.instance || r.Evicted != tc.evicted {
				t.Errorf("the eviction named process %q and counted %v; want %q, %v", named, r.Evicted, tc.instance, tc.evicted)
			}

			h = newHarness(t)
			h.atVersion(tc.version)
			h.lookup = func(in activities.LookupInput) (activities.LookupOutput, error) {
				return activities.LookupOutput{Node: in.Node, Instance: "p1", State: activities.StateEvicted, Members: 5}, nil
			}
			h.run(ShutdownRequest{Force: true})
			if got := h.called(plan.Terminate) > 0; got != tc.zombie {
				t.Errorf("an evicted process that lives on terminated: %v, want %v", got, tc.zombie)
			}
		})
	}
}

// From versionBudgetQueue on, a node that shut its memberlist down and stopped its
// services by itself is out though nobody confirmed its leave, eviction or termination;
// a run of version 4 did not count it out.
func TestANodeLeftAloneIsOutFromVersionBudgetQueue(t *testing.T) {
	for _, tc := range []struct {
		version workflow.Version
		out     bool
	}{{versionHostSteps, false}, {versionBudgetQueue, true}, {versionGiveBackByActivity, true}} {
		t.Run(versionName(tc.version), func(t *testing.T) {
			h := newHarness(t)
			h.atVersion(tc.version)
			h.set(plan.Deregister, fails(temporal.NewNonRetryableApplicationError("leave not confirmed; memberlist shut down anyway", activities.ErrTypeLeaveFailed, nil)))
			h.evict = func(activities.EvictInput) (activities.EvictOutput, error) {
				return activities.EvictOutput{By: "observer"}, nil
			} // unconfirmed
			h.set(plan.Terminate, fails(errors.New("no worker")))
			r := h.run(ShutdownRequest{})
			if out := r.Outcome.Out(); out != tc.out || out && !strings.Contains(r.Why, "shut its memberlist down") {
				t.Errorf("outcome %s (%s); want out: %v", r.Outcome, r.Why, tc.out)
			}
		})
	}
}
