package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.temporal.io/sdk/client"
)

// benchUI is a headless Chromium on a benchmark's Temporal UI: it saves what a run's
// pages look like, to be read by a person (FAREWELL_BENCH_UI=DIR). Checks of what the
// UI shows are TestUIShowsTheRun's; this only looks at a size no test runs.
type benchUI struct {
	b      *testing.B
	ctx    context.Context
	url    string
	dir    string
	cancel []context.CancelFunc
}

// newBenchUI starts the browser on the fixture's UI; nil when FAREWELL_BENCH_UI is
// not set.
func newBenchUI(b *testing.B, f *benchFixture) *benchUI {
	dir := os.Getenv("FAREWELL_BENCH_UI")
	if dir == "" {
		return nil
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		b.Fatalf("FAREWELL_BENCH_UI needs chromium (apt-get install chromium): %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1500, 1100), chromedp.UserDataDir(b.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	// The first Run starts the browser, bound to the context it is given: this one,
	// not a shot's (whose end would close the browser).
	if _, err := chromedp.Run(bctx, chromedp.Navigate("about:blank")); err != nil {
		cancelBrowser()
		cancelAlloc()
		b.Fatalf("start chromium: %v", err)
	}
	return &benchUI{b: b, ctx: bctx, url: f.uiURL, dir: dir, cancel: []context.CancelFunc{cancelBrowser, cancelAlloc}}
}

// shot saves tab ("user-metadata", "memo", "history") of a run's page as name.png,
// once the page shows text holding want. A page that does not is said, not fatal:
// the benchmark's figures stand without it.
func (u *benchUI) shot(id, runID, tab, name, want string) {
	if u == nil {
		return
	}
	ctx, cancel := context.WithTimeout(u.ctx, time.Minute)
	defer cancel()
	const frames = `Array.from(document.querySelectorAll("iframe")).map(f => f.contentDocument ? f.contentDocument.body.innerText : "").join("\n") + document.body.innerText`
	if _, err := chromedp.Run(ctx, chromedp.Navigate(u.url+"/workflows/"+id+"/"+runID+"/"+tab)); err != nil {
		u.b.Logf("UI %s: %v", name, err)
		return
	}
	for {
		text, err := chromedp.Run(ctx, chromedp.Evaluate[string](frames))
		if err == nil && strings.Contains(text, want) {
			break
		}
		select {
		case <-ctx.Done():
			u.b.Logf("UI %s: %q not shown within a minute", name, want)
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err == nil {
		err = os.WriteFile(filepath.Join(u.dir, name+".png"), png, 0o644)
	}
	if err != nil {
		u.b.Logf("UI %s: %v", name, err)
	}
}

func (u *benchUI) close() {
	if u == nil {
		return
	}
	for _, c := range u.cancel {
		c()
	}
}

// currentRun is the run ID a workflow runs as now (a drain continues as new).
func currentRun(ctx context.Context, c client.Client, id string) string {
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return ""
	}
	return d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
}
