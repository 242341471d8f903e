package plan

import (
	"strings"
	"testing"
	"time"
)

// The bounds of a plan, at their edges: what is allowed is allowed exactly up to the
// bound, what is past it is refused naming the field (mutation testing found these
// edges untried).
func TestPlanBoundsAtTheirEdges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Plan)
		field  string // "" means valid
	}{
		{"heartbeat timeout off", func(p *Plan) { p.HeartbeatTimeout = 0 }, ""},
		{"heartbeat timeout at its bound", func(p *Plan) { p.HeartbeatTimeout = MaxStartToClose }, ""},
		{"heartbeat timeout past it", func(p *Plan) { p.HeartbeatTimeout = MaxStartToClose + time.Nanosecond }, "heartbeat_timeout"},
		{"heartbeat timeout negative", func(p *Plan) { p.HeartbeatTimeout = -time.Nanosecond }, "heartbeat_timeout"},
		{"one attempt", func(p *Plan) { p.Steps[0].MaxAttempts = 1 }, ""},
		{"no attempt", func(p *Plan) { p.Steps[0].MaxAttempts = 0 }, "max_attempts"},
		{"attempts at the bound", func(p *Plan) { p.Steps[0].MaxAttempts = MaxAttempts }, ""},
		{"attempts past it", func(p *Plan) { p.Steps[0].MaxAttempts = MaxAttempts + 1 }, "max_attempts"},
		{"start-to-close at its bound", func(p *Plan) { p.Steps[0].StartToClose = MaxStartToClose }, ""},
		{"start-to-close past it", func(p *Plan) { p.Steps[0].StartToClose = MaxStartToClose + time.Nanosecond }, "start_to_close"},
		{"schedule-to-start at its bound", func(p *Plan) { p.Steps[0].ScheduleToStart = MaxScheduleToStart }, ""},
		{"schedule-to-start past it", func(p *Plan) { p.Steps[0].ScheduleToStart = MaxScheduleToStart + time.Nanosecond }, "schedule_to_start"},
		{"backoff at its bound", func(p *Plan) { p.Steps[0].Backoff = MaxBackoff }, ""},
		{"backoff past it", func(p *Plan) { p.Steps[0].Backoff = MaxBackoff + time.Nanosecond }, "backoff"},
		{"no backoff", func(p *Plan) { p.Steps[0].Backoff = 0 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Default()
			tc.change(&p)
			err := p.Validate()
			switch {
			case tc.field == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.field != "" && (err == nil || !strings.Contains(err.Error(), tc.field)):
				t.Errorf("got %v, want a refusal naming %s", err, tc.field)
			}
		})
	}
	if got := Default().HeartbeatTimeout; got != 2*time.Second {
		t.Errorf("default heartbeat timeout %s, want 2s (the README says so)", got)
	}
}

func TestStepNamesAtTheEdgesOfTheirAlphabet(t *testing.T) {
	for _, name := range []string{"a", "z", "a0", "a9", "a-z", "az09-x"} {
		if err := ValidateStepName(name); err != nil {
			t.Errorf("%q refused: %v", name, err)
		}
	}
	for _, name := range []string{"a/", "a:", "a`", "a{", "a,", "a.", "aA", "a_", "0a", "-a"} {
		if ValidateStepName(name) == nil {
			t.Errorf("%q taken", name)
		}
	}
}

func TestHostStepsUpToTheMost(t *testing.T) {
	host := func(n int) []HostStep {
		var hs []HostStep
		for i := range n {
			hs = append(hs, HostStep{Spec: StepSpec{Name: "h" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), StartToClose: time.Second,
				ScheduleToStart: time.Second, MaxAttempts: 1, OnFailure: Continue}, After: Deregister})
		}
		return hs
	}
	room := MaxSteps - len(Builtin())
	if _, err := WithHostSteps(Default(), host(room)); err != nil {
		t.Errorf("%d host steps (%d in all): %v", room, MaxSteps, err)
	}
	if _, err := WithHostSteps(Default(), host(room+1)); err == nil {
		t.Errorf("%d steps in all were taken; at most %d", MaxSteps+1, MaxSteps)
	}
}

func TestOverrideEdges(t *testing.T) {
	var nothing *Override
	if !nothing.Empty() || !(&Override{}).Empty() {
		t.Error("no override is not empty")
	}
	force := true
	d := Duration(time.Second)
	for name, o := range map[string]Override{
		"force": {Force: &force}, "convergence": {ConvergenceTimeout: &d}, "slow": {SlowThreshold: &d},
		"a step": {Steps: map[string]StepSettings{SetGracefullyLeft: {Backoff: &d}}},
	} {
		if o.Empty() {
			t.Errorf("an override of %s is empty", name)
		}
	}
	// The first step of the plan is one it has.
	o := Override{Steps: map[string]StepSettings{SetGracefullyLeft: {Backoff: &d}}}
	p, err := o.Apply(Default())
	if err != nil || p.Steps[0].Backoff != time.Second {
		t.Errorf("override of the first step: %v, backoff %s", err, p.Steps[0].Backoff)
	}
}

func TestSlowestOfInstantSteps(t *testing.T) {
	if got := Slowest([]StepResult{{Name: "a", Duration: 0}}); got != "a" {
		t.Errorf("slowest of one instant step: %q", got)
	}
	if got := Slowest(nil); got != "" {
		t.Errorf("slowest of none: %q", got)
	}
}
