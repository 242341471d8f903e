package plan

import (
	"strings"
	"testing"
	"time"
)

func TestLimitsTightenTakesTheStricterOfEach(t *testing.T) {
	for _, c := range []struct{ cluster, drain, want Limits }{
		{Limits{}, Limits{}, Limits{}},
		{Limits{}, Limits{MaxParallel: 2, MinAlive: 3}, Limits{MaxParallel: 2, MinAlive: 3}},
		{Limits{MaxParallel: 5, MinAlive: 4}, Limits{MaxParallel: 2, MinAlive: 3}, Limits{MaxParallel: 2, MinAlive: 4}},
		{Limits{MaxParallel: 2, MinAlive: 1}, Limits{MaxParallel: 9}, Limits{MaxParallel: 2, MinAlive: 1}},
		{Limits{MaxParallel: 2}, Limits{}, Limits{MaxParallel: 2}},
	} {
		if got := c.cluster.Tighten(c.drain); got != c.want {
			t.Errorf("%+v tightened by %+v = %+v, want %+v", c.cluster, c.drain, got, c.want)
		}
	}
}

func TestLimitsValidateNamesTheField(t *testing.T) {
	for l, field := range map[Limits]string{
		{MaxParallel: -1}:           "max_parallel",
		{MinAlive: -2}:              "min_alive",
		{MaxParallel: MaxLimit + 1}: "max_parallel",
	} {
		err := l.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), field+":") {
			t.Errorf("%+v: want an error naming %s, got %v", l, field, err)
		}
	}
	if err := (Limits{MaxParallel: 3, MinAlive: 2}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestAdmit(t *testing.T) {
	for _, c := range []struct {
		name    string
		l       Limits
		a       Ask
		granted bool
		floor   bool
		why     string
	}{
		{"no limits", Limits{}, Ask{InFlight: 50, ServingAfter: 0, Serving: true}, true, false, ""},
		{"room", Limits{MaxParallel: 2, MinAlive: 3}, Ask{InFlight: 1, ServingAfter: 3, Serving: true}, true, false, ""},
		{"full", Limits{MaxParallel: 2}, Ask{InFlight: 2, ServingAfter: 9, Serving: true}, false, false, "2 shutdowns in flight, max_parallel is 2"},
		{"floor", Limits{MinAlive: 3}, Ask{ServingAfter: 2, Serving: true}, false, true, "it would leave 2 nodes in service, fewer than min_alive 3"},
		{"the floor comes first", Limits{MaxParallel: 1, MinAlive: 3}, Ask{InFlight: 1, ServingAfter: 2, Serving: true}, false, true, "min_alive 3"},
		{"not serving: the floor does not hold it", Limits{MinAlive: 3}, Ask{ServingAfter: 1}, true, false, ""},
		{"not serving still counts in flight", Limits{MaxParallel: 1, MinAlive: 3}, Ask{InFlight: 1}, false, false, "max_parallel is 1"},
		{"its own SIGTERM goes beyond, saying so", Limits{MaxParallel: 1}, Ask{InFlight: 1, Serving: true, Unblockable: true}, true, false, "never held back, though 1 shutdowns in flight"},
		{"its own SIGTERM below the floor", Limits{MinAlive: 5}, Ask{ServingAfter: 1, Serving: true, Unblockable: true}, true, false, "fewer than min_alive 5"},
	} {
		got := Admit(c.l, c.a)
		if got.Granted != c.granted || got.Floor != c.floor || !strings.Contains(got.Why, c.why) || (c.why == "" && got.Why != "") {
			t.Errorf("%s: Admit(%+v, %+v) = %+v", c.name, c.l, c.a, got)
		}
	}
}

func TestWavesAndWorstCase(t *testing.T) {
	for _, c := range []struct{ n, k, want int }{{0, 2, 0}, {1, 2, 1}, {5, 2, 3}, {6, 2, 3}, {100, 10, 10}, {7, 0, 1}, {3, 9, 1}} {
		if got := Waves(c.n, c.k); got != c.want {
			t.Errorf("Waves(%d, %d) = %d, want %d", c.n, c.k, got, c.want)
		}
	}
	if got := WorstCase(5, 2, time.Minute, 10*time.Second); got != 3*time.Minute+20*time.Second {
		t.Errorf("WorstCase(5, 2, 1m, 10s) = %s", got)
	}
	if got := WorstCase(3, 1, time.Duration(1<<62), time.Duration(1<<62)); got <= 0 {
		t.Errorf("WorstCase overflowed: %s", got)
	}
}
