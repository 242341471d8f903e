package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/plan"
)

// NodeMember lets the node steps act on a cluster member. It is where the cluster's
// types become the activities' wire types.
func NodeMember(m *cluster.Member) activities.Member { return nodeMember{m} }

type nodeMember struct{ m *cluster.Member }

var _ activities.Member = nodeMember{}

func (n nodeMember) Name() string                { return n.m.Name() }
func (n nodeMember) Instance() string            { return n.m.Instance() }
func (n nodeMember) State() string               { return string(n.m.State()) }
func (n nodeMember) HeartbeatRunning() bool      { return n.m.HeartbeatRunning() }
func (n nodeMember) StartHeartbeat()             { n.m.StartHeartbeat() }
func (n nodeMember) StopHeartbeat()              { n.m.StopHeartbeat() }
func (n nodeMember) Leave(d time.Duration) error { return n.m.Leave(d) }
func (n nodeMember) Left() (bool, error)         { return n.m.Left() }
func (n nodeMember) Services() []string          { return n.m.Services().Names() }
func (n nodeMember) RunningServices() []string   { return n.m.Services().Running() }

func (n nodeMember) Evicted() (string, string, bool) { return n.m.Evicted() }

func (n nodeMember) SetState(ctx context.Context, state string) error {
	return wireError(n.m.SetState(ctx, cluster.State(state)))
}

func (n nodeMember) StopServices(ctx context.Context, progress func(activities.ServiceResult)) []activities.ServiceResult {
	var each func(cluster.ServiceResult)
	if progress != nil {
		each = func(r cluster.ServiceResult) { progress(serviceResult(r)) }
	}
	return serviceResults(n.m.Services().StopAll(ctx, each))
}

func (n nodeMember) Terminate(ctx context.Context) []activities.ServiceResult {
	return serviceResults(n.m.Terminate(ctx))
}

func serviceResult(r cluster.ServiceResult) activities.ServiceResult {
	return activities.ServiceResult{Name: r.Name, Status: string(r.Status), Duration: plan.Millis(r.Duration),
		Error: r.Error, AlreadyStopped: r.AlreadyStopped}
}

func serviceResults(rs []cluster.ServiceResult) []activities.ServiceResult {
	out := make([]activities.ServiceResult, len(rs))
	for i, r := range rs {
		out[i] = serviceResult(r)
	}
	return out
}

// wireError marks the cluster's permanent conditions with the activities' sentinels.
func wireError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cluster.ErrEvicted):
		return fmt.Errorf("%w: %w", activities.ErrEvicted, err)
	case errors.Is(err, cluster.ErrShutdown):
		return fmt.Errorf("%w: %w", activities.ErrDeparted, err)
	case errors.Is(err, cluster.ErrUnknownNode):
		return fmt.Errorf("%w: %w", activities.ErrUnknownMember, err)
	}
	return err
}

// Observe lets the cluster activities use the orchestrator's observer member.
func Observe(m *cluster.Member) activities.Observer { return observer{m} }

type observer struct{ m *cluster.Member }

var _ activities.Observer = observer{}

func (o observer) Name() string { return o.m.Name() }

func (o observer) Member(name string) (activities.MemberInfo, bool) {
	info, ok := o.m.Member(name)
	return memberInfo(info), ok
}

func (o observer) Members() []activities.MemberInfo {
	all := o.m.Members()
	out := make([]activities.MemberInfo, len(all))
	for i, info := range all {
		out[i] = memberInfo(info)
	}
	return out
}

func (o observer) Evict(ctx context.Context, node, instance, reason string) (activities.EvictResult, error) {
	res, err := o.m.Evict(ctx, node, instance, reason)
	return activities.EvictResult{Confirmed: res.Confirmed, AlreadyEvicted: res.AlreadyEvicted, Gone: res.Gone}, wireError(err)
}

func (o observer) WaitConverged(ctx context.Context, q activities.ConvergenceQuery, interval time.Duration, progress func(activities.Convergence)) (activities.Convergence, error) {
	var each func(cluster.Convergence)
	if progress != nil {
		each = func(c cluster.Convergence) { progress(convergence(c)) }
	}
	c, err := o.m.WaitConverged(ctx, cluster.ConvergenceQuery{Target: q.Node, Instance: q.Instance, StrictLeft: q.StrictLeft}, interval, each)
	return convergence(c), wireError(err)
}

func memberInfo(i cluster.MemberInfo) activities.MemberInfo {
	now := time.Now()
	out := activities.MemberInfo{Name: i.Name, Addr: i.Addr, Role: string(i.Role), State: string(i.State),
		Instance: i.Instance, Blocked: i.Blocked, Tags: i.Tags, Steps: i.Steps, HeartbeatAge: i.HeartbeatAge(now), StateAge: now.Sub(i.Since)}
	if !i.EvictedHeartbeat.IsZero() {
		out.EvictedHeartbeatAge = now.Sub(i.EvictedHeartbeat)
	}
	return out
}

func convergence(c cluster.Convergence) activities.Convergence {
	views := make(map[string]string, len(c.Views))
	for k, v := range c.Views {
		views[k] = string(v)
	}
	return activities.Convergence{Status: string(c.Status), Converged: c.Converged, Views: views, Pending: c.Pending,
		Answered: c.Answered, Needed: c.Needed}
}
