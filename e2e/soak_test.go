package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/farewell-project/farewell/internal/netbed"
	"github.com/farewell-project/farewell/internal/testkit"
)

// The soak: shutdowns, SIGTERMs, drains, restarts and the nemesis's faults drawn from a
// seed, on one production testbed, epoch after epoch, each epoch judged by the checker.
// `make soak` runs it (SOAK_DURATION, 5m unless set; SOAK_SEED, the clock unless set);
// the seed is printed first, and a failing seed fails the same way again.

const (
	soakSeedEnv     = "SOAK_SEED"
	soakDurationEnv = "SOAK_DURATION"
)

// soakFaults are the step faults a soak node may start with.
var soakFaults = []string{"", "", "", "set-gracefully-left=hang", "stop-heartbeat=hang", "deregister=error", "stop-services=hang", "gossip=stall"}

// soak is one soak run.
type soak struct {
	t    *testing.T
	b    *prodBed
	rnd  *rand.Rand
	seed uint64

	shutdowns, faults, drains, epochs int
	violations                        []string
}

// epoch is what one epoch did, for its verdict.
type epoch struct {
	judged   []judged
	touched  []string
	waits    []func(time.Duration) // until each shutdown triggered ended, at most so long
	heals    []func()              // undo the faults, in order
	cut      time.Time             // when the first fault began
	fault    time.Duration         // how long faults lasted
	drain    *netbed.Proc
	drainSet []string
}

func TestSoak(t *testing.T) {
	if os.Getenv(soakDurationEnv) == "" {
		t.Skip("the soak runs with `make soak` (" + soakDurationEnv + ", " + soakSeedEnv + ")")
	}
	duration, err := time.ParseDuration(os.Getenv(soakDurationEnv))
	if err != nil || duration <= 0 {
		t.Fatalf("%s=%q: want a duration such as 30m", soakDurationEnv, os.Getenv(soakDurationEnv))
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(soakSeedEnv); v != "" {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: want an unsigned integer", soakSeedEnv, v)
		}
	}
	t.Logf("soak: seed %d, for %s (reproduce: make soak SOAK_SEED=%d SOAK_DURATION=%s)", seed, duration, seed, duration)
	s := &soak{t: t, seed: seed, rnd: rand.New(rand.NewPCG(seed, seed^0x5eed))}
	s.b = newProdBed(t, bedOptions{nodes: 8, hostApp: true})
	start := time.Now()
	for time.Since(start) < duration {
		s.epochs++
		s.runEpoch()
	}
	if late := s.b.checker.stop(); len(late) > 0 {
		s.violations = append(s.violations, late...)
	}
	s.b.checker = nil
	t.Logf("soak verdict (seed %d, %s): %d epochs, %d shutdowns (%d in drains), %d faults injected, %d violations",
		seed, time.Since(start).Round(time.Second), s.epochs, s.shutdowns, s.drains, s.faults, len(s.violations))
	for _, v := range s.violations {
		t.Errorf("violation: %s", v)
	}
}

// keepEvidence copies every process's whole log so far and each judged shutdown's
// status (its report, from Temporal) out of the testbed, which is removed at the end:
// to FAREWELL_SOAK_EVIDENCE, by default .farewell/soak/seed-SEED/epoch-N/ in the
// repository, so that a violation can be understood after the run.
func (s *soak) keepEvidence(ep *epoch) {
	dir := os.Getenv("FAREWELL_SOAK_EVIDENCE")
	if dir == "" {
		dir = filepath.Join("..", ".farewell", "soak")
	}
	dir = filepath.Join(dir, fmt.Sprintf("seed-%d", s.seed), fmt.Sprintf("epoch-%d", s.epochs))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.logf("evidence not kept: %v", err)
		return
	}
	_ = os.RemoveAll(filepath.Join(dir, "logs")) // an earlier run of the same seed's
	if out, err := exec.Command("cp", "-r", s.b.logs, filepath.Join(dir, "logs")).CombinedOutput(); err != nil {
		s.logf("logs not kept: %v: %s", err, out)
	}
	for _, j := range ep.judged {
		p := s.b.opsStart("status", j.Node, "-o", "json")
		if code := p.WaitFor(time.Minute); code != 0 {
			s.logf("status of %s: exit %d", j.Node, code)
		}
		_ = os.WriteFile(filepath.Join(dir, j.Node+"-status.json"), []byte(p.Log()), 0o644)
	}
	abs, _ := filepath.Abs(dir)
	s.logf("evidence kept in %s", abs)
}

