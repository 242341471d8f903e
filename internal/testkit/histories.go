package testkit

import (
	"path/filepath"
	"strings"
	"testing"
)

// HistoryDirs are the committed histories' folders under testdata/histories: the
// current code's runs ("", written by `make histories`) and earlier versions' — v0,
// before the workflow was versioned; v1, before it acted on the process alone; v2,
// before the budget and the host's own steps; v4, before the budget's answers and the
// give-back went out from local activities.
var HistoryDirs = []string{"", "v0", "v1", "v2", "v4"}

// Histories returns the committed histories by name ("graceful", "v1/forced", …), from
// the repository whose root is root, failing t when one every version has is missing.
func Histories(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, dir := range HistoryDirs {
		files, err := filepath.Glob(filepath.Join(root, "testdata", "histories", dir, "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no committed histories under testdata/histories/%s (%v)", dir, err)
		}
		for _, f := range files {
			out[filepath.Join(dir, strings.TrimSuffix(filepath.Base(f), ".json"))] = f
		}
	}
	for _, want := range []string{"graceful", "degraded", "forced", "aborted", "unknown-node", "cancelled", "force-now", "skip-step",
		"retry", "v0/graceful", "v0/degraded", "v0/forced", "v0/aborted", "v0/unknown-node", "v1/graceful", "v1/forced",
		"v1/cancelled", "v1/force-now", "v1/skip-step", "v1/retry", "host-steps", "v2/graceful", "v2/degraded", "v2/forced",
		"v2/aborted", "v2/cancelled", "v2/force-now", "v2/skip-step", "v2/retry", "v4/graceful", "v4/degraded", "v4/forced",
		"v4/aborted", "v4/cancelled", "v4/force-now", "v4/skip-step", "v4/retry", "v4/host-steps"} {
		if _, ok := out[want]; !ok {
			t.Errorf("testdata/histories lacks %s.json", want)
		}
	}
	return out
}
