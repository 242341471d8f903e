package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.temporal.io/sdk/client"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/agent"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/devserver"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/worker"
	"github.com/farewell-project/farewell/workflows"
)

// TestUIShowsTheRun loads real runs' pages in the Temporal UI with headless Chromium
// and checks what a person must see on each: the list filtered by the query link
// docs/ui.md gives (the runs that did not end graceful) and the click from it to a
// forced run, whose result names its outcome and why and whose summary names the
// requester and the reason; a degraded run's failed step and why; a graceful run's
// summary, step table and memo; a drain's summary, details and memo; a watchdog
// sweep's summary. It needs chromium
// (apt-get install chromium) and runs with `make ui-check`, not in CI; with
// FAREWELL_UI_SCREENSHOTS=DIR it saves what it saw there (docs/ui/ is made so).
func TestUIShowsTheRun(t *testing.T) {
	if os.Getenv("FAREWELL_UI_CHECK") == "" {
		t.Skip("make ui-check runs this (it needs chromium)")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found (apt-get install chromium): %v", err)
	}
	shots := os.Getenv("FAREWELL_UI_SCREENSHOTS")
	cfg := testConfig()
	uiPort := freePort(t)
	srv := startServer(t, devserver.Options{UIPort: uiPort})
	c := dial(t, srv)
	observer := newObserver(t, cfg.Cluster, "observer")
	w := worker.NewOrchestrator(c, worker.Orchestrator{Observer: observer, Plan: cfg.Shutdown.MustPlan(), Logger: testLogger(t)})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	s := &e2eStack{t: t, cfg: cfg, srv: srv, client: c, observer: observer, worker: w, nodes: map[string]*testNode{},
		starter: starter.New(c, starter.Options{Namespace: srv.Namespace(), Logger: testLogger(t)})}
	s.cfg.Temporal.Address, s.cfg.Temporal.Namespace = srv.Address(), srv.Namespace()
	for _, n := range []string{"node-1", "node-2", "node-3", "node-4"} {
		s.addNode(n, nil)
	}
	s.waitMembers()

	_, graceful, err := s.run(t, workflows.ShutdownRequest{Node: "node-1", Reason: "ui check", RequestedBy: "ops@test"})
	if err != nil || graceful.Outcome != plan.Graceful {
		t.Fatalf("node-1: %v %+v", err, graceful)
	}
	_, forced, err := s.run(t, workflows.ShutdownRequest{Node: "node-2", Reason: "disk gone", RequestedBy: "oncall@test", Force: true})
	if err != nil || forced.Outcome != plan.Forced {
		t.Fatalf("node-2: %v %+v", err, forced)
	}
	s.nodes["node-4"].faults.Set(plan.StopHeartbeat, activities.FaultError)
	_, degraded, err := s.run(t, workflows.ShutdownRequest{Node: "node-4", Reason: "rack move", RequestedBy: "ops@test"})
	if err != nil || degraded.Outcome != plan.Degraded {
		t.Fatalf("node-4: %v %+v", err, degraded)
	}
	ctx, cancelRuns := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancelRuns()
	drain, err := s.starter.Drain(ctx, workflows.DrainRequest{Name: "ui-check", Selector: activities.Selector{Nodes: []string{"node-3"}},
		Reason: "kernel upgrade", RequestedBy: "ops@test"})
	if err != nil {
		t.Fatal(err)
	}
	// A second drain of that name while it runs is refused (had the first ended
	// already, the name could be used again: a new run).
	again, err := s.starter.Drain(ctx, workflows.DrainRequest{Name: "ui-check", Selector: activities.Selector{Nodes: []string{"node-3"}}})
	if !errors.Is(err, starter.ErrDrainRunning) && (err != nil || again.RunID == drain.RunID) {
		t.Fatalf("a second drain of the name: %+v %v; want ErrDrainRunning", again, err)
	}
	if err := c.GetWorkflow(ctx, drain.WorkflowID, "").Get(ctx, nil); err != nil {
		t.Fatalf("drain: %v", err)
	}
	sreq := agent.Sweep(config.DefaultConfig().Watchdog, false) // as farewell watchdog run-once asks
	sweep, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.SweepID(time.Now().UnixMilli()), TaskQueue: workflows.TaskQueue,
		StaticSummary: "watchdog sweep, by hand: " + sreq.Describe()}, workflows.SweepWorkflowName, sreq)
	if err != nil {
		t.Fatal(err)
	}
	if err := sweep.Get(ctx, nil); err != nil {
		t.Fatalf("sweep: %v", err)
	}

	// The UI renders markdown into iframes of its own; read what they show.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1500, 1100), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	bctx, cancel := context.WithTimeout(bctx, 4*time.Minute)
	defer cancel()
	ns := srv.UIURL() + "/namespaces/" + srv.Namespace()
	page := func(id, runID string) string { return ns + "/workflows/" + id + "/" + runID + "/" }
	const body = "document.body.innerText"
	frame := func(id string) string {
		return `(function(){ const f = document.getElementById("` + id + `"); return f && f.contentDocument ? f.contentDocument.body.innerText : ""; })()`
	}
	const frames = `Array.from(document.querySelectorAll("iframe")).map(f => f.contentDocument ? f.contentDocument.body.innerText : "").join("\n")`
	// see waits until js, evaluated on the page now shown, gives text holding every want.
	see := func(what, js string, want ...string) string {
		t.Helper()
		var text string
		eventually(t, time.Minute, fmt.Sprintf("%q on %s", want, what), func() bool {
			text, _ = chromedp.Run(bctx, chromedp.Evaluate[string](js))
			for _, w := range want {
				if !strings.Contains(text, w) {
					return false
				}
			}
			return true
		})
		return text
	}
	open := func(url string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Navigate(url)); err != nil {
			t.Fatalf("load %s: %v", url, err)
		}
	}
	shot := func(name string) {
		if shots == "" {
			return
		}
		png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
			return
		}
		if err := os.MkdirAll(shots, 0o755); err == nil {
			_ = os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644)
		}
	}

	// The list, as the query link of docs/ui.md filters it: what did not end graceful.
	doc, err := os.ReadFile("../docs/ui.md")
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`/namespaces/default(/workflows\?query=\S+)`).FindSubmatch(doc)
	if link == nil {
		t.Fatal("docs/ui.md gives no link to the runs that did not end graceful")
	}
	open(ns + string(link[1]))
	list := see("the list of runs not graceful", body, workflows.WorkflowID("node-2"), workflows.WorkflowID("node-4"))
	if strings.Contains(list, workflows.WorkflowID("node-1")) {
		t.Errorf("the list of runs not graceful shows node-1's graceful run:\n%s", list)
	}
	shot("list-not-graceful")
	// One click: the forced run, whose result reads first what a person asks.
	if _, err := chromedp.Run(bctx, chromedp.Click(chromedp.CSS(`a[href*="`+workflows.WorkflowID("node-2")+`/"]`))); err != nil {
		t.Fatalf("click node-2's run in the list: %v", err)
	}
	see("the forced run's page, reached from the list", body, `"outcome": "forced"`, `"why": "forced out because force was requested`)
	shot("run-forced")
	open(page(forced.WorkflowID, forced.RunID) + "user-metadata")
	see("the forced run's summary", frame("user-metadata-summary"), "shut down node-2: disk gone — requested by oncall@test")
	see("the forced run's details", frames, "Outcome: forced", "Forced because force was requested", "evicted by")
	shot("run-forced-metadata")

	// A degraded run: the step that failed, and why it is degraded.
	open(page(degraded.WorkflowID, degraded.RunID) + "user-metadata")
	see("the degraded run's details", frames, "Outcome: degraded", "stop-heartbeat", "✗ failed",
		"Why: the node left without an eviction, though stop-heartbeat failed")

	// A graceful run: summary, step table, and the memo kept after it closed.
	open(page(graceful.WorkflowID, graceful.RunID) + "user-metadata")
	see("node-1's summary", frame("user-metadata-summary"), "shut down node-1: ui check — requested by ops@test")
	see("node-1's details", frames, "Outcome: graceful", "set-gracefully-left", "stop-heartbeat", "deregister", "stop-services", "✓ succeeded")
	open(page(graceful.WorkflowID, graceful.RunID) + "memo")
	see("node-1's memo", body, "requested by ops@test: ui check", "3/4 deregister: succeeded", "why: every step succeeded")

	// A drain: its summary and details name who asked and why; its memo what it did.
	open(page(drain.WorkflowID, drain.RunID) + "user-metadata")
	see("the drain's summary", frame("user-metadata-summary"), "drain ui-check: node-3", "requested by ops@test")
	see("the drain's details", frames, "kernel upgrade", "node-3")
	shot("drain")
	open(page(drain.WorkflowID, drain.RunID) + "memo")
	see("the drain's memo", body, "requested by ops@test: kernel upgrade", "node-3: done, graceful")
	// Its child names the person who started the drain.
	child, err := c.DescribeWorkflowExecution(ctx, workflows.WorkflowID("node-3"), "")
	if err != nil {
		t.Fatal(err)
	}
	open(page(workflows.WorkflowID("node-3"), child.GetWorkflowExecutionInfo().GetExecution().GetRunId()) + "user-metadata")
	see("the drain's child's summary", frame("user-metadata-summary"), "requested by ops@test (drain ui-check)")

	// A sweep: its summary, and a result that reads.
	open(page(sweep.GetID(), sweep.GetRunID()) + "user-metadata")
	see("the sweep's summary", frame("user-metadata-summary"), "watchdog sweep, by hand: report zombies")
	open(page(sweep.GetID(), sweep.GetRunID()) + "history")
	if text := see("the sweep's result", body, `"findings": []`); strings.Contains(text, `"total": "0s"`) {
		t.Errorf("the sweep's result says it took 0s:\n%s", text)
	}
	shot("sweep")
}
