package workflows

import "testing"

func TestIDFor(t *testing.T) {
	if got := IDFor("node-3"); got != "farewell-shutdown-node-3" {
		t.Errorf("node: %s", got)
	}
	if got := IDFor("farewell-shutdown-node-3"); got != "farewell-shutdown-node-3" {
		t.Errorf("id: %s", got)
	}
	if node, ok := NodeFromWorkflowID("farewell-shutdown-node-3"); !ok || node != "node-3" {
		t.Errorf("node of the ID: %q %v", node, ok)
	}
}
