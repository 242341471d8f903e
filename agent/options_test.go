package agent

import (
	"context"
	"testing"
	"time"

	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/plan"
)

// A node's member is a node with its tags; the orchestrator's and a look's are
// observers, whose tags are neither taken nor checked.
func TestMemberOptionsByPurpose(t *testing.T) {
	c := config.DefaultConfig().Cluster
	c.Name, c.Bind, c.Tags = "host-1", "127.0.0.1:0", map[string]string{"rack": "r1"}
	for p, role := range map[Purpose]cluster.Role{ForNode: cluster.RoleNode, ForOrchestrator: cluster.RoleObserver, ForLooking: cluster.RoleObserver} {
		o, _, err := MemberOptions(c, p)
		if err != nil || o.Role != role || (p == ForNode) != (o.Tags["rack"] == "r1") {
			t.Errorf("purpose %d: role %s, tags %v, %v; want %s, tags only for a node", p, o.Role, o.Tags, err, role)
		}
	}
	c.Tags = map[string]string{"rack": "r 1"}
	if _, _, err := MemberOptions(c, ForNode); err == nil {
		t.Error("a node with a bad tag accepted")
	}
	if _, _, err := MemberOptions(c, ForLooking); err != nil {
		t.Errorf("a look refused for a tag it does not use: %v", err)
	}
}

// A host's step with nothing but its name and its place takes the documented defaults.
func TestHostStepDefaults(t *testing.T) {
	p, _, _, err := hostSteps(plan.Default(), []Step{{Name: "flush", Before: plan.StopServices, Run: func(context.Context) error { return nil }}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := p.Step("flush")
	if s.StartToClose != 10*time.Second || s.MaxAttempts != 2 || s.Backoff != 100*time.Millisecond || s.OnFailure != plan.Continue {
		t.Errorf("defaults: %+v; want 10s, 2 attempts, 100ms backoff, continue", s)
	}
}
