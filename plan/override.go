package plan

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Override changes some values of a plan and keeps the rest: a request sets only what
// it means to change, and the orchestrator's plan supplies everything else.
type Override struct {
	Force              *bool                   `json:"force,omitempty"`
	ConvergenceTimeout *Duration               `json:"convergence_timeout,omitempty"`
	SlowThreshold      *Duration               `json:"slow_threshold,omitempty"`
	Steps              map[string]StepSettings `json:"steps,omitempty"`
}

// StepSettings are some of a step's settings: a field left nil is unset. It is the one
// shape of a step's settings short of a whole StepSpec: what --set changes, what the
// configuration says of a step, what a host says of its own step all come to this, and
// Over is the one way they apply.
type StepSettings struct {
	StartToClose    *Duration `json:"start_to_close,omitempty"`
	ScheduleToStart *Duration `json:"schedule_to_start,omitempty"`
	MaxAttempts     *int      `json:"max_attempts,omitempty"`
	Backoff         *Duration `json:"backoff,omitempty"`
	OnFailure       *Policy   `json:"on_failure,omitempty"`
}

// StepOverride is the name StepSettings had in a request's override; histories carry it.
type StepOverride = StepSettings

// Over returns spec with the settings s sets.
func (s StepSettings) Over(spec StepSpec) StepSpec {
	if s.StartToClose != nil {
		spec.StartToClose = s.StartToClose.Std()
	}
	if s.ScheduleToStart != nil {
		spec.ScheduleToStart = s.ScheduleToStart.Std()
	}
	if s.MaxAttempts != nil {
		spec.MaxAttempts = *s.MaxAttempts
	}
	if s.Backoff != nil {
		spec.Backoff = s.Backoff.Std()
	}
	if s.OnFailure != nil {
		spec.OnFailure = *s.OnFailure
	}
	return spec
}

// SetField sets one field of s from text (start_to_close, schedule_to_start, backoff,
// max_attempts, on_failure), saying what is wrong with value.
func (s *StepSettings) SetField(name, value string) error {
	dur := func() (*Duration, error) {
		d, err := time.ParseDuration(value)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (write it like 500ms, 5s or 1m30s)", value)
		}
		v := Duration(d)
		return &v, nil
	}
	var err error
	switch name {
	case "start_to_close":
		s.StartToClose, err = dur()
	case "schedule_to_start":
		s.ScheduleToStart, err = dur()
	case "backoff":
		s.Backoff, err = dur()
	case "max_attempts":
		n, perr := strconv.Atoi(value)
		if perr != nil {
			return fmt.Errorf("%q is not a whole number", value)
		}
		s.MaxAttempts = &n
	case "on_failure":
		p := Policy(value)
		if !p.Valid() {
			return fmt.Errorf("%q is not one of continue, abort, force", value)
		}
		s.OnFailure = &p
	default:
		return fmt.Errorf("unknown step field %q (start_to_close, schedule_to_start, max_attempts, backoff, on_failure)", name)
	}
	return err
}

// Empty reports whether o changes nothing.
func (o *Override) Empty() bool {
	return o == nil || (o.Force == nil && o.ConvergenceTimeout == nil && o.SlowThreshold == nil && len(o.Steps) == 0)
}

// Apply returns p with o's values in place, validated. A step p does not have is an
// error naming it.
func (o *Override) Apply(p Plan) (Plan, error) {
	p = p.Clone()
	if o.Empty() {
		return p, p.Validate()
	}
	if o.Force != nil {
		p.Force = *o.Force
	}
	if o.ConvergenceTimeout != nil {
		p.ConvergenceTimeout = o.ConvergenceTimeout.Std()
	}
	if o.SlowThreshold != nil {
		p.SlowThreshold = o.SlowThreshold.Std()
	}
	names := make([]string, 0, len(o.Steps))
	// The names are sorted before use: the map's order does not matter.
	//workflowcheck:ignore
	for name := range o.Steps {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		i := p.Index(name)
		if i < 0 {
			return p, &FieldError{Field: "steps." + name, Msg: fmt.Sprintf("no such step in the plan (it has %s)", strings.Join(p.Names(), ", "))}
		}
		p.Steps[i] = o.Steps[name].Over(p.Steps[i])
	}
	return p, p.Validate()
}

// Set changes one value, named by its field path as Validate names it
// (force, convergence_timeout, steps.deregister.on_failure, …), read from text.
func (o *Override) Set(field, value string) error {
	bad := func(format string, args ...any) error {
		return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	dur := func() (*Duration, error) {
		d, err := time.ParseDuration(value)
		if err != nil {
			return nil, bad("%q is not a duration (write it like 500ms, 5s or 1m30s)", value)
		}
		v := Duration(d)
		return &v, nil
	}
	var err error
	switch field {
	case "force":
		b, perr := strconv.ParseBool(value)
		if perr != nil {
			return bad("%q is not true or false", value)
		}
		o.Force = &b
		return nil
	case "convergence_timeout":
		o.ConvergenceTimeout, err = dur()
		return err
	case "slow_threshold":
		o.SlowThreshold, err = dur()
		return err
	}
	parts := strings.Split(field, ".")
	if len(parts) != 3 || parts[0] != "steps" || parts[1] == "" {
		return bad("unknown field (fields are force, convergence_timeout, slow_threshold, steps.STEP.start_to_close|schedule_to_start|max_attempts|backoff|on_failure)")
	}
	if o.Steps == nil {
		o.Steps = map[string]StepSettings{}
	}
	so := o.Steps[parts[1]]
	if err := so.SetField(parts[2], value); err != nil {
		return bad("%v", err)
	}
	o.Steps[parts[1]] = so
	return nil
}