func (s *soak) logf(format string, args ...any) {
	s.t.Logf("[epoch %d] "+format, append([]any{s.epochs}, args...)...)
}

// serving lists the nodes (not the host app) whose process runs.
func (s *soak) serving() []*bedProc {
	var out []*bedProc
	for _, bp := range s.b.nodes {
		if bp.role == "node" && !bp.p.Exited() {
			out = append(out, bp)
		}
	}
	return out
}

// pick takes k distinct processes out of from (fewer if from is short).
func (s *soak) pick(from []*bedProc, k int) []*bedProc {
	from = slices.Clone(from)
	s.rnd.Shuffle(len(from), func(i, j int) { from[i], from[j] = from[j], from[i] })
	return from[:min(k, len(from))]
}

func (s *soak) runEpoch() {
	b := s.b
	ep := &epoch{}
	nodes := s.serving()
	targets := s.pick(nodes, 1+s.rnd.IntN(2))
	for _, n := range targets {
		s.trigger(ep, n)
	}
	bystanders := slices.DeleteFunc(slices.Clone(nodes), func(bp *bedProc) bool { return slices.Contains(targets, bp) })
	if s.rnd.IntN(3) == 0 && len(bystanders) >= 4 {
		s.drain(ep, s.pick(bystanders, 2))
		bystanders = slices.DeleteFunc(bystanders, func(bp *bedProc) bool { return slices.Contains(ep.drainSet, bp.name) })
	}
	for range s.rnd.IntN(3) {
		s.inject(ep, targets, bystanders)
	}
	// The shutdowns run under the faults for a while (a frozen or cut-off node may not
	// finish before it is healed); then everything heals, and they end.
	for _, w := range ep.waits {
		w(45 * time.Second)
	}
	if ep.drain != nil {
		ep.drain.WaitFor(45 * time.Second)
	}
	if !ep.cut.IsZero() {
		ep.fault = time.Since(ep.cut)
	}
	// The network first: a process restarted (a killed orchestrator) must find its
	// peers, as it would once the partition that hid them is over (the soak found a
	// restart inside a split that could not join: the harness's order, not the product).
	if err := b.bed.HealAll(); err != nil {
		s.t.Fatal(err)
	}
	for i := len(ep.heals) - 1; i >= 0; i-- {
		ep.heals[i]()
	}
	for _, w := range ep.waits {
		w(3 * time.Minute)
	}
	if ep.drain != nil {
		ep.drain.WaitFor(5 * time.Minute)
		s.logf("drain ended: exit %d", ep.drain.ExitCode())
	}
	for i := range ep.judged {
		ep.judged[i].Partition = ep.fault
	}
	var budget checkerAnswer
	if ep.drain != nil {
		budget = b.checker.ask(checkerCommand{Op: "budget-end"})
		for _, v := range budget.Violations {
			s.violations = append(s.violations, fmt.Sprintf("epoch %d: %s", s.epochs, v))
			s.logf("VIOLATION: %s", v)
		}
	}
	ans := b.checker.ask(checkerCommand{Op: "verdict", Settle: 2 * time.Minute, Shutdowns: ep.judged, Touched: ep.touched})
	outcomes := []string{}
	for _, j := range ep.judged {
		outcomes = append(outcomes, j.Node+"="+cmpOr(ans.Outcomes[j.Node], "local"))
	}
	s.logf("verdict: %d shutdowns (%s), faults %s, %d violations%s", len(ep.judged), strings.Join(outcomes, " "),
		ep.fault.Round(100*time.Millisecond), len(ans.Violations), budgetNote(ep, budget))
	for _, v := range ans.Violations {
		s.violations = append(s.violations, fmt.Sprintf("epoch %d: %s", s.epochs, v))
		s.logf("VIOLATION: %s", v)
	}
	if len(ans.Violations)+len(budget.Violations) > 0 {
		s.keepEvidence(ep)
	}
	// Keep the fleet: a new process for every node that is out.
	for _, bp := range b.nodes {
		if bp.p.Exited() {
			s.restartNode(bp)
		} else if bp.role == "node" && !strings.Contains(bp.p.Log(), "node worker serving") {
			s.logf("%s runs without its worker", bp.name)
		}
	}
}

