package e2e

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/farewell-project/farewell/internal/netbed"
	"github.com/farewell-project/farewell/workflows"
)

// The checker is a process on a host of its own (the production testbed's "checker",
// on the Temporal and management nets, never cut) that trusts nobody: not the
// orchestrators' views, not the reports. It samples, several times a second, every
// process of the bed — its entry in the process table, whether its service answers
// (GET /), and how it sees the cluster (GET /members) — and Temporal's record of each
// node's shutdown (describe: running or not, when it started and closed). From that
// alone it judges every shutdown the nemesis ran: the process out (not serving, in
// nobody's alive set) or back in service, no other process touched, no run failed
// unless it had to, each run closed within its plan's budget plus the partition's
// length; and, all along, that a process once judged out never serves again and a
// drain stays within its budget and floor.
//
// It speaks JSON lines: commands on stdin (checkerCommand), one answer per command on
// stdout (checkerAnswer).

// watched is a process the checker samples.
type watched struct {
	Name     string `json:"name"`
	Role     string `json:"role"` // node, orchestrator, hostapp
	PID      int    `json:"pid"`
	Instance string `json:"instance,omitempty"`
	HTTP     string `json:"http"` // its status (and demo service) address on the management net
	// Path answers 200 while the process serves: "/" unless set (an orchestrator's is
	// /healthz).
	Path string `json:"path,omitempty"`
	// NoView: the process serves GET / but not /members (the host app).
	NoView bool `json:"no_view,omitempty"`
}

// judged is one shutdown the checker judges.
type judged struct {
	Node     string `json:"node"`
	Instance string `json:"instance"`
	PID      int    `json:"pid"`
	// Want is "out" (the process must be out), "in" (back in service: aborted), or
	// "either" (whichever the run's outcome says).
	Want string `json:"want"`
	// RunID, when set, is the run to judge (else the node's latest).
	RunID string `json:"run_id,omitempty"`
	// NoRun: the shutdown ran without Temporal (the node's own local plan): there is no
	// run to read.
	NoRun bool `json:"no_run,omitempty"`
	// Budget is the plan's bound; Partition how long the network was cut while it ran.
	Budget    time.Duration `json:"budget"`
	Partition time.Duration `json:"partition"`
	// MayFail names why neither out nor back in service could be reached, when that
	// is allowed ("" means a failed run is a violation).
	MayFail string `json:"may_fail,omitempty"`
}

// budgetWatch asks the checker to hold a drain to its limits while it runs.
type budgetWatch struct {
	Nodes       []string `json:"nodes"` // the drained nodes
	MaxParallel int      `json:"max_parallel"`
	MinAlive    int      `json:"min_alive"`
}

type checkerCommand struct {
	ID int    `json:"id"`
	Op string `json:"op"` // procs, verdict, views, budget, budget-end, stop
	// Procs replaces the processes watched (op procs).
	Procs []watched `json:"procs,omitempty"`
	// Shutdowns are judged (op verdict), and Touched lists processes the nemesis itself
	// killed, froze or restarted: they are not bystanders. Settle bounds the wait for
	// the cluster to agree after a heal.
	Shutdowns []judged      `json:"shutdowns,omitempty"`
	Touched   []string      `json:"touched,omitempty"`
	Settle    time.Duration `json:"settle,omitempty"`
	// Budget starts watching a drain (op budget).
	Budget *budgetWatch `json:"budget,omitempty"`
}

type checkerAnswer struct {
	ID         int      `json:"id"`
	Violations []string `json:"violations"`
	// Notes say what was seen, for the table.
	Notes []string `json:"notes,omitempty"`
	// Outcomes maps each judged node to its run's outcome.
	Outcomes map[string]string `json:"outcomes,omitempty"`
	// Seconds maps each judged node to its run's length (server times).
	Seconds map[string]float64 `json:"seconds,omitempty"`
	// Budget is what the budget watch saw (op budget-end).
	MaxInFlight  int    `json:"max_in_flight,omitempty"`
	MinInService int    `json:"min_in_service,omitempty"`
	Samples      int    `json:"samples,omitempty"`
	Error        string `json:"error,omitempty"`
	// Views are the latest views of the processes that answered (op views).
	Views map[string]map[string]viewEntry `json:"views,omitempty"`
}

