package plan

import (
	"strings"
	"testing"
	"time"
)

func hostStep(name, before, after string) HostStep {
	return HostStep{Spec: StepSpec{Name: name, StartToClose: time.Second, ScheduleToStart: time.Second, MaxAttempts: 1, OnFailure: Continue},
		Before: before, After: after}
}

func TestWithHostStepsPlacesEachStep(t *testing.T) {
	p, err := WithHostSteps(Default(), []HostStep{
		hostStep("flush-state", StopServices, ""),
		hostStep("drain-connections", SetGracefullyLeft, ""),
		hostStep("hand-over", "", Deregister),
		hostStep("audit", "", StopServices),
		hostStep("flush-cache", StopServices, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "drain-connections set-gracefully-left stop-heartbeat deregister hand-over flush-state flush-cache stop-services audit"
	if got := strings.Join(p.Names(), " "); got != want {
		t.Fatalf("steps %s\nwant  %s", got, want)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.Budget() <= Default().Budget() {
		t.Errorf("the host's steps are not in the budget: %s vs %s", p.Budget(), Default().Budget())
	}

	// A plan without the built-in step keeps the host step at its place.
	lean := Default()
	lean.Steps = lean.Steps[:3]
	p, err = WithHostSteps(lean, []HostStep{hostStep("flush-state", StopServices, "")})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Names(), " "); got != "set-gracefully-left stop-heartbeat deregister flush-state" {
		t.Errorf("steps %s", got)
	}
}

func TestWithHostStepsRefusesBadSteps(t *testing.T) {
	long := hostStep("slow", StopServices, "")
	long.Spec.StartToClose = 2 * MaxStartToClose
	tests := map[string]struct {
		steps []HostStep
		want  string
	}{
		"built-in name":    {[]HostStep{hostStep(Deregister, StopServices, "")}, "a name Farewell uses"},
		"reserved name":    {[]HostStep{hostStep("rollback", StopServices, "")}, "a name Farewell uses"},
		"bad name":         {[]HostStep{hostStep("Flush State", StopServices, "")}, "lower-case"},
		"empty name":       {[]HostStep{hostStep("", StopServices, "")}, "needs a name"},
		"duplicate":        {[]HostStep{hostStep("flush", StopServices, ""), hostStep("flush", "", Deregister)}, "registered twice"},
		"unknown position": {[]HostStep{hostStep("flush", "stop-everything", "")}, `unknown position "stop-everything"`},
		"no position":      {[]HostStep{hostStep("flush", "", "")}, "no position"},
		"two positions":    {[]HostStep{hostStep("flush", StopServices, Deregister)}, "not both"},
		"bad bounds":       {[]HostStep{long}, "steps.slow.start_to_close"},
		"too many": {func() []HostStep {
			var out []HostStep
			for i := range MaxSteps {
				out = append(out, hostStep("step-"+string(rune('a'+i)), StopServices, ""))
			}
			return out
		}(), "at most 16"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := WithHostSteps(Default(), tt.steps)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}
