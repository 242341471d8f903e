package e2e

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/farewell-project/farewell/devserver"
	"github.com/farewell-project/farewell/workflows"
)

func dial(t testing.TB, srv *devserver.Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  srv.Address(),
		Namespace: srv.Namespace(),
		Logger:    sdklog.NewStructuredLogger(testLogger(t)),
	})
	if err != nil {
		t.Fatalf("dial %s: %v", srv.Address(), err)
	}
	t.Cleanup(c.Close)
	return c
}

// echoWorkflow runs one activity, so that completing it needs a worker.
func echoWorkflow(ctx workflow.Context, in string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, echoActivity, in).Get(ctx, &out)
	return out, err
}

func echoActivity(_ context.Context, in string) (string, error) { return "echo " + in, nil }

func TestDevServerSurvivesRestartWithItsData(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nested", "temporal.db")
	port, uiPort := freePort(t), freePort(t)
	opts := devserver.Options{Port: port, UIPort: uiPort, DBPath: db, Logger: testLogger(t)}

	srv := startServer(t, opts)
	if srv.DBPath() != db {
		t.Fatalf("DBPath = %q, want %q", srv.DBPath(), db)
	}
	resp, err := http.Get(srv.UIURL() + "/")
	if err != nil {
		t.Fatalf("UI: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("UI answered %d, want 200", resp.StatusCode)
	}

	c := dial(t, srv)
	ctx := context.Background()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "restart-probe", TaskQueue: "restart-probe"}, echoWorkflow, "hello")
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	c.Close()
	srv.Stop()

	// Stop released the ports: they can be bound again at once.
	for _, p := range []int{port, uiPort} {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d still held after Stop: %v", p, err)
		}
		l.Close()
	}

	srv2 := startServer(t, opts)
	c2 := dial(t, srv2)
	eventually(t, 30*time.Second, "the workflow to be listed after the restart", func() bool {
		resp, err := c2.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: srv2.Namespace(),
			Query:     "WorkflowId = 'restart-probe'",
		})
		return err == nil && len(resp.GetExecutions()) == 1 &&
			resp.GetExecutions()[0].GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	})

	w := worker.New(c2, "restart-probe", worker.Options{})
	w.RegisterWorkflow(echoWorkflow)
	w.RegisterActivity(echoActivity)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out string
	if err := c2.GetWorkflow(waitCtx, "restart-probe", run.GetRunID()).Get(waitCtx, &out); err != nil {
		t.Fatalf("workflow after restart: %v", err)
	}
	if out != "echo hello" {
		t.Fatalf("workflow returned %q", out)
	}
}

func TestDevServerRegistersSearchAttributes(t *testing.T) {
	db := filepath.Join(t.TempDir(), "temporal.db")
	listed := func(srv *devserver.Server) map[string]enumspb.IndexedValueType {
		resp, err := dial(t, srv).OperatorService().ListSearchAttributes(context.Background(),
			&operatorservice.ListSearchAttributesRequest{Namespace: srv.Namespace()})
		if err != nil {
			t.Fatalf("list search attributes: %v", err)
		}
		return resp.GetCustomAttributes()
	}

	// A database made without them gets them added on the next start.
	old := startServer(t, devserver.Options{DBPath: db, SearchAttributes: map[string]enumspb.IndexedValueType{}})
	if _, ok := listed(old)[workflows.SearchAttrNode]; ok {
		t.Fatalf("%s registered although not asked for", workflows.SearchAttrNode)
	}
	old.Stop()

	for name, srv := range map[string]*devserver.Server{
		"existing file": startServer(t, devserver.Options{DBPath: db}),
		"new file":      startServer(t, devserver.Options{DBPath: filepath.Join(t.TempDir(), "new.db")}),
		"memory":        startServer(t, devserver.Options{}),
	} {
		got := listed(srv)
		for sa, typ := range workflows.SearchAttributes() {
			if got[sa] != typ {
				t.Errorf("%s: search attribute %s = %v, want %v", name, sa, got[sa], typ)
			}
		}
		srv.Stop()
	}
}

func TestDevServerPortTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	for name, opts := range map[string]devserver.Options{
		"grpc": {Port: takenPort, NoUI: true, InMemory: true},
		"ui":   {Port: freePort(t), UIPort: takenPort, InMemory: true},
	} {
		t.Run(name, func(t *testing.T) {
			opts.Logger = testLogger(t)
			srv, err := devserver.Start(context.Background(), opts)
			if err == nil {
				srv.Stop()
				t.Fatal("Start succeeded on a taken port")
			}
			if !errors.Is(err, devserver.ErrPortInUse) {
				t.Fatalf("error %v does not match ErrPortInUse", err)
			}
			want := "127.0.0.1:" + strconv.Itoa(takenPort)
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name %s", err, want)
			}
		})
	}
}

// newEchoWorker runs echoWorkflow and echoActivity on task queue tq.
func newEchoWorker(t testing.TB, c client.Client, tq string) worker.Worker {
	t.Helper()
	w := worker.New(c, tq, worker.Options{})
	w.RegisterWorkflow(echoWorkflow)
	w.RegisterActivity(echoActivity)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	return w
}
