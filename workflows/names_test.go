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

// The prefix alone, or anything shorter or other, names no node.
func TestNodeFromWorkflowIDRefusesWhatNamesNoNode(t *testing.T) {
	for _, id := range []string{WorkflowID(""), "farewell-shutdown", "farewell-drain-d1", ""} {
		if node, ok := NodeFromWorkflowID(id); ok || node != "" {
			t.Errorf("%q: node %q, %v; want none", id, node, ok)
		}
	}
	if node, ok := NodeFromWorkflowID(WorkflowID("n")); !ok || node != "n" {
		t.Errorf("a one-letter node: %q %v", node, ok)
	}
}
