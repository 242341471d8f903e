package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/internal/netbed"
	"github.com/farewell-project/farewell/internal/testkit"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/workflows"
)

// The nemesis: one row per production fault, each on a production testbed of its own
// (real hosts on real links, Temporal on PostgreSQL with its services apart, two
// orchestrators), each judged by the checker, which trusts nobody. `make faults-net`
// runs every row (FAREWELL_FAULTS_NET=all) and prints the table; the rows marked ci
// run in `make test`.

// faultsNetEnv runs every row when set to "all".
const faultsNetEnv = "FAREWELL_FAULTS_NET"

// netRow is one fault of the nemesis.
type netRow struct {
	fault string
	ci    bool
	opts  bedOptions
	run   func(t *testing.T, b *prodBed) netResult
}

// netResult is one row of the table: what the checker said.
type netResult struct {
	fault     string
	outcome   string
	out       bool // the shutdown's process is out (or, aborted, back in service)
	untouched bool // no other process touched
	seconds   float64
	note      string
	problems  []string
}

func TestFaultMatrixNet(t *testing.T) {
	all := os.Getenv(faultsNetEnv) == "all"
	if !all && testing.Short() {
		t.Skip("-short")
	}
	var results []netResult
	for _, r := range netRows() {
		if !all && !r.ci {
			continue
		}
		t.Run(r.fault, func(t *testing.T) {
			opts := r.opts
			if opts.nodes == 0 {
				opts.nodes = 5
			}
			b := newProdBed(t, opts)
			res := r.run(t, b)
			res.fault = r.fault
			if late := b.checker.stop(); len(late) > 0 {
				res.problems = append(res.problems, late...)
				res.out = false
			}
			results = append(results, res)
			if !res.held() {
				t.Errorf("invariant broken: %s: %s", r.fault, strings.Join(res.problems, "; "))
			}
		})
	}
	table := netTable(results)
	t.Logf("nemesis:\n%s", table)
	if file := os.Getenv("FAREWELL_FAULTS_NET_TABLE"); file != "" {
		out := fmt.Sprintf("Nemesis (%d rows; real hosts in network namespaces, Temporal on PostgreSQL with its services apart, two orchestrators):\n\n%s\n", len(results), table)
		if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func (r netResult) held() bool {
	return r.out && r.untouched && len(r.problems) == 0 && r.outcome != "" && r.outcome != "failed"
}

func netTable(results []netResult) string {
	var b strings.Builder
	yes := map[bool]string{true: "yes", false: "NO"}
	fmt.Fprintf(&b, "| fault | outcome | node out? | other processes untouched? | seconds | invariant held |\n|---|---|---|---|---|---|\n")
	for _, r := range results {
		note := r.note
		if len(r.problems) > 0 {
			note = strings.TrimSpace(note + " " + strings.Join(r.problems, "; "))
		}
		if note != "" {
			note = " (" + note + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.1f | %s%s |\n", r.fault, r.outcome, yes[r.out], yes[r.untouched], r.seconds, yes[r.held()], note)
	}
	return b.String()
}

// hangArgs gives a hung step a long timeout and one attempt, so that a row acts while
// it hangs.
func hangArgs(step string, d time.Duration) []string {
	return []string{"--set", "steps." + step + ".start_to_close=" + d.String(), "--set", "steps." + step + ".max_attempts=1"}
}

// budgetOf is the bound of the orchestrators' plan with the --set arguments args.
func (b *prodBed) budgetOf(args ...string) time.Duration {
	b.t.Helper()
	cfg, _, err := config.Load(config.Source{File: b.orchCfg})
	if err != nil {
		b.t.Fatal(err)
	}
	p, err := cfg.Shutdown.Plan()
	if err != nil {
		b.t.Fatal(err)
	}
	var o plan.Override
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] != "--set" {
			continue
		}
		field, value, _ := strings.Cut(args[i+1], "=")
		if err := o.Set(field, value); err != nil {
			b.t.Fatal(err)
		}
	}
	if p, err = o.Apply(p); err != nil {
		b.t.Fatal(err)
	}
	return p.Budget()
}

// shutdown starts `farewell shutdown NODE --wait -o json ARGS` on the ops host.
func (b *prodBed) shutdown(node string, args ...string) *netbed.Proc {
	return b.opsStart(append([]string{"shutdown", node, "--wait", "-o", "json"}, args...)...)
}

// reportOfProc waits for a `shutdown --wait -o json` to end and reads its report.
func (b *prodBed) reportOfProc(p *netbed.Proc, limit time.Duration) workflows.ShutdownReport {
	b.t.Helper()
	p.WaitFor(limit)
	var r workflows.ShutdownReport
	if err := json.Unmarshal([]byte(p.Stdout()), &r); err != nil {
		b.t.Errorf("shutdown's report: %v\n%s", err, tailOf(p.Log(), 3000))
	}
	return r
}

// waitLog waits until bp's log says s.
func (b *prodBed) waitLog(bp *bedProc, s string, limit time.Duration) {
	b.t.Helper()
	testkit.Eventually(b.t, limit, bp.name+" to log "+s, func() bool { return strings.Contains(bp.p.Log(), s) })
}

// countOutcomes says how many runs ended each way ("3 graceful, 1 forced").
func countOutcomes(outcomes map[string]string) string {
	n := map[string]int{}
	for _, o := range outcomes {
		n[o]++
	}
	var parts []string
	for _, o := range []string{"graceful", "degraded", "forced", "aborted", "failed", noRun} {
		if n[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[o], o))
		}
	}
	return strings.Join(parts, ", ")
}

