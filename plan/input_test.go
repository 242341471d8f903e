package plan

import (
	"strings"
	"testing"
)

// A node name goes into workflow IDs, task queues, the UI and terminals: only letters,
// digits, '.', '-' and '_', 1 to MaxNodeName bytes — no control character, space,
// separator or non-ASCII letter gets in.
func TestValidateNodeNameBounds(t *testing.T) {
	good := []string{"a", "z", "A", "Z", "0", "9", "node-1", "db_2.rack-3", "A.b-C_d", strings.Repeat("n", MaxNodeName)}
	for _, name := range good {
		if err := ValidateNodeName(name); err != nil {
			t.Errorf("%q refused: %v", name, err)
		}
	}
	bad := []string{"", strings.Repeat("n", MaxNodeName+1), "node\x00", "node\n1", "node\r", "\x1b[31mnode", "node\t1", "node\x7f",
		"node 1", "node/1", "../etc", "node:1", "node;rm", "nödé", "node\u200b", "node\u2028", "node@host", "node*", "`node`"}
	for _, name := range bad {
		if err := ValidateNodeName(name); err == nil {
			t.Errorf("%q accepted", name)
		}
	}
	// The boundaries of each range, one past them.
	for _, r := range []rune{'a' - 1, 'z' + 1, 'A' - 1, 'Z' + 1, '0' - 1, '9' + 1, ',', '/'} {
		if err := ValidateNodeName("n" + string(r)); err == nil {
			t.Errorf("%q accepted", "n"+string(r))
		}
	}
}
