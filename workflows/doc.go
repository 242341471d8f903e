// Package workflows holds GracefulShutdown, the durable shutdown of one cluster node,
// with its request, plan and report types and the names (task queues, query, updates,
// search attributes) that workers, starters and the Temporal UI share.
//
// Workflow code here is deterministic: no I/O, no clocks but workflow.Now, activities
// named through nil pointers of their structs.
package workflows
