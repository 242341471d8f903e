package plan

import "slices"

// Names of the built-in graceful steps, in the order they run.
const (
	SetGracefullyLeft = "set-gracefully-left"
	StopHeartbeat     = "stop-heartbeat"
	Deregister        = "deregister"
	StopServices      = "stop-services"
)

// Names of the node activities that are not graceful steps; no step may take them.
const (
	Rollback  = "rollback"
	Terminate = "terminate"
)

var builtin = [...]string{SetGracefullyLeft, StopHeartbeat, Deregister, StopServices}

// Builtin returns the built-in steps in the order they run (a fresh slice each call).
func Builtin() []string { return slices.Clone(builtin[:]) }

// BuiltinIndex is the position of a built-in step, or -1.
func BuiltinIndex(name string) int { return slices.Index(builtin[:], name) }

// IsBuiltin reports whether name is a built-in step.
func IsBuiltin(name string) bool { return BuiltinIndex(name) >= 0 }

// Policy says what a shutdown does when a step ends without succeeding.
type Policy string

const (
	// Continue records the failure and runs the next step.
	Continue Policy = "continue"
	// Abort stops and rolls back what is reversible (state back to alive, heartbeat
	// restarted); once the node left memberlist it acts as Continue.
	Abort Policy = "abort"
	// Force skips the remaining graceful steps and force-evicts the node.
	Force Policy = "force"
)

// Policies lists the failure policies.
func Policies() []Policy { return []Policy{Continue, Abort, Force} }

// Valid reports whether p is a known policy.
func (p Policy) Valid() bool { return slices.Contains(Policies(), p) }