// sampleOf is one process at one moment.
type sampleOf struct {
	at      time.Time
	state   string // process table: R/S/D running, T stopped, Z/"" gone
	serving bool
	view    map[string]viewEntry // nil when /members did not answer
}

type viewEntry struct {
	State    string `json:"state"`
	Instance string `json:"instance"`
	Role     string `json:"role"`
	// SinceAgeMS is how long ago the state last changed.
	SinceAgeMS int64 `json:"since_age_ms"`
}

type checker struct {
	frontend  string
	namespace string
	c         client.Client
	http      *http.Client

	mu      sync.Mutex
	procs   []watched
	latest  map[string]sampleOf // by process name
	out     map[string]string   // "node/instance" judged out → when (never serve again)
	breach  []string            // processes judged out seen serving again
	budget  *budgetWatch
	worstIn int
	worstSv int
	samples int
}

// runChecker is the checker process (tool mode "checker FRONTEND NAMESPACE").
func runChecker(args []string, in io.Reader, out io.Writer) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "checker FRONTEND NAMESPACE")
		return 2
	}
	ck := &checker{frontend: args[0], namespace: args[1], latest: map[string]sampleOf{}, out: map[string]string{},
		http: &http.Client{Timeout: 400 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}}
	c, err := client.Dial(client.Options{HostPort: ck.frontend, Namespace: ck.namespace, Logger: quietSDKLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "checker: dial Temporal:", err)
		return 1
	}
	defer c.Close()
	ck.c = c
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ck.sampleLoop(ctx)
	enc := json.NewEncoder(out)
	_ = enc.Encode(checkerAnswer{ID: 0, Notes: []string{"ready"}})
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var cmd checkerCommand
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			_ = enc.Encode(checkerAnswer{Error: "bad command: " + err.Error()})
			continue
		}
		ans := checkerAnswer{ID: cmd.ID}
		switch cmd.Op {
		case "procs":
			ck.mu.Lock()
			ck.procs = cmd.Procs
			ck.mu.Unlock()
		case "verdict":
			ans = ck.verdict(ctx, cmd)
		case "views":
			ck.mu.Lock()
			ans.Views = map[string]map[string]viewEntry{}
			for name, smp := range ck.latest {
				if smp.view != nil {
					ans.Views[name] = smp.view
				}
			}
			ck.mu.Unlock()
		case "budget":
			ck.mu.Lock()
			ck.budget, ck.worstIn, ck.worstSv, ck.samples = cmd.Budget, 0, 1<<30, 0
			ck.mu.Unlock()
		case "budget-end":
			ck.mu.Lock()
			b := ck.budget
			ans.MaxInFlight, ans.MinInService, ans.Samples = ck.worstIn, ck.worstSv, ck.samples
			ck.budget = nil
			ck.mu.Unlock()
			if b != nil {
				if ans.MaxInFlight > b.MaxParallel {
					ans.Violations = append(ans.Violations, fmt.Sprintf("%d shutdowns in flight at once; the budget is %d", ans.MaxInFlight, b.MaxParallel))
				}
				if ans.MinInService < b.MinAlive {
					ans.Violations = append(ans.Violations, fmt.Sprintf("%d nodes in service at one point; the floor is %d", ans.MinInService, b.MinAlive))
				}
				if ans.Samples == 0 {
					ans.Violations = append(ans.Violations, "no budget sample: nothing was checked")
				}
			}
		case "stop":
			ck.mu.Lock()
			ans.Violations = slices.Clone(ck.breach)
			ck.mu.Unlock()
			_ = enc.Encode(ans)
			return 0
		default:
			ans.Error = "unknown op " + cmd.Op
		}
		if ans.Violations == nil {
			ans.Violations = []string{}
		}
		_ = enc.Encode(ans)
	}
	return 0
}

