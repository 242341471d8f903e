package plan

import (
	"fmt"
	"time"
)

// Limits are a disruption budget: how many nodes may be shutting down at once, and how
// many must stay in service. The cluster's limits (budget.* of the orchestrator) hold
// for every shutdown; a drain's own can only make them stricter for that drain.
type Limits struct {
	// MaxParallel caps the shutdowns in flight; 0 means no cap.
	MaxParallel int `json:"max_parallel"`
	// MinAlive is the fewest nodes in service a new shutdown may leave, counting those
	// in flight as gone already; 0 means no floor.
	MinAlive int `json:"min_alive"`
}

// Most a limit may be: a bound on input, not on clusters.
const MaxLimit = 100_000

// Tighten returns the stricter of l and o, limit by limit.
func (l Limits) Tighten(o Limits) Limits {
	if o.MaxParallel > 0 && (l.MaxParallel == 0 || o.MaxParallel < l.MaxParallel) {
		l.MaxParallel = o.MaxParallel
	}
	l.MinAlive = max(l.MinAlive, o.MinAlive)
	return l
}

// Validate checks the limits, naming the field.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    int
		zero string
	}{{"max_parallel", l.MaxParallel, "no cap"}, {"min_alive", l.MinAlive, "no floor"}} {
		switch {
		case f.v < 0:
			return &FieldError{Field: f.name, Msg: fmt.Sprintf("%d is negative (0 means %s)", f.v, f.zero)}
		case f.v > MaxLimit:
			return &FieldError{Field: f.name, Msg: fmt.Sprintf("%d is more than %d", f.v, MaxLimit)}
		}
	}
	return nil
}

// String says the limits the way people write them.
func (l Limits) String() string {
	mp, ma := "no cap on shutdowns at once", "no floor on nodes in service"
	if l.MaxParallel > 0 {
		mp = fmt.Sprintf("at most %d at once", l.MaxParallel)
	}
	if l.MinAlive > 0 {
		ma = fmt.Sprintf("at least %d in service", l.MinAlive)
	}
	return mp + ", " + ma
}

// Admission is the answer to "may one more shutdown start now?".
type Admission struct {
	Granted bool
	// Why says what holds it back; for a shutdown that may not be held back, what it
	// goes beyond.
	Why string
	// Floor: the min-alive floor holds it back. Waiting for the shutdowns in flight
	// does not help (they count as gone already); only nodes joining would.
	Floor bool
}

// Ask is what Admit needs to know of the cluster and of the shutdown asking.
type Ask struct {
	// InFlight counts the shutdowns holding a lease.
	InFlight int
	// ServingAfter counts the nodes in service that neither hold a lease nor are the
	// node asking: those left serving if it goes.
	ServingAfter int
	// Serving: the node asking is in service itself (alive, not blocked). A node that
	// is not takes nothing away, and the floor does not hold it back.
	Serving bool
	// Unblockable: the node's own SIGTERM. It is never held back (the node is going
	// away anyway) but counts.
	Unblockable bool
}

// Admit decides whether a shutdown may start under limits l.
func Admit(l Limits, a Ask) Admission {
	var why string
	floor := false
	switch {
	case l.MinAlive > 0 && a.Serving && a.ServingAfter < l.MinAlive:
		why = fmt.Sprintf("it would leave %d nodes in service, fewer than min_alive %d", a.ServingAfter, l.MinAlive)
		floor = true
	case l.MaxParallel > 0 && a.InFlight >= l.MaxParallel:
		why = fmt.Sprintf("%d shutdowns in flight, max_parallel is %d", a.InFlight, l.MaxParallel)
	}
	switch {
	case why == "":
		return Admission{Granted: true}
	case a.Unblockable:
		return Admission{Granted: true, Why: "its own SIGTERM is never held back, though " + why}
	}
	return Admission{Why: why, Floor: floor}
}

// Waves is how many rounds n shutdowns take at most k at once (k 0: one round).
func Waves(n, k int) int {
	switch {
	case n <= 0:
		return 0
	case k <= 0 || k >= n:
		return 1
	}
	return (n + k - 1) / k
}

// WorstCase is how long n shutdowns take at most k at once when each uses its whole
// budget, with pause between two starts in the same slot.
func WorstCase(n, k int, budget, pause time.Duration) time.Duration {
	w := Waves(n, k)
	if w == 0 {
		return 0
	}
	d := time.Duration(0)
	for i := range w {
		d = addSat(d, budget)
		if i > 0 {
			d = addSat(d, pause)
		}
	}
	return d
}
