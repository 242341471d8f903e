package agent

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/internal/testkit"
	"github.com/farewell-project/farewell/plan"
)

func offlineConfig(name string) config.Config {
	c := config.DefaultConfig()
	c.Cluster.Name, c.Cluster.Bind = name, "127.0.0.1:0"
	return c
}

func TestBadStepsAreRefusedAtStart(t *testing.T) {
	ok := func(context.Context) error { return nil }
	tests := map[string]struct {
		steps    []Step
		override map[string]config.Step
		want     string
	}{
		"reserved name":    {[]Step{{Name: plan.Deregister, Before: plan.StopServices, Run: ok}}, nil, "a name Farewell uses"},
		"duplicate":        {[]Step{{Name: "flush", Before: plan.StopServices, Run: ok}, {Name: "flush", After: plan.Deregister, Run: ok}}, nil, "registered twice"},
		"unknown position": {[]Step{{Name: "flush", Before: "stop-everything", Run: ok}}, nil, "unknown position"},
		"bad bounds":       {[]Step{{Name: "flush", Before: plan.StopServices, Run: ok, MaxAttempts: 99}}, nil, "steps.flush.max_attempts"},
		"no func":          {[]Step{{Name: "flush", Before: plan.StopServices}}, nil, "no Run func"},
		"override of a step nobody registered": {[]Step{{Name: "flush", Before: plan.StopServices, Run: ok}},
			map[string]config.Step{"flush-cache": {MaxAttempts: 3}}, "shutdown.steps.flush-cache: no such step"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := offlineConfig("host-1")
			for k, v := range tt.override {
				cfg.Shutdown.Steps[k] = v
			}
			a, err := Start(context.Background(), Options{Config: cfg, Offline: true, Steps: tt.steps, Logger: testkit.Logger(t)})
			if err == nil {
				a.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// Without Temporal the node runs its host's steps in the local plan, in their places,
// with their attempts (as the configuration overrides them).
func TestHostStepsRunInTheLocalPlan(t *testing.T) {
	var mu sync.Mutex
	var ran []string
	record := func(name string, err error) func(context.Context) error {
		return func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			ran = append(ran, name)
			return err
		}
	}
	cfg := offlineConfig("host-2")
	cfg.Shutdown.Steps["flush-state"] = config.Step{MaxAttempts: 3}
	a, err := Start(context.Background(), Options{Config: cfg, Offline: true, Logger: testkit.Logger(t), Steps: []Step{
		{Name: "drain-connections", Before: plan.SetGracefullyLeft, Run: record("drain-connections", nil)},
		{Name: "flush-state", Before: plan.StopServices, Run: record("flush-state", errors.New("disk full")), MaxAttempts: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := strings.Join(a.Plan().Names(), " "); got != "drain-connections set-gracefully-left stop-heartbeat deregister flush-state stop-services" {
		t.Fatalf("plan %s", got)
	}
	r := a.ShutdownLocal(context.Background(), "test", "test")
	status := map[string]plan.StepStatus{}
	for _, s := range r.Steps {
		status[s.Name] = s.Status
	}
	if status["drain-connections"] != plan.StepSucceeded || status["flush-state"] != plan.StepFailed || status[plan.StopServices] != plan.StepSucceeded {
		t.Fatalf("steps %v", status)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(ran, " "); got != "drain-connections flush-state flush-state flush-state" {
		t.Errorf("ran %s (flush-state: 3 attempts from the configuration)", got)
	}
}

// A service that will not stop keeps the node from leaving in peace: the local plan
// ends the process's membership itself (terminate), and says so.
func TestLocalPlanTerminatesWhenAServiceWillNotStop(t *testing.T) {
	a, err := Start(context.Background(), Options{Config: offlineConfig("host-3"), Offline: true, Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.Member().Services().Register("stuck", func(context.Context) error { return errors.New("still serving") }, time.Second)
	r := a.ShutdownLocal(context.Background(), "test", "test")
	res, _ := r.Step(plan.StopServices)
	if res.Status != plan.StepFailed || !r.Terminated || r.Outcome != plan.Forced || !strings.Contains(r.Error, "terminated, but not every service stopped: stuck") {
		t.Errorf("stop-services %s; outcome %s, terminated %v (%s); want the node terminated, forced, saying which service did not stop", res.Status, r.Outcome, r.Terminated, r.Error)
	}
}

// A failing step's policy acts in the local plan as in the workflow — abort rolls the
// node back, force ends it — except that, while a shutdown workflow of the node exists
// and will resume (durable), abort acts as continue: a rollback would fight the
// workflow. Only abort is changed so.
func TestLocalPlanPoliciesAndTheDurableRun(t *testing.T) {
	for _, tc := range []struct {
		policy  plan.Policy
		durable bool
		outcome plan.Outcome
		note    string
	}{
		{plan.Abort, false, plan.Aborted, ""},
		{plan.Abort, true, plan.Degraded, "policy abort acts as continue"},
		{plan.Force, false, plan.Forced, ""},
		{plan.Force, true, plan.Forced, ""},
	} {
		t.Run(string(tc.policy)+map[bool]string{true: ", durable"}[tc.durable], func(t *testing.T) {
			steps := []Step{{Name: "drain", Before: plan.SetGracefullyLeft, MaxAttempts: 1, OnFailure: tc.policy,
				Run: func(context.Context) error { return errors.New("cannot drain") }}}
			a, err := Start(context.Background(), Options{Config: offlineConfig("host-4"), Offline: true, Logger: testkit.Logger(t), Steps: steps})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			r := a.shutdownLocal(context.Background(), "test", "test", time.Time{}, tc.durable)
			res, _ := r.Step("drain")
			if r.Outcome != tc.outcome || (tc.note != "") != strings.Contains(res.Note, "policy abort acts as continue") {
				t.Errorf("outcome %s, drain's note %q; want %s, note %q", r.Outcome, res.Note, tc.outcome, tc.note)
			}
			switch r.Outcome {
			case plan.Aborted:
				if r.Error != "aborted: drain failed (policy abort)" || !r.RolledBack {
					t.Errorf("aborted: error %q, rolled back %v; want why, and the node rolled back", r.Error, r.RolledBack)
				}
			case plan.Forced:
				if r.ForceReason != "drain failed (policy force)" || !r.Terminated {
					t.Errorf("forced: reason %q, terminated %v; want why, and the node terminated", r.ForceReason, r.Terminated)
				}
			}
		})
	}
}
