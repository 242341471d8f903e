package plan

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValidAndFresh(t *testing.T) {
	p := Default()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	p.Steps[0].MaxAttempts = 99
	if Default().Steps[0].MaxAttempts == 99 {
		t.Error("Default shares its steps between calls")
	}
	b := Builtin()
	b[0] = "changed"
	if Builtin()[0] != SetGracefullyLeft {
		t.Error("Builtin hands out its own array")
	}
}

func TestValidateNamesEveryBadField(t *testing.T) {
	p := Default()
	p.Steps[0].MaxAttempts = 0
	p.Steps[1].OnFailure = "explode"
	p.Steps[2].StartToClose = 2 * MaxStartToClose
	p.Steps[3].Backoff = -time.Second
	p.ConvergenceTimeout = 0
	err := p.Validate()
	for _, field := range []string{
		"steps.set-gracefully-left.max_attempts", "steps.stop-heartbeat.on_failure", "steps.deregister.start_to_close",
		"steps.stop-services.backoff", "convergence_timeout",
	} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("no problem named %s in:\n%v", field, err)
		}
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Errorf("%T is not a *FieldError", err)
	}
}

func TestValidateOrder(t *testing.T) {
	tests := map[string]func(*Plan){
		"out of order": func(p *Plan) { p.Steps[0], p.Steps[1] = p.Steps[1], p.Steps[0] },
		"repeated":     func(p *Plan) { p.Steps[1] = p.Steps[0] },
		"unknown step": func(p *Plan) { p.Steps[1].Name = "Say Goodbye" },
		"no steps":     func(p *Plan) { p.Steps = nil },
	}
	for name, mod := range tests {
		t.Run(name, func(t *testing.T) {
			p := Default()
			mod(&p)
			if err := p.Validate(); err == nil || !strings.Contains(err.Error(), strings.Fields(name)[0]) {
				t.Errorf("%v", err)
			}
		})
	}
	p := Default()
	p.Steps = p.Steps[1:] // a plan may leave a built-in step out
	if err := p.Validate(); err != nil {
		t.Error(err)
	}
}

func TestBudget(t *testing.T) {
	s := StepSpec{StartToClose: 2 * time.Second, ScheduleToStart: 5 * time.Second, MaxAttempts: 3, Backoff: 100 * time.Millisecond}
	if got, want := s.Budget(), 5*time.Second+6*time.Second+300*time.Millisecond; got != want {
		t.Errorf("budget %s, want %s", got, want)
	}
	if got := s.RetryBackoffCap(); got != 200*time.Millisecond {
		t.Errorf("backoff cap %s", got)
	}
	// At the bounds the budget is large but finite; beyond them it saturates.
	worst := Plan{ConvergenceTimeout: MaxConvergenceTimeout, SlowThreshold: MaxSlowThreshold}
	for range MaxSteps {
		worst.Steps = append(worst.Steps, StepSpec{StartToClose: MaxStartToClose, ScheduleToStart: MaxScheduleToStart,
			MaxAttempts: MaxAttempts, Backoff: MaxBackoff})
	}
	if b := worst.Budget(); b <= 0 || b == math.MaxInt64 {
		t.Errorf("budget at the bounds: %s", b)
	}
	huge := StepSpec{StartToClose: math.MaxInt64 / 2, MaxAttempts: 1000, Backoff: math.MaxInt64 / 3}
	if b := huge.Budget(); b != math.MaxInt64 {
		t.Errorf("out-of-bounds budget %d did not saturate", b)
	}
	if got, want := Default().Budget(), 130*time.Second+400*time.Millisecond; got != want {
		t.Errorf("default budget %s, want %s (the README says so)", got, want)
	}
}

func TestJSONDurationsAreStringsAndOldNumbersDecode(t *testing.T) {
	b, err := json.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"start_to_close":"2s"`) || !strings.Contains(string(b), `"convergence_timeout":"10s"`) {
		t.Errorf("durations are not strings: %s", b)
	}
	old := `{"steps":[{"name":"deregister","start_to_close":3000000000,"schedule_to_start":5000000000,"max_attempts":2,
		"backoff":100000000,"on_failure":"abort"}],"force":true,"convergence_timeout":10000000000,"slow_threshold":30000000000}`
	var p Plan
	if err := json.Unmarshal([]byte(old), &p); err != nil {
		t.Fatal(err)
	}
	if p.Steps[0].StartToClose != 3*time.Second || p.Steps[0].OnFailure != Abort || p.ConvergenceTimeout != 10*time.Second {
		t.Errorf("old plan decoded as %+v", p)
	}
	var r StepResult
	if err := json.Unmarshal([]byte(`{"name":"deregister","status":"succeeded","duration_ms":1500}`), &r); err != nil || r.Duration.Std() != 1500*time.Millisecond {
		t.Errorf("old step result: %+v %v", r, err)
	}
	if err := json.Unmarshal([]byte(`{"start_to_close":"soon"}`), &StepSpec{}); err == nil || !strings.Contains(err.Error(), "soon") {
		t.Errorf("bad duration: %v", err)
	}
}

func TestOverride(t *testing.T) {
	var o Override
	for field, value := range map[string]string{
		"force": "false", "convergence_timeout": "20s", "steps.deregister.on_failure": "abort", "steps.deregister.max_attempts": "3",
	} {
		if err := o.Set(field, value); err != nil {
			t.Fatal(err)
		}
	}
	p, err := o.Apply(Default())
	if err != nil {
		t.Fatal(err)
	}
	d, _ := p.Step(Deregister)
	if p.Force || p.ConvergenceTimeout != 20*time.Second || d.OnFailure != Abort || d.MaxAttempts != 3 || d.StartToClose != 3*time.Second {
		t.Errorf("applied: %+v", p)
	}
	if def, _ := Default().Step(Deregister); def.OnFailure != Continue {
		t.Error("Apply changed the plan it was given")
	}
	for field, value := range map[string]string{
		"steps.deregister.on_failure": "explode", "steps.deregister.start_to_close": "soon", "force": "maybe",
		"steps.deregister.colour": "red", "nonsense": "1",
	} {
		var o Override
		if err := o.Set(field, value); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s=%s: %v", field, value, err)
		}
	}
	bad := Override{Steps: map[string]StepOverride{"say-goodbye": {}}}
	if _, err := bad.Apply(Default()); err == nil || !strings.Contains(err.Error(), "say-goodbye") {
		t.Errorf("unknown step: %v", err)
	}
	zero := 0
	if _, err := (&Override{Steps: map[string]StepOverride{Deregister: {MaxAttempts: &zero}}}).Apply(Default()); err == nil {
		t.Error("an override to a bad value was accepted")
	}
}
