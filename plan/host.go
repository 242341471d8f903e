package plan

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MaxStepName is the longest name of a host step, in bytes.
const MaxStepName = 40

// reserved are names a host step may not take: the built-in steps, and the other things
// a run's progress calls a step (search attribute FarewellStep, the report).
var reserved = []string{Rollback, Terminate, "lookup", "budget", "force", "convergence", "done", "evict", "verify"}

// HostStep is a step a host application adds to its node's shutdown: its spec, and
// where it runs among the built-in steps. It runs on the node's task queue under the
// same rules as a built-in step: its timeouts and attempts, its failure policy, the
// force fallback, the local plan when Temporal is away.
type HostStep struct {
	Spec StepSpec `json:"spec"`
	// Before or After names the built-in step it runs next to; exactly one is set.
	// Host steps at the same place run in the order they were registered.
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// Where says where the step runs, as people write it ("before stop-services").
func (h HostStep) Where() string {
	if h.Before != "" {
		return "before " + h.Before
	}
	return "after " + h.After
}

// ValidateStepName checks a host step's name: 1 to MaxStepName lower-case letters,
// digits and dashes, starting with a letter, and none of the names Farewell uses.
func ValidateStepName(name string) error {
	switch {
	case name == "":
		return errors.New("a step needs a name")
	case len(name) > MaxStepName:
		return fmt.Errorf("%q is %d bytes long; at most %d", name, len(name), MaxStepName)
	case IsBuiltin(name) || slices.Contains(reserved, name):
		return fmt.Errorf("%q is a name Farewell uses (reserved: %s, %s)", name, strings.Join(builtin[:], ", "), strings.Join(reserved, ", "))
	case name[0] < 'a' || name[0] > 'z':
		return fmt.Errorf("%q does not start with a lower-case letter", name)
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("%q has %q at byte %d: a step name has lower-case letters, digits and '-' only", name, r, i)
		}
	}
	return nil
}

// Validate reports what is wrong with the step, each problem naming the step.
func (h HostStep) Validate() error {
	if err := ValidateStepName(h.Spec.Name); err != nil {
		return &FieldError{Field: "steps", Msg: err.Error()}
	}
	field := "steps." + h.Spec.Name
	var problems []error
	bad := func(f, format string, args ...any) {
		problems = append(problems, &FieldError{Field: f, Msg: fmt.Sprintf(format, args...)})
	}
	switch anchor := h.Before + h.After; {
	case h.Before != "" && h.After != "":
		bad(field, "set before or after, not both")
	case anchor == "":
		bad(field, "no position: set before or after to one of %s", strings.Join(builtin[:], ", "))
	case !IsBuiltin(anchor):
		bad(field, "unknown position %q: before or after one of %s", anchor, strings.Join(builtin[:], ", "))
	}
	h.Spec.validate(field, bad)
	return errors.Join(problems...)
}

// WithHostSteps places host steps among p's built-in steps: each where it asked to run
// (before or after its built-in step, in the order given), also when p leaves that
// built-in step out. It refuses a bad step, a name given twice, and a plan that would
// have more than MaxSteps steps.
func WithHostSteps(p Plan, host []HostStep) (Plan, error) {
	if len(host) == 0 {
		return p.Clone(), nil
	}
	var problems []error
	seen := map[string]bool{}
	for _, h := range host {
		if err := h.Validate(); err != nil {
			problems = append(problems, err)
		}
		if seen[h.Spec.Name] {
			problems = append(problems, &FieldError{Field: "steps." + h.Spec.Name, Msg: "registered twice"})
		}
		seen[h.Spec.Name] = true
	}
	if len(problems) > 0 {
		return p, errors.Join(problems...)
	}
	at := func(before, after string) []StepSpec {
		var out []StepSpec
		for _, h := range host {
			if h.Before == before && h.After == after {
				out = append(out, h.Spec)
			}
		}
		return out
	}
	out := p.Clone()
	out.Steps = nil
	for _, name := range builtin {
		out.Steps = append(out.Steps, at(name, "")...)
		if s, ok := p.Step(name); ok {
			out.Steps = append(out.Steps, s)
		}
		out.Steps = append(out.Steps, at("", name)...)
	}
	if len(out.Steps) > MaxSteps {
		return p, &FieldError{Field: "steps", Msg: fmt.Sprintf("%d steps with the host's; at most %d", len(out.Steps), MaxSteps)}
	}
	return out, nil
}
