package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/farewell-project/farewell/cluster"
)

// Names of the membership gauges, observed from a cluster member's view. (The shutdown
// and step metrics are recorded by the workflow; their names are in package workflows.)
const (
	MetricMembers        = "farewell_members"         // gauge, by state, role and seen_by
	MetricMembersBlocked = "farewell_members_blocked" // gauge, by seen_by
)

var states = []cluster.State{cluster.StateAlive, cluster.StateLeaving, cluster.StateLeft, cluster.StateDead, cluster.StateEvicted}

// ObserveMembers reports, at every collection, how many members member sees in each
// state (per role) and how many alive nodes it sees blocked. Zero counts are reported
// too, so that alerts resolve.
func ObserveMembers(m metric.Meter, member *cluster.Member) error {
	byState, err := m.Int64ObservableGauge(MetricMembers,
		metric.WithDescription("Cluster members by state and role, as seen by this member"))
	if err != nil {
		return fmt.Errorf("%s: %w", MetricMembers, err)
	}
	blocked, err := m.Int64ObservableGauge(MetricMembersBlocked,
		metric.WithDescription("Alive nodes whose heartbeat stood still past the expiration, as seen by this member"))
	if err != nil {
		return fmt.Errorf("%s: %w", MetricMembersBlocked, err)
	}
	seenBy := attribute.String("seen_by", member.Name())
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		counts := map[cluster.Role]map[cluster.State]int64{cluster.RoleNode: {}, cluster.RoleObserver: {}}
		var nBlocked int64
		for _, info := range member.Members() {
			if counts[info.Role] == nil {
				counts[info.Role] = map[cluster.State]int64{}
			}
			counts[info.Role][info.State]++
			if info.Blocked {
				nBlocked++
			}
		}
		for role, byRole := range counts {
			for _, st := range states {
				o.ObserveInt64(byState, byRole[st], metric.WithAttributes(seenBy,
					attribute.String("state", string(st)), attribute.String("role", string(role))))
			}
		}
		o.ObserveInt64(blocked, nBlocked, metric.WithAttributes(seenBy))
		return nil
	}, byState, blocked)
	return err
}