// judge asks the checker about the shutdowns, fills a result from its answer and
// returns each run's outcome.
func (b *prodBed) judge(res *netResult, touched []string, shutdowns ...judged) map[string]string {
	ans := b.checker.ask(checkerCommand{Op: "verdict", Settle: 90 * time.Second, Shutdowns: shutdowns, Touched: touched})
	res.out, res.untouched = true, true
	for _, v := range ans.Violations {
		if strings.HasPrefix(v, "bystander") {
			res.untouched = false
		} else {
			res.out = false
		}
	}
	res.problems = append(res.problems, ans.Violations...)
	if len(shutdowns) == 1 && !shutdowns[0].NoRun {
		res.seconds = ans.Seconds[shutdowns[0].Node]
		if got := ans.Outcomes[shutdowns[0].Node]; got != "" && res.outcome == "" {
			res.outcome = got
		}
	}
	for _, n := range ans.Notes {
		if strings.Contains(n, "still runs") {
			res.note = strings.TrimSpace(res.note + " " + n)
		}
	}
	return ans.Outcomes
}

// target is a shutdown the checker judges: the node's process as it runs now.
func target(bp *bedProc, want string, budget, partition time.Duration) judged {
	return judged{Node: bp.name, Instance: bp.instance, PID: bp.p.PID(), Want: want, Budget: budget, Partition: partition}
}

// expect adds a problem when the outcome is not one of want.
func (res *netResult) expect(want ...string) {
	for _, w := range want {
		if res.outcome == w {
			return
		}
	}
	res.problems = append(res.problems, fmt.Sprintf("outcome %q, want %s", res.outcome, strings.Join(want, " or ")))
}

func netRows() []netRow {
	return []netRow{
		{fault: "node cut off from everyone mid-step, healed after its run ended", ci: true, run: cutOffMidStep},
		{fault: "node cut off from everyone before its shutdown", ci: true, run: cutOffBefore},
		{fault: "node cut from Temporal only, at SIGTERM", run: temporalCutAtSigterm},
		{fault: "node cut from Temporal only, mid-run", ci: true, run: temporalCutMidRun},
		{fault: "node cut from its peers only, mid-run", run: peersCutMidRun},
		{fault: "an orchestrator cut from the cluster net mid-run (Temporal kept)", run: orchestratorCutFromCluster},
		{fault: "cluster split: the node in a minority, orchestrators in the majority; healed", ci: true, run: splitNodeInMinority},
		{fault: "cluster split: orchestrators in a minority; healed", run: splitOrchestratorsInMinority},
		{fault: "one orchestrator SIGKILLed mid-run", run: orchestratorKilled},
		{fault: "a history host SIGKILLed mid-run", ci: true, run: historyKilled},
		{fault: "the frontend restarted mid-run", run: frontendRestarted},
		{fault: "PostgreSQL restarted mid-run", ci: true, run: postgresRestarted},
		{fault: "a node SIGSTOPped mid-step, SIGCONT after its run ended", run: nodeFrozenOnBed},
		{fault: "a node's gossip hangs as it leaves, both orchestrators cut from the cluster net", ci: true, run: leftAloneUnconfirmed},
		{fault: "drain of half the fleet, the cluster split mid-drain", ci: true, opts: bedOptions{nodes: 8}, run: drainSplit},
		{fault: "the host app cut from Temporal at SIGTERM, requests in flight", opts: bedOptions{nodes: 4, hostApp: true}, run: hostAppCutAtSigterm},
	}
}