// sampleLoop samples every process (and, under a budget watch, Temporal) until ctx ends.
func (ck *checker) sampleLoop(ctx context.Context) {
	for ctx.Err() == nil {
		start := time.Now()
		ck.mu.Lock()
		procs := slices.Clone(ck.procs)
		ck.mu.Unlock()
		var wg sync.WaitGroup
		results := make([]sampleOf, len(procs))
		for i, p := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = ck.sample(ctx, p)
			}()
		}
		wg.Wait()
		ck.mu.Lock()
		for i, p := range procs {
			ck.latest[p.Name] = results[i]
			if results[i].serving && p.Instance != "" {
				if when, ok := ck.out[p.Name+"/"+p.Instance]; ok {
					ck.breach = append(ck.breach, fmt.Sprintf("%s (%s), judged out at %s, served again at %s", p.Name, p.Instance, when, results[i].at.Format("15:04:05.000")))
					delete(ck.out, p.Name+"/"+p.Instance) // once is enough to say
				}
			}
		}
		b := ck.budget
		ck.mu.Unlock()
		if b != nil {
			ck.sampleBudget(ctx, b, procs, results)
		}
		if d := 100*time.Millisecond - time.Since(start); d > 0 {
			time.Sleep(d)
		}
	}
}

func (ck *checker) sample(ctx context.Context, p watched) sampleOf {
	s := sampleOf{at: time.Now(), state: netbed.ProcState(p.PID)}
	if s.state == "" || s.state == "Z" || s.state == "X" {
		return s
	}
	s.serving = ck.get(ctx, p.HTTP, cmp.Or(p.Path, "/"), nil) == nil
	if !p.NoView {
		var view []struct {
			Name string `json:"name"`
			viewEntry
		}
		if ck.get(ctx, p.HTTP, "/members", &view) == nil {
			s.view = map[string]viewEntry{}
			for _, v := range view {
				s.view[v.Name] = v.viewEntry
			}
		}
	}
	return s
}

func (ck *checker) get(ctx context.Context, addr, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := ck.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s%s: %s", addr, path, resp.Status)
	}
	if into == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

// sampleBudget counts the drained nodes whose shutdown runs (Temporal's record, one
// instant: a run counts when it started before the first answer and had not closed by
// then) and the nodes in service (serving, and alive for most members that answer).
func (ck *checker) sampleBudget(ctx context.Context, b *budgetWatch, procs []watched, results []sampleOf) {
	at := time.Now()
	inFlight := 0
	for _, n := range b.Nodes {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		d, err := ck.c.DescribeWorkflowExecution(dctx, workflows.WorkflowID(n), "")
		cancel()
		if err != nil {
			if strings.Contains(err.Error(), "not found") {
				continue
			}
			return // Temporal is away: no sample
		}
		info := d.GetWorkflowExecutionInfo()
		started := info.GetStartTime().AsTime()
		closed := info.GetCloseTime().AsTime()
		if started.Before(at) && (info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING || closed.After(at)) {
			inFlight++
		}
	}
	inService, views := 0, 0
	for i, p := range procs {
		if results[i].view != nil {
			views++
		}
		if p.Role != "node" && p.Role != "hostapp" {
			continue
		}
		if results[i].serving && aliveForMost(p, procs, results) {
			inService++
		}
	}
	ck.mu.Lock()
	ck.worstIn = max(ck.worstIn, inFlight)
	if views > 0 { // with no member's view read, "alive for most" cannot be told: no sample of it
		ck.worstSv = min(ck.worstSv, inService)
	}
	ck.samples++
	ck.mu.Unlock()
}

// aliveForMost: p's process is alive (same instance) for most of the members on its
// side of the network that answered about their view. Its side is the members p itself
// sees alive: during a split each side sees the other dead, and a node serving on the
// minority side is no less in service for it (the soak found a split of three beside a
// killed orchestrator that left no side a majority of all who answered). A process
// that says nothing about its view (the host app) is judged by every member that
// answered. A zombie that sees everyone while they see it dead is out either way.
func aliveForMost(p watched, procs []watched, results []sampleOf) bool {
	var own map[string]viewEntry
	for i, q := range procs {
		if q.Name == p.Name {
			own = results[i].view
		}
	}
	answered, alive := 0, 0
	for i, q := range procs {
		if q.Name == p.Name || results[i].view == nil {
			continue
		}
		if own != nil {
			if e, ok := own[q.Name]; !ok || e.State != "alive" {
				continue // on the other side, or not in p's cluster at all
			}
		}
		answered++
		if e, ok := results[i].view[p.Name]; ok && e.State == "alive" && (p.Instance == "" || e.Instance == p.Instance) {
			alive++
		}
	}
	return answered > 0 && alive*2 > answered
}

