package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/farewell-project/farewell/devserver"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/worker"
	"github.com/farewell-project/farewell/workflows"
)

// TestUIShowsTheRun loads a real shutdown's pages in the Temporal UI with headless
// Chromium and checks what a person sees there: the run's summary, its step table
// (current details, answered by the orchestrator worker), and the step lines kept in
// its memo after it closed. It needs chromium (apt-get install chromium) and runs with
// `make ui-check`, not in CI.
func TestUIShowsTheRun(t *testing.T) {
	if os.Getenv("FAREWELL_UI_CHECK") == "" {
		t.Skip("make ui-check runs this (it needs chromium)")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found (apt-get install chromium): %v", err)
	}
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
	s.addNode("node-1", nil)
	s.waitMembers()

	_, r, err := s.run(t, workflows.ShutdownRequest{Node: "node-1", Reason: "ui check", RequestedBy: "ops@test"})
	if err != nil {
		t.Fatal(err)
	}
	// The UI renders markdown into iframes of its own; read what they show.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	base := srv.UIURL() + "/namespaces/" + srv.Namespace() + "/workflows/" + r.WorkflowID + "/" + r.RunID + "/"
	read := func(tab, js, want string) string {
		t.Helper()
		var text string
		if _, err := chromedp.Run(ctx, chromedp.Navigate(base+tab)); err != nil {
			t.Fatalf("load %s: %v", tab, err)
		}
		eventually(t, time.Minute, want+" on the "+tab+" page", func() bool {
			text, _ = chromedp.Run(ctx, chromedp.Evaluate[string](js))
			return strings.Contains(text, want)
		})
		return text
	}
	frame := func(id string) string {
		return `(function(){ const f = document.getElementById("` + id + `"); return f && f.contentDocument ? f.contentDocument.body.innerText : ""; })()`
	}
	read("user-metadata", frame("user-metadata-summary"), "shut down node-1: ui check — requested by ops@test")
	details := read("user-metadata", `Array.from(document.querySelectorAll("iframe")).map(f => f.contentDocument ? f.contentDocument.body.innerText : "").join("\n")`,
		"Outcome: graceful")
	for _, want := range []string{"set-gracefully-left", "stop-heartbeat", "deregister", "stop-services", "succeeded"} {
		if !strings.Contains(details, want) {
			t.Errorf("the step table lacks %q:\n%s", want, details)
		}
	}
	read("memo", "document.body.innerText", "3/4 deregister: succeeded")
}