// hungRun starts node's shutdown with step hanging for hang, and waits until it hangs.
func (b *prodBed) hungRun(node *bedProc, step string, hang time.Duration, extra ...string) (*netbed.Proc, []string) {
	args := append(hangArgs(step, hang), extra...)
	run := b.shutdown(node.name, args...)
	b.waitLog(node, "injected fault: step hangs", time.Minute)
	return run, args
}

func cutOffMidStep(t *testing.T, b *prodBed) netResult {
	n := b.addNode("victim", "node", "--fault", "stop-heartbeat=hang")
	run, args := b.hungRun(n, "stop-heartbeat", 30*time.Second)
	cut := time.Now()
	for _, net := range []string{"cluster", "temporal"} {
		if err := b.bed.Cut(n.name, net); err != nil {
			t.Fatal(err)
		}
	}
	r := b.reportOfProc(run, 3*time.Minute)
	// Healed only after its run ended: the evicted process must fence itself then.
	if err := b.bed.HealAll(); err != nil {
		t.Fatal(err)
	}
	res := netResult{outcome: string(r.Outcome)}
	b.judge(&res, nil, target(n, "out", b.budgetOf(args...), time.Since(cut)))
	res.expect("forced")
	return res
}

func cutOffBefore(t *testing.T, b *prodBed) netResult {
	n := b.addNode("victim", "node")
	for _, net := range []string{"cluster", "temporal"} {
		if err := b.bed.Cut(n.name, net); err != nil {
			t.Fatal(err)
		}
	}
	cut := time.Now()
	r := b.reportOfProc(b.shutdown(n.name), 3*time.Minute)
	if err := b.bed.HealAll(); err != nil {
		t.Fatal(err)
	}
	res := netResult{outcome: string(r.Outcome)}
	b.judge(&res, nil, target(n, "out", b.budgetOf(), time.Since(cut)))
	res.expect("forced")
	return res
}