// verdict waits (up to cmd.Settle) for the cluster to settle, then judges.
func (ck *checker) verdict(ctx context.Context, cmd checkerCommand) checkerAnswer {
	settle := cmd.Settle
	if settle == 0 {
		settle = time.Minute
	}
	ans := checkerAnswer{ID: cmd.ID, Outcomes: map[string]string{}, Seconds: map[string]float64{}}
	runs := map[string]runFacts{}
	for _, s := range cmd.Shutdowns {
		if s.NoRun {
			continue
		}
		f, err := ck.run(ctx, s)
		if err != nil {
			ans.Violations = append(ans.Violations, fmt.Sprintf("%s: its run: %v", s.Node, err))
			continue
		}
		runs[s.Node] = f
		ans.Outcomes[s.Node], ans.Seconds[s.Node] = f.outcome, f.took.Seconds()
	}
	// The cluster needs a moment after a heal: judge once everything holds, or at
	// the deadline with what is still wrong.
	deadline := time.Now().Add(settle)
	var problems, notes []string
	for {
		var exiting bool
		problems, notes, exiting = ck.judge(cmd, runs)
		if len(problems) == 0 && !exiting || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	ans.Violations = append(ans.Violations, problems...)
	ans.Notes = notes
	// From now on a process judged out must never serve again.
	ck.mu.Lock()
	for _, s := range cmd.Shutdowns {
		if want := ck.want(s, runs); want == "out" {
			ck.out[s.Node+"/"+s.Instance] = time.Now().Format("15:04:05.000")
		}
	}
	ck.mu.Unlock()
	return ans
}

// noRun is the outcome of a process no run shut down.
const noRun = "none"

type runFacts struct {
	outcome string
	took    time.Duration
}

// run reads a shutdown's run from Temporal: its outcome and its length by the server's
// clock. It waits for the run to close, asking again while Temporal cannot answer (a
// history host that was killed owns the run's shard until its restart is noticed: the
// soak saw a wait end with the server's "context deadline exceeded" while the run went
// on and closed), for five minutes in all.
func (ck *checker) run(ctx context.Context, s judged) (runFacts, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for {
		f, err := ck.runOnce(ctx, s)
		var ended *temporal.WorkflowExecutionError // failed, terminated, timed out: it stays so
		if err == nil || ctx.Err() != nil || isNotFound(err) || errors.As(err, &ended) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return f, err
		case <-time.After(time.Second):
		}
	}
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

func (ck *checker) runOnce(ctx context.Context, s judged) (runFacts, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var r workflows.ShutdownReport
	if err := ck.c.GetWorkflow(ctx, workflows.WorkflowID(s.Node), s.RunID).Get(ctx, &r); err != nil {
		return runFacts{}, err
	}
	if r.NodeInstance != "" && r.NodeInstance != s.Instance {
		// The latest run is of an earlier process under that name: this one was never
		// shut down (a drain held it back).
		return runFacts{outcome: noRun}, nil
	}
	d, err := ck.c.DescribeWorkflowExecution(ctx, workflows.WorkflowID(s.Node), r.RunID)
	if err != nil {
		return runFacts{}, err
	}
	info := d.GetWorkflowExecutionInfo()
	return runFacts{outcome: string(r.Outcome), took: info.GetCloseTime().AsTime().Sub(info.GetStartTime().AsTime())}, nil
}

// want is what must hold of a shutdown's process: out or in.
func (ck *checker) want(s judged, runs map[string]runFacts) string {
	if s.Want != "either" {
		return s.Want
	}
	switch runs[s.Node].outcome {
	case "aborted", noRun:
		return "in"
	}
	return "out"
}

// judge checks every rule against the latest samples; exiting says that a process
// judged out still runs (a fenced process exits by itself: worth a moment's wait).
func (ck *checker) judge(cmd checkerCommand, runs map[string]runFacts) (problems, notes []string, exiting bool) {
	ck.mu.Lock()
	procs := slices.Clone(ck.procs)
	latest := map[string]sampleOf{}
	for k, v := range ck.latest {
		latest[k] = v
	}
	ck.mu.Unlock()
	targets := map[string]bool{}
	for _, s := range cmd.Shutdowns {
		targets[s.Node+"/"+s.Instance] = true
	}
	touched := map[string]bool{}
	for _, n := range cmd.Touched {
		touched[n] = true
	}
	// views: each answering process's view of the others.
	seenIn := func(node, instance string) []string {
		var who []string
		for _, q := range procs {
			v := latest[q.Name].view
			if q.Name == node || v == nil {
				continue
			}
			if e, ok := v[node]; ok && (e.State == "alive" || e.State == "leaving") && e.Instance == instance {
				who = append(who, q.Name)
			}
		}
		sort.Strings(who)
		return who
	}
	answering := 0
	for _, q := range procs {
		if latest[q.Name].view != nil {
			answering++
		}
	}
	for _, s := range cmd.Shutdowns {
		f := runs[s.Node]
		smp := latest[s.Node]
		switch ck.want(s, runs) {
		case "out":
			if smp.serving {
				problems = append(problems, fmt.Sprintf("%s (%s) still serves", s.Node, s.Instance))
			}
			if who := seenIn(s.Node, s.Instance); len(who) > 0 {
				problems = append(problems, fmt.Sprintf("%s (%s) is still in for %s", s.Node, s.Instance, strings.Join(who, ", ")))
			}
			if smp.state != "" && smp.state != "Z" {
				exiting = true
				notes = append(notes, fmt.Sprintf("%s's process still runs, fenced", s.Node))
			}
		case "in":
			if !smp.serving {
				problems = append(problems, fmt.Sprintf("%s (%s) was rolled back but does not serve", s.Node, s.Instance))
			}
			if n := len(seenIn(s.Node, s.Instance)); n < answering-1 {
				problems = append(problems, fmt.Sprintf("%s (%s) was rolled back but only %d of %d members see it in", s.Node, s.Instance, n, answering-1))
			}
		}
		if !s.NoRun && f.outcome != noRun {
			if f.outcome == "failed" && s.MayFail == "" {
				problems = append(problems, fmt.Sprintf("%s: the run failed though the node or its peers could be reached", s.Node))
			}
			if limit := s.Budget + s.Partition; s.Budget > 0 && f.took > limit {
				problems = append(problems, fmt.Sprintf("%s: the run took %s, more than its budget %s plus the partition's %s",
					s.Node, f.took.Round(100*time.Millisecond), s.Budget, s.Partition))
			}
		}
	}
	// Bystanders: every other process, as it was, serving, and in for everyone.
	for _, p := range procs {
		if targets[p.Name+"/"+p.Instance] || touched[p.Name] {
			continue
		}
		smp := latest[p.Name]
		switch {
		case smp.state == "" || smp.state == "Z":
			problems = append(problems, fmt.Sprintf("bystander %s exited", p.Name))
		case smp.state == "T":
			problems = append(problems, fmt.Sprintf("bystander %s is stopped", p.Name))
		case !smp.serving:
			problems = append(problems, fmt.Sprintf("bystander %s does not serve", p.Name))
		case p.Instance != "":
			if n := len(seenIn(p.Name, p.Instance)); n < answering-1 {
				problems = append(problems, fmt.Sprintf("bystander %s (%s) is in for only %d of the %d other members that answer", p.Name, p.Instance, n, answering-1))
			}
		}
	}
	if answering == 0 {
		problems = append(problems, "no member answers about its view")
	}
	return problems, notes, exiting
}

// errCheckerGone: the checker process ended.
var errCheckerGone = errors.New("the checker ended")
