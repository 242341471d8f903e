package agent

import (
	"fmt"

	"github.com/farewell-project/farewell/activities"

	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/worker"
	"github.com/farewell-project/farewell/workflows"
)

// Purpose says what a member is for, which decides its role and the keys it needs.
type Purpose int

const (
	// ForNode: a node, shut down by Farewell; it checks evictions.
	ForNode Purpose = iota
	// ForOrchestrator: the orchestrator's observer; it signs evictions.
	ForOrchestrator
	// ForLooking: a short-lived observer that only reads the view (farewell members).
	ForLooking
)

// MemberOptions maps the cluster.* settings to a cluster member's own options (name,
// addresses, keys, profile, heartbeat timings) for a member of purpose p. Off loopback
// it insists on security: gossip encrypted (cluster.secret_key), evictions signed — an
// orchestrator needs cluster.evict_signing_key, a node cluster.evict_verify_key —
// unless cluster.insecure says otherwise; then the returned warnings say what is left
// open. Logger and hooks are the caller's to set.
func MemberOptions(c config.Cluster, p Purpose) (cluster.Options, []string, error) {
	role := cluster.RoleNode
	if p != ForNode {
		role = cluster.RoleObserver
	}
	o := cluster.Options{
		Name:                c.Name,
		Role:                role,
		Profile:             cluster.Profile(c.Profile),
		HeartbeatInterval:   c.HeartbeatInterval,
		HeartbeatExpiration: c.HeartbeatExpiration,
	}
	invalid := func(key string, err error) (cluster.Options, []string, error) {
		return o, nil, fmt.Errorf("%w: %s: %w", config.ErrInvalid, key, err)
	}
	if err := plan.ValidateNodeName(c.Name); err != nil {
		return invalid("cluster.name", err)
	}
	if p == ForNode {
		if err := plan.ValidateTags(c.Tags); err != nil {
			return invalid("cluster.tags", err)
		}
		o.Tags = c.Tags
	}
	var err error
	if o.BindAddr, o.BindPort, err = cluster.SplitHostPort(c.Bind); err != nil {
		return invalid("cluster.bind", err)
	}
	exposed := !cluster.Loopback(o.BindAddr)
	where := c.Bind
	if c.Advertise != "" {
		if o.AdvertiseAddr, o.AdvertisePort, err = cluster.SplitHostPort(c.Advertise); err != nil {
			return invalid("cluster.advertise", err)
		}
		exposed = exposed || !cluster.Loopback(o.AdvertiseAddr)
	}
	if o.SecretKeys, err = c.GossipKeys(); err != nil {
		return invalid("cluster.secret_key", err)
	}
	if c.EvictSigningKey != "" {
		if o.EvictSigner, err = config.EvictSigningKey(c.EvictSigningKey); err != nil {
			return invalid("cluster.evict_signing_key", err)
		}
	}
	if c.EvictVerifyKey != "" {
		if o.EvictVerifier, err = config.EvictVerifyKey(c.EvictVerifyKey); err != nil {
			return invalid("cluster.evict_verify_key", err)
		}
	}
	if !exposed {
		return o, nil, nil
	}
	var open []string
	check := func(ok bool, key, what string) error {
		if ok {
			return nil
		}
		if c.Insecure {
			open = append(open, fmt.Sprintf("%s is not set: %s (cluster.insecure)", key, what))
			return nil
		}
		return fmt.Errorf("%w: %s: this member is reachable off loopback (%s) and %s; set %s (farewell keys makes one), or cluster.insecure: true to run so anyway",
			config.ErrInvalid, key, where, what, key)
	}
	if err := check(len(o.SecretKeys) > 0, "cluster.secret_key", "gossip would not be encrypted"); err != nil {
		return o, nil, err
	}
	switch p {
	case ForOrchestrator:
		err = check(o.EvictSigner != nil, "cluster.evict_signing_key", "its evictions would be unsigned")
	case ForNode:
		err = check(o.EvictVerifier != nil, "cluster.evict_verify_key", "it would take unsigned evictions from anyone")
	}
	return o, open, err
}

// Connection maps the temporal.* settings to the starter's own connection options.
func Connection(t config.Temporal) starter.Connection {
	return starter.Connection{Address: t.Address, Namespace: t.Namespace, APIKey: t.APIKey,
		TLS: starter.TLS{Enabled: t.TLS.Enabled, CA: t.TLS.CA, Cert: t.TLS.Cert, Key: t.TLS.Key, ServerName: t.TLS.ServerName}}
}

// Orchestrator maps the configuration to an orchestrator's assembly (worker.Assembly):
// the observer member (cluster.*, as an orchestrator: it signs evictions), the plan
// (shutdown.*), the budget (budget.*), the namespace and the watchdog (watchdog.*). The
// warnings say what cluster.insecure leaves open.
func Orchestrator(cfg config.Config) (worker.Assembly, []string, error) {
	m, open, err := MemberOptions(cfg.Cluster, ForOrchestrator)
	if err != nil {
		return worker.Assembly{}, nil, err
	}
	p, err := cfg.Shutdown.Plan()
	if err != nil {
		return worker.Assembly{}, nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	w := Watchdog(cfg.Watchdog)
	return worker.Assembly{Member: m, Join: cfg.Cluster.Join, Plan: p, Limits: cfg.Budget.Limits(),
		Namespace: cfg.Temporal.Namespace, Watchdog: &w}, open, nil
}

// Watchdog maps watchdog.* to the sweep's schedule.
func Watchdog(c config.Watchdog) worker.Watchdog {
	return worker.Watchdog{Enabled: c.Enabled, Every: c.Interval, Sweep: Sweep(c, false)}
}

// Sweep maps watchdog.* to one sweep (dryRun: say what it would do, do nothing).
func Sweep(c config.Watchdog, dryRun bool) workflows.SweepRequest {
	return workflows.SweepRequest{
		ZombieQuery: activities.ZombieQuery{BlockedAfter: plan.Duration(c.BlockedAfter), LeavingAfter: plan.Duration(c.LeavingAfter),
			EvictedAfter: plan.Duration(c.EvictedAfter)},
		Action: c.Action, DryRun: dryRun,
	}
}
