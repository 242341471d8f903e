package e2e

import "testing"

// The checker's count of nodes in service judges each node by the members on its side
// of a split: a node serving on the minority side is in service, a zombie that sees
// everyone while they see it dead is not, a stale instance is not.
func TestAliveForMostJudgesEachSideOfASplit(t *testing.T) {
	sideA := []string{"n1", "n2", "n3"}
	sideB := []string{"n4", "n5", "o2"}
	view := func(alive []string, dead []string) map[string]viewEntry {
		v := map[string]viewEntry{}
		for _, n := range alive {
			v[n] = viewEntry{State: "alive", Instance: "i-" + n}
		}
		for _, n := range dead {
			v[n] = viewEntry{State: "dead", Instance: "i-" + n}
		}
		return v
	}
	var procs []watched
	var results []sampleOf
	add := func(name string, v map[string]viewEntry) {
		procs = append(procs, watched{Name: name, Role: "node", Instance: "i-" + name})
		results = append(results, sampleOf{serving: true, view: v})
	}
	for _, n := range sideA {
		add(n, view(sideA, sideB))
	}
	for _, n := range sideB {
		add(n, view(sideB, sideA))
	}
	// A zombie: it sees everyone alive, everyone sees it dead.
	add("z", view(append(append([]string{"z"}, sideA...), sideB...), nil))
	for i := range results[:6] {
		results[i].view["z"] = viewEntry{State: "dead", Instance: "i-z"}
	}
	for _, p := range procs[:6] {
		if !aliveForMost(p, procs, results) {
			t.Errorf("%s serves and its side sees it alive: want in service", p.Name)
		}
	}
	if aliveForMost(procs[6], procs, results) {
		t.Error("the zombie is dead for everyone: want not in service")
	}
	// The old instance of n1: the views know another.
	if aliveForMost(watched{Name: "n1", Instance: "i-old"}, procs, results) {
		t.Error("a stale instance of n1: want not in service")
	}
	// A process without a view of its own is judged by all who answer: alive for three
	// of six (n2, n3 and the zombie) is not most.
	if aliveForMost(watched{Name: "n1", Role: "hostapp"}, procs[1:], results[1:]) {
		t.Error("n1 judged by all: alive for 3 of 6, want not in service")
	}
}
