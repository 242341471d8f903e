package testkit

import (
	"math/rand/v2"
	"net"
	"strconv"
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

// FreePort returns a loopback TCP port that was free a moment ago, picked below the
// kernel's ephemeral range: a port from that range could meanwhile be handed to any
// socket bound to port 0 (cluster members bind so), before the test binds it.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port between 20000 and 32000")
	return 0
}
