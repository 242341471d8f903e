// Package cluster is a member of a hashicorp/memberlist cluster as Farewell sees it:
// a view of every member with its state (alive, leaving, left, dead, evicted), role,
// application heartbeat and blocked flag; publishing this member's own state through
// memberlist metadata (SetState, the call that hung in the original zombie bug, here
// bounded); Leave then Shutdown; eviction with self-fencing; a registry of services
// stopped in reverse order under timeouts; convergence checks that ask every surviving
// member how it sees a node; and a fault-injecting transport for tests and demos.
package cluster