func budgetNote(ep *epoch, a checkerAnswer) string {
	if ep.drain == nil {
		return ""
	}
	return fmt.Sprintf("; drain: %d samples, at most %d in flight, at least %d in service", a.Samples, a.MaxInFlight, a.MinInService)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// trigger starts n's shutdown: from the CLI (sometimes forced) or by SIGTERM.
func (s *soak) trigger(ep *epoch, n *bedProc) {
	b := s.b
	s.shutdowns++
	j := target(n, "either", b.budgetOf(), 0)
	if s.rnd.IntN(3) == 0 {
		s.logf("SIGTERM %s", n.name)
		if err := n.p.Signal(syscall.SIGTERM); err != nil {
			s.t.Fatal(err)
		}
		// Its own shutdown: the workflow when Temporal answers (the latest run, if it is
		// this process's), else the plan run alone.
		j.Budget = 0
		ep.waits = append(ep.waits, func(limit time.Duration) {
			if n.p.WaitFor(limit) == -1 && !n.p.Exited() && limit > time.Minute {
				s.logf("%s still runs after its SIGTERM (aborted?)", n.name)
			}
		})
		j.NoRun = true
		ep.judged = append(ep.judged, j)
		return
	}
	args := []string{}
	if s.rnd.IntN(4) == 0 {
		args = append(args, "--force")
	}
	s.logf("shutdown %s %s", n.name, strings.Join(args, " "))
	run := b.shutdown(n.name, args...)
	ep.waits = append(ep.waits, func(limit time.Duration) {
		switch code := run.WaitFor(limit); {
		case !run.Exited() && limit < time.Minute:
		case !run.Exited():
			s.violations = append(s.violations, fmt.Sprintf("epoch %d: shutdown %s did not end within 3 minutes of the heal", s.epochs, n.name))
		case code != 0 && code != 3:
			s.logf("shutdown %s: exit %d: %s", n.name, code, lastLine(run.Log()))
		}
	})
	ep.judged = append(ep.judged, j)
}

// drain drains nodes, two at a time, under the checker's budget watch.
func (s *soak) drain(ep *epoch, nodes []*bedProc) {
	b := s.b
	var names []string
	for _, n := range nodes {
		names = append(names, n.name)
		j := target(n, "either", b.budgetOf(), 0)
		ep.judged = append(ep.judged, j)
	}
	s.drains += len(nodes)
	s.shutdowns += len(nodes)
	ep.drainSet = names
	b.checker.ask(checkerCommand{Op: "budget", Budget: &budgetWatch{Nodes: names, MaxParallel: 1, MinAlive: 2}})
	s.logf("drain %s --max-parallel 1", strings.Join(names, " "))
	ep.drain = b.opsStart(append([]string{"drain", "--name", fmt.Sprintf("soak-%d", s.epochs), "--max-parallel", "1", "--min-alive", "2", "--failure-threshold", "0", "--wait"}, names...)...)
}

// inject applies one fault of the nemesis, drawn from the seed.
func (s *soak) inject(ep *epoch, targets, bystanders []*bedProc) {
	b := s.b
	s.faults++
	if ep.cut.IsZero() {
		ep.cut = time.Now()
	}
	all := append(slices.Clone(targets), bystanders...)
	switch s.rnd.IntN(8) {
	case 0, 1: // a node cut from one net or both
		n := s.pick(all, 1)[0]
		nets := [][]string{{"cluster"}, {"temporal"}, {"cluster", "temporal"}}[s.rnd.IntN(3)]
		s.logf("cut %s from %s", n.name, strings.Join(nets, "+"))
		for _, net := range nets {
			if err := b.bed.Cut(n.name, net); err != nil {
				s.t.Fatal(err)
			}
		}
	case 2: // a split of the cluster net
		var side []string
		for _, bp := range s.pick(all, 1+s.rnd.IntN(2)) {
			side = append(side, bp.name)
		}
		if s.rnd.IntN(2) == 0 {
			side = append(side, "orch-2")
		}
		s.logf("split the cluster net: %s apart", strings.Join(side, ", "))
		b.split(side...)
	case 3: // a node frozen
		n := s.pick(all, 1)[0]
		s.logf("SIGSTOP %s", n.name)
		if n.p.Signal(syscall.SIGSTOP) == nil {
			ep.heals = append(ep.heals, func() { _ = n.p.Signal(syscall.SIGCONT) })
		}
	case 4: // an orchestrator killed, restarted at the end of the epoch
		o := b.orchs[s.rnd.IntN(len(b.orchs))]
		if slices.Contains(ep.touched, o.name) {
			s.logf("(%s is down already)", o.name)
			return
		}
		s.logf("SIGKILL %s", o.name)
		o.p.Kill()
		o.p.WaitFor(10 * time.Second)
		ep.touched = append(ep.touched, o.name)
		ep.heals = append(ep.heals, func() { b.restart(o) })
	case 5: // a history host killed, restarted at the end of the epoch
		h := b.temporal.HistoryHosts()[s.rnd.IntN(len(b.temporal.HistoryHosts()))]
		if slices.Contains(ep.touched, h) {
			s.logf("(%s is down already)", h)
			return
		}
		ep.touched = append(ep.touched, h)
		s.logf("SIGKILL %s", h)
		b.temporal.Kill(h)
		ep.heals = append(ep.heals, func() {
			if err := b.temporal.Start(h); err != nil {
				s.t.Fatal(err)
			}
		})
	case 6: // the frontend restarted
		s.logf("restart the frontend")
		if err := b.temporal.Stop("frontend"); err != nil {
			s.t.Fatal(err)
		}
		if err := b.temporal.Start("frontend"); err != nil {
			s.t.Fatal(err)
		}
	case 7: // PostgreSQL restarted
		s.logf("restart PostgreSQL")
		if err := b.temporal.StopPostgres(s.rnd.IntN(2) == 0); err != nil {
			s.t.Fatal(err)
		}
		if err := b.temporal.StartPostgres(); err != nil {
			s.t.Fatal(err)
		}
	}
}

// restartNode starts a new process for a node that is out, with a step fault drawn
// from the seed.
func (s *soak) restartNode(bp *bedProc) {
	args := slices.Clone(bp.args)
	if i := slices.Index(args, "--fault"); i >= 0 {
		args = slices.Delete(args, i, i+2)
	}
	if bp.role == "node" {
		if f := soakFaults[s.rnd.IntN(len(soakFaults))]; f != "" {
			args = append(args, "--fault", f)
		}
	}
	bp.args = args
	s.logf("restart %s %s", bp.name, strings.Join(faultsOf(args), " "))
	s.b.restart(bp)
	testkit.Eventually(s.t, time.Minute, bp.name+" to be alive again", func() bool {
		v := s.b.checker.ask(checkerCommand{Op: "views"}).Views["orch-1"][bp.name]
		return v.State == "alive" && v.Instance == bp.instance
	})
}

func faultsOf(args []string) []string {
	if i := slices.Index(args, "--fault"); i >= 0 && i+1 < len(args) {
		return args[i : i+2]
	}
	return nil
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
