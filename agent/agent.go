// Package agent is what a host application embeds to take part in Farewell: a cluster
// member with the host's services registered on it, and an orderly way out of the
// cluster when the process is told to stop.
//
// It never links the Temporal server: only package devserver does.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/config"
)

// Options configure an Agent.
type Options struct {
	// Config supplies cluster.* (membership) and shutdown.* (the plan's timeouts).
	Config config.Config
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// GossipFault, if set, is armed on the member's transport and switches on when its
	// shutdown begins (demos and tests of a hung gossip layer).
	GossipFault *cluster.Fault
	// Tune adjusts memberlist's configuration (tests use faster timings).
	Tune func(*memberlist.Config)
}

// Agent is a node's membership in the cluster plus its way out.
type Agent struct {
	opts   Options
	log    *slog.Logger
	member *cluster.Member
}

// Start joins the cluster as a node (through cluster.join, if set) and starts the
// heartbeat. Register services on Member().Services() before a shutdown.
func Start(ctx context.Context, opts Options) (*Agent, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m, err := cluster.New(cluster.Options{
		Cluster: opts.Config.Cluster,
		Role:    cluster.RoleNode,
		Logger:  opts.Logger,
		Tune:    opts.Tune,
	})
	if err != nil {
		return nil, err
	}
	if err := m.Join(ctx, opts.Config.Cluster.Join); err != nil {
		m.Close()
		return nil, err
	}
	if opts.GossipFault != nil {
		m.Transport().Arm(*opts.GossipFault)
		opts.Logger.Warn("gossip fault armed: it switches on when this node's shutdown begins", "fault", opts.GossipFault.String())
	}
	m.StartHeartbeat()
	return &Agent{opts: opts, log: opts.Logger.With("node", m.Name()), member: m}, nil
}

// Member is the agent's cluster member.
func (a *Agent) Member() *cluster.Member { return a.member }

// Close shuts the member down without a leave (what a crash looks like to peers).
func (a *Agent) Close() { a.member.Close() }

// StepOutcome is how one step of a local shutdown ended.
type StepOutcome struct {
	Name     string
	Err      error
	Duration time.Duration
}

// ShutdownLocal takes the node out of the cluster in this process, without Temporal:
// the graceful steps in order, each under its configured StartToClose, a failed step
// never stopping the next.
func (a *Agent) ShutdownLocal(ctx context.Context) []StepOutcome {
	steps := a.opts.Config.Shutdown.Steps
	run := func(name string, f func(context.Context) error) StepOutcome {
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, steps[name].StartToClose)
		defer cancel()
		err := f(sctx)
		o := StepOutcome{Name: name, Err: err, Duration: time.Since(start)}
		if err != nil {
			a.log.Warn("shutdown step failed; going on", "step", name, "error", err, "took", o.Duration.Round(time.Millisecond))
		} else {
			a.log.Info("shutdown step done", "step", name, "took", o.Duration.Round(time.Millisecond))
		}
		return o
	}
	m := a.member
	return []StepOutcome{
		run(config.StepSetGracefullyLeft, func(ctx context.Context) error { return m.SetState(ctx, cluster.StateLeaving) }),
		run(config.StepStopHeartbeat, func(context.Context) error { m.StopHeartbeat(); return nil }),
		run(config.StepDeregister, func(ctx context.Context) error {
			dl, _ := ctx.Deadline()
			return m.Leave(time.Until(dl))
		}),
		run(config.StepStopServices, func(ctx context.Context) error {
			return cluster.Failed(m.Services().StopAll(ctx, nil))
		}),
	}
}

// Failed reports whether any local step failed.
func Failed(outcomes []StepOutcome) error {
	for _, o := range outcomes {
		if o.Err != nil {
			return fmt.Errorf("%s: %w", o.Name, o.Err)
		}
	}
	return nil
}
