// Package plan is the shutdown contract: the names of the graceful steps, the failure
// policies, a plan's steps with their timeouts and retries, the bounds every value must
// keep, the budget of a whole run, and the pure decisions a shutdown makes (what follows
// a failed step, what the run does next, how it ends). The workflow and the node's local
// fallback are thin drivers over these decisions, so each rule is written once.
//
// It imports nothing of Farewell, and its JSON shapes are part of the recorded history
// of every run: change them only in ways that still decode what was recorded.
package plan
