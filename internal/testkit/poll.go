package testkit

import (
	"testing"
	"time"
)

// PollEvery is how often Eventually checks its condition.
const PollEvery = 5 * time.Millisecond

// Eventually polls cond until it returns true, failing t (with what it waited for) if
// limit passes first. It is the only way tests wait: never a fixed sleep.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Within(limit, cond) {
		t.Fatalf("timed out after %s waiting for %s", limit, what)
	}
}

// Within polls cond until it returns true or limit passes, and reports which.
func Within(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(PollEvery)
	}
	return true
}