func temporalCutAtSigterm(t *testing.T, b *prodBed) netResult {
	n := b.addNode("victim", "node")
	if err := b.bed.Cut(n.name, "temporal"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := n.p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := n.p.WaitFor(time.Minute)
	res := netResult{outcome: outcomeIn(n.p.Stdout()), seconds: time.Since(start).Seconds()}
	if err := b.bed.HealAll(); err != nil {
		t.Fatal(err)
	}
	j := target(n, "out", 0, 0)
	j.NoRun = true
	b.judge(&res, nil, j)
	if code != 0 {
		res.problems = append(res.problems, fmt.Sprintf("exit %d, want 0 (it left on its own)", code))
	}
	res.expect("graceful")
	return res
}

// outcomeIn reads the outcome a node printed of its own shutdown.
func outcomeIn(stdout string) string {
	if m := reportLine.FindStringSubmatch(stdout); m != nil {
		return strings.ToLower(m[1])
	}
	return ""
}

func temporalCutMidRun(t *testing.T, b *prodBed) netResult {
	n := b.addNode("victim", "node", "--fault", "stop-heartbeat=hang")
	run, args := b.hungRun(n, "stop-heartbeat", 30*time.Second)
	cut := time.Now()
	if err := b.bed.Cut(n.name, "temporal"); err != nil {
		t.Fatal(err)
	}
	r := b.reportOfProc(run, 3*time.Minute)
	partition := time.Since(cut)
	if err := b.bed.HealAll(); err != nil {
		t.Fatal(err)
	}
	res := netResult{outcome: string(r.Outcome)}
	b.judge(&res, nil, target(n, "out", b.budgetOf(args...), partition))
	res.expect("forced")
	return res
}

func peersCutMidRun(t *testing.T, b *prodBed) netResult {
	n := b.addNode("victim", "node", "--fault", "set-gracefully-left=hang")
	run, args := b.hungRun(n, "set-gracefully-left", 3*time.Second)
	cut := time.Now()
	if err := b.bed.Cut(n.name, "cluster"); err != nil {
		t.Fatal(err)
	}
	r := b.reportOfProc(run, 3*time.Minute)
	partition := time.Since(cut)
	if err := b.bed.HealAll(); err != nil {
		t.Fatal(err)
	}
	res := netResult{outcome: string(r.Outcome)}
	b.judge(&res, nil, target(n, "out", b.budgetOf(args...), partition))
	res.expect("forced", "degraded")
	return res
}

func orchestratorCutFromCluster(t *testing.T, b *prodBed) netResult {
	n := b.addNode("victim", "node", "--fault", "stop-heartbeat=hang")
	run, args := b.hungRun(n, "stop-heartbeat", 3*time.Second)
	cut := time.Now()
	if err := b.bed.Cut("orch-1", "cluster"); err != nil {
		t.Fatal(err)
	}
	r := b.reportOfProc(run, 3*time.Minute)
	partition := time.Since(cut)
	if err := b.bed.HealAll(); err != nil {
		t.Fatal(err)
	}
	res := netResult{outcome: fmt.Sprintf("%s, %s", r.Outcome, r.Convergence)}
	b.judge(&res, nil, target(n, "out", b.budgetOf(args...), partition))
	if r.Outcome != plan.Degraded {
		res.problems = append(res.problems, fmt.Sprintf("outcome %s, want degraded (stop-heartbeat timed out)", r.Outcome))
	}
	return res
}

// split cuts the cluster net in two: the hosts named on one side, the rest on the other.
func (b *prodBed) split(hosts ...string) {
	if err := b.bed.Split("cluster", hosts...); err != nil {
		b.t.Fatal(err)
	}
}

// outlastMemory waits until who has seen other dead for longer than memberlist keeps
// gossiping to the dead (15 s in the local profile): a partition healed after that is
// one memberlist alone does not get over.
func (b *prodBed) outlastMemory(who, other string) {
	b.t.Helper()
	const gossipToTheDead = 15 * time.Second
	testkit.Eventually(b.t, 2*time.Minute, who+" to have seen "+other+" dead for "+gossipToTheDead.String(), func() bool {
		v := b.checker.ask(checkerCommand{Op: "views"}).Views[who][other]
		return v.State == "dead" && time.Duration(v.SinceAgeMS)*time.Millisecond > gossipToTheDead+time.Second
	})
}

func splitNodeInMinority(t *testing.T, b *prodBed) netResult {
	n := b.addNode("victim", "node")
	b.split(n.name, "node-5")
	cut := time.Now()
	r := b.reportOfProc(b.shutdown(n.name), 3*time.Minute)
	b.outlastMemory("orch-1", "node-5")
	partition := time.Since(cut)
	if err := b.bed.Join("cluster"); err != nil {
		t.Fatal(err)
	}
	res := netResult{outcome: string(r.Outcome)}
	b.judge(&res, nil, target(n, "out", b.budgetOf(), partition))
	res.expect("forced", "degraded", "graceful")
	return res
}

func splitOrchestratorsInMinority(t *testing.T, b *prodBed) netResult {
	n := b.addNode("victim", "node")
	b.split("orch-1", "orch-2", "node-5")
	cut := time.Now()
	r := b.reportOfProc(b.shutdown(n.name), 3*time.Minute)
	b.outlastMemory("node-1", "orch-1")
	partition := time.Since(cut)
	if err := b.bed.Join("cluster"); err != nil {
		t.Fatal(err)
	}
	res := netResult{outcome: fmt.Sprintf("%s, %s", r.Outcome, r.Convergence)}
	b.judge(&res, nil, target(n, "out", b.budgetOf(), partition))
	return res
}

func orchestratorKilled(t *testing.T, b *prodBed) netResult {
	n := b.addNode("victim", "node", "--fault", "stop-heartbeat=hang")
	run, args := b.hungRun(n, "stop-heartbeat", 5*time.Second)
	b.orchs[0].p.Kill()
	r := b.reportOfProc(run, 3*time.Minute)
	res := netResult{outcome: string(r.Outcome)}
	b.judge(&res, []string{"orch-1"}, target(n, "out", b.budgetOf(args...), 0))
	res.expect("degraded")
	return res
}

func historyKilled(t *testing.T, b *prodBed) netResult {
	n := b.addNode("victim", "node", "--fault", "stop-heartbeat=hang")
	run, args := b.hungRun(n, "stop-heartbeat", 5*time.Second)
	killed := time.Now()
	b.temporal.Kill("history-1")
	r := b.reportOfProc(run, 3*time.Minute)
	res := netResult{outcome: string(r.Outcome)}
	// The shards of the dead host move once membership gives it up: that wait is the
	// "partition" here.
	b.judge(&res, nil, target(n, "out", b.budgetOf(args...), time.Since(killed)))
	res.expect("degraded")
	return res
}

func frontendRestarted(t *testing.T, b *prodBed) netResult {
	n := b.addNode("victim", "node", "--fault", "stop-heartbeat=hang")
	run, args := b.hungRun(n, "stop-heartbeat", 5*time.Second)
	down := time.Now()
	if err := b.temporal.Stop("frontend"); err != nil {
		t.Fatal(err)
	}
	if err := b.temporal.Start("frontend"); err != nil {
		t.Fatal(err)
	}
	r := b.reportOfProc(run, 3*time.Minute)
	res := netResult{outcome: string(r.Outcome)}
	b.judge(&res, nil, target(n, "out", b.budgetOf(args...), time.Since(down)))
	res.expect("degraded")
	return res
}

func postgresRestarted(t *testing.T, b *prodBed) netResult {
	n := b.addNode("victim", "node", "--fault", "stop-heartbeat=hang")
	run, args := b.hungRun(n, "stop-heartbeat", 5*time.Second)
	down := time.Now()
	if err := b.temporal.StopPostgres(false); err != nil {
		t.Fatal(err)
	}
	if err := b.temporal.StartPostgres(); err != nil {
		t.Fatal(err)
	}
	r := b.reportOfProc(run, 3*time.Minute)
	res := netResult{outcome: string(r.Outcome)}
	b.judge(&res, nil, target(n, "out", b.budgetOf(args...), time.Since(down)))
	res.expect("degraded")
	return res
}

func nodeFrozenOnBed(t *testing.T, b *prodBed) netResult {
	n := b.addNode("victim", "node", "--fault", "stop-heartbeat=hang")
	run, args := b.hungRun(n, "stop-heartbeat", 30*time.Second)
	frozen := time.Now()
	if err := n.p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	r := b.reportOfProc(run, 3*time.Minute)
	partition := time.Since(frozen)
	// Back from the freeze, the process learns it was evicted and ends itself.
	if err := n.p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	res := netResult{outcome: string(r.Outcome)}
	b.judge(&res, nil, target(n, "out", b.budgetOf(args...), partition))
	res.expect("forced")
	return res
}

// drainSplit drains half the fleet (node-5 … node-8, two at a time, never fewer than
// four nodes in service) and splits the cluster net mid-drain: the last node to drain
// and an orchestrator on one side. The checker samples the budget and the floor all
// along, from Temporal's record and the members' views, never from the drain.
func drainSplit(t *testing.T, b *prodBed) netResult {
	drained := []string{"node-5", "node-6", "node-7", "node-8"}
	b.checker.ask(checkerCommand{Op: "budget", Budget: &budgetWatch{Nodes: drained, MaxParallel: 2, MinAlive: 4}})
	var targets []judged
	for _, name := range drained {
		targets = append(targets, target(b.node(name), "out", b.budgetOf(), 0))
	}
	start := time.Now()
	drain := b.opsStart(append([]string{"drain", "--name", "half", "--max-parallel", "2", "--min-alive", "4", "--wait", "-o", "json"}, drained...)...)
	// Mid-drain: once the first wave is out.
	testkit.Eventually(t, 2*time.Minute, "the first wave to be out", func() bool {
		return b.node("node-5").p.Exited() || b.node("node-6").p.Exited()
	})
	b.split("node-8", "orch-2")
	cut := time.Now()
	code := drain.WaitFor(5 * time.Minute)
	partition := time.Since(cut)
	if err := b.bed.Join("cluster"); err != nil {
		t.Fatal(err)
	}
	var rep workflows.DrainReport
	if err := json.Unmarshal([]byte(drain.Stdout()), &rep); err != nil {
		t.Fatalf("drain: exit %d: %v\n%s", code, err, tailOf(drain.Log(), 3000))
	}
	budget := b.checker.ask(checkerCommand{Op: "budget-end"})
	res := netResult{outcome: string(rep.Outcome), seconds: time.Since(start).Seconds(),
		note: fmt.Sprintf("%d samples: at most %d in flight, at least %d in service", budget.Samples, budget.MaxInFlight, budget.MinInService)}
	for i := range targets {
		targets[i].Partition = partition
		targets[i].Want = "either"
	}
	outcomes := b.judge(&res, nil, targets...)
	res.seconds = time.Since(start).Seconds()
	res.outcome += ": " + countOutcomes(outcomes)
	res.problems = append(res.problems, budget.Violations...)
	if budget.Samples < 20 {
		res.problems = append(res.problems, fmt.Sprintf("only %d budget samples: too few to tell", budget.Samples))
	}
	return res
}

// hostAppCutAtSigterm: the example host app, with requests in flight, loses Temporal
// and gets SIGTERM: it runs its plan alone (its own drain-connections step included);
// every request in flight completes; it exits 0, out.
func hostAppCutAtSigterm(t *testing.T, b *prodBed) netResult {
	app := b.node("app-1")
	const requests = 6
	load := b.checkerTool("requests", "http://"+app.mgmt()+"/work?d=2s", fmt.Sprint(requests))
	testkit.Eventually(t, 30*time.Second, "the requests to be in flight", func() bool {
		_, body := b.checkerTool("get", "http://"+app.mgmt()+"/healthz").result()
		return strings.Contains(body, fmt.Sprintf("in_flight=%d", requests))
	})
	if err := b.bed.Cut(app.name, "temporal"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := app.p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := app.p.WaitFor(time.Minute)
	res := netResult{seconds: time.Since(start).Seconds()}
	if m := regexp.MustCompile(`msg="shutdown ended" outcome=(\w+)`).FindStringSubmatch(app.p.Log()); m != nil {
		res.outcome = m[1]
	}
	if err := b.bed.HealAll(); err != nil {
		t.Fatal(err)
	}
	j := target(app, "out", 0, 0)
	j.NoRun = true
	b.judge(&res, nil, j)
	if code != 0 {
		res.problems = append(res.problems, fmt.Sprintf("exit %d, want 0", code))
	}
	lcode, out := load.result()
	if lcode != 0 || !strings.Contains(out, fmt.Sprintf("%d of %d ok", requests, requests)) {
		res.problems = append(res.problems, "requests in flight: "+strings.TrimSpace(out))
	} else {
		res.note = fmt.Sprintf("%d of %d requests in flight completed", requests, requests)
	}
	if !strings.Contains(app.p.Log(), "drain-connections") {
		res.problems = append(res.problems, "its own step drain-connections did not run")
	}
	res.expect("graceful")
	return res
}

// leftAloneUnconfirmed: the node's gossip hangs as its shutdown begins, and both
// orchestrators are cut from the cluster net. Nobody confirms its leave, its eviction,
// or its termination (the process ended by itself once its memberlist was down and its
// services stopped): the run must still see it out, not failed (found by the soak).
func leftAloneUnconfirmed(t *testing.T, b *prodBed) netResult {
	n := b.addNode("victim", "node", "--fault", "gossip=stall")
	for _, o := range b.orchs {
		if err := b.bed.Cut(o.name, "cluster"); err != nil {
			t.Fatal(err)
		}
	}
	cut := time.Now()
	r := b.reportOfProc(b.shutdown(n.name), 3*time.Minute)
	partition := time.Since(cut)
	if err := b.bed.HealAll(); err != nil {
		t.Fatal(err)
	}
	res := netResult{outcome: fmt.Sprintf("%s, %s", r.Outcome, r.Convergence)}
	b.judge(&res, nil, target(n, "out", b.budgetOf(), partition))
	if r.Outcome == plan.Failed {
		res.problems = append(res.problems, "outcome failed: "+r.Error)
	}
	return res
}
