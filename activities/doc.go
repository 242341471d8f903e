// Package activities holds Farewell's Temporal activities: NodeActivities, the shutdown
// steps that run on the node itself (served only by that node's worker), and
// ClusterActivities, which the orchestrator runs as an observer member (lookup, forced
// eviction, convergence checks). Activities are methods on structs that hold their
// dependencies; workflows call them through nil pointers of those types.
package activities
