package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	sdkpb "go.temporal.io/api/sdk/v1"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/internal/testkit"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/workflows"
)

// stepBound is how long the graceful steps can take with every attempt timing out
// (their ScheduleToStart aside: the worker is there), plus a margin for the server and
// this shared machine.
func stepBound(p plan.Plan) time.Duration {
	const margin = 5 * time.Second
	var total time.Duration
	for _, s := range p.Steps {
		total += s.Budget() - s.ScheduleToStart
	}
	return total + margin
}

func TestShutdownEndToEnd(t *testing.T) {
	cfg := testConfig()
	p := cfg.Shutdown.MustPlan()
	s := newStack(t, cfg, 7)

	t.Run("a node's worker holds one long poll", func(t *testing.T) {
		// Temporal's frontend allows 1,200 long polls per API and namespace: a node
		// worker that also polled for workflow tasks spent two of them for nothing, and
		// 600 nodes starved the orchestrators.
		q := workflows.NodeTaskQueue("node-7")
		testkit.Eventually(t, 10*time.Second, "node-7's worker polling for its steps", func() bool {
			d, err := s.client.DescribeTaskQueue(context.Background(), q, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
			return err == nil && len(d.GetPollers()) == 1
		})
		d, err := s.client.DescribeTaskQueue(context.Background(), q, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(d.GetPollers()); n != 0 {
			t.Errorf("%d workflow-task pollers on %s; a node runs no workflow, want none", n, q)
		}
	})

	t.Run("graceful", func(t *testing.T) {
		r := s.shutdown(t, "node-1")
		if r.Outcome != plan.Graceful || !r.Converged || r.Evicted {
			t.Fatalf("outcome %s converged %v evicted %v: %s", r.Outcome, r.Converged, r.Evicted, r.Error)
		}
		for _, st := range r.Steps {
			if st.Status != plan.StepSucceeded || st.Attempts != 1 {
				t.Errorf("step %s %s after %d attempts", st.Name, st.Status, st.Attempts)
			}
		}
		for _, m := range s.members("node-1") {
			if st := stateOf(m, "node-1"); st != cluster.StateLeft {
				t.Errorf("%s sees node-1 %s, want left", m.Name(), st)
			}
		}
		s.assertInvariant(t, "node-1", r)
		assertVisibleInUI(t, s, r)
	})

	t.Run("set-gracefully-left hangs", func(t *testing.T) {
		s.nodes["node-2"].faults.Set(plan.SetGracefullyLeft, activities.FaultHang)
		r := s.shutdown(t, "node-2")
		first, _ := r.Step(plan.SetGracefullyLeft)
		spec, _ := p.Step(plan.SetGracefullyLeft)
		if first.Status != plan.StepTimedOut || first.Attempts != spec.MaxAttempts || !strings.Contains(first.Error, "start-to-close") {
			t.Errorf("hung step: %+v", first)
		}
		if first.Duration.Std() < time.Duration(spec.MaxAttempts)*spec.StartToClose {
			t.Errorf("hung step ended after %s, before its attempts' StartToClose", first.Duration)
		}
		for _, st := range r.Steps[1:] {
			if st.Status != plan.StepSucceeded {
				t.Errorf("step %s %s after the hang", st.Name, st.Status)
			}
		}
		if r.Outcome != plan.Degraded || r.Evicted {
			t.Errorf("outcome %s evicted %v", r.Outcome, r.Evicted)
		}
		if bound := stepBound(p); r.Total.Std() > bound {
			t.Errorf("took %s, more than the steps' timeouts + margin (%s)", r.Total, bound)
		}
		s.assertInvariant(t, "node-2", r)
	})

	t.Run("gossip stalls as the shutdown begins", func(t *testing.T) {
		s.nodes["node-3"].member().Transport().Arm(cluster.Fault{Mode: cluster.FaultStall})
		r := s.shutdown(t, "node-3")
		gone, _ := r.Step(plan.SetGracefullyLeft)
		dereg, _ := r.Step(plan.Deregister)
		if gone.Status == plan.StepSucceeded || dereg.Status == plan.StepSucceeded {
			t.Errorf("gossip steps succeeded under a stall: %+v / %+v", gone, dereg)
		}
		if hb, _ := r.Step(plan.StopHeartbeat); hb.Status != plan.StepSucceeded {
			t.Errorf("stop-heartbeat needs no gossip, yet %s", hb.Status)
		}
		if r.Outcome != plan.Forced || !r.Evicted || !r.Converged {
			t.Errorf("outcome %s evicted %v converged %v", r.Outcome, r.Evicted, r.Converged)
		}
		if bound := p.Budget(); r.Total.Std() > bound {
			t.Errorf("took %s, more than the plan's bound %s", r.Total, bound)
		}
		for _, m := range s.members("node-3") {
			if st := stateOf(m, "node-3"); st != cluster.StateEvicted && st != cluster.StateDead {
				t.Errorf("%s sees node-3 %s, want evicted or dead", m.Name(), st)
			}
		}
		s.assertInvariant(t, "node-3", r)
	})

	t.Run("node worker stopped", func(t *testing.T) {
		s.nodes["node-4"].agent.StopWorker()
		r := s.shutdown(t, "node-4")
		first, _ := r.Step(plan.SetGracefullyLeft)
		if first.Status != plan.StepTimedOut || !strings.Contains(first.Error, "schedule-to-start") {
			t.Errorf("first step %+v", first)
		}
		if r.Outcome != plan.Forced || !r.Evicted || r.Terminated {
			t.Errorf("outcome %s evicted %v terminated %v", r.Outcome, r.Evicted, r.Terminated)
		}
		for _, m := range s.members("node-4") {
			if st := stateOf(m, "node-4"); st != cluster.StateEvicted {
				t.Errorf("%s sees node-4 %s, want evicted", m.Name(), st)
			}
		}
		// The evicted node heard of it and fenced itself: out of memberlist, not serving.
		eventually(t, 10*time.Second, "node-4 to fence itself", func() bool {
			left, _ := s.nodes["node-4"].member().Left()
			return left
		})
		s.assertInvariant(t, "node-4", r)
	})

	t.Run("deregister errors under policy abort", func(t *testing.T) {
		s.nodes["node-5"].faults.Set(plan.Deregister, activities.FaultError)
		_, r, err := s.run(t, workflows.ShutdownRequest{Node: "node-5", Override: withPolicy(plan.Deregister, plan.Abort)})
		if err != nil {
			t.Fatal(err)
		}
		if r.Outcome != plan.Aborted || !r.RolledBack || r.Evicted {
			t.Fatalf("outcome %s rolled back %v evicted %v: %s", r.Outcome, r.RolledBack, r.Evicted, r.Error)
		}
		if st, _ := r.Step(plan.StopServices); st.Status != plan.StepSkipped {
			t.Errorf("stop-services %s after an abort", st.Status)
		}
		s.assertInvariant(t, "node-5", r)
	})

	t.Run("two concurrent triggers share one run; exactly one started it", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		runs := make([]starter.Run, 2)
		for i := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				run, err := s.starter.Shutdown(ctx, workflows.ShutdownRequest{Node: "node-6", RequestedBy: "trigger", Force: i == 1})
				if err != nil {
					t.Error(err)
					return
				}
				runs[i] = run
			}()
		}
		wg.Wait()
		if runs[0].RunID == "" || runs[0].RunID != runs[1].RunID {
			t.Fatalf("two triggers started two runs: %+v", runs)
		}
		if runs[0].Joined == runs[1].Joined {
			t.Errorf("joined %v and %v: exactly one of them started the run", runs[0].Joined, runs[1].Joined)
		}
		if runs[1].Joined && !slices.Contains(runs[1].NotApplied, "force") {
			t.Errorf("the joining trigger asked for force and was not told it was not applied: %+v", runs[1])
		}
		r, err := s.starter.Wait(ctx, runs[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		s.assertInvariant(t, "node-6", r)
	})

	t.Run("unknown node is bad input", func(t *testing.T) {
		env := []string{"TEMPORAL_ADDRESS=" + s.srv.Address()}
		for _, args := range [][]string{{"shutdown", "node-9", "--wait"}, {"shutdown", "node-9"}} {
			code, _, stderr := runCLI(t, env, args...)
			if code != 2 || !strings.Contains(stderr, `unknown node "node-9"`) {
				t.Errorf("%v: exit %d, stderr:\n%s", args, code, stderr)
			}
		}
		code, _, stderr := runCLI(t, env, "shutdown", "observer", "--wait")
		if code != 2 || !strings.Contains(stderr, "observer") {
			t.Errorf("shutting the observer down: exit %d, stderr:\n%s", code, stderr)
		}
	})

	t.Run("status and list", func(t *testing.T) {
		r := s.shutdown(t, "node-7")
		env := []string{"TEMPORAL_ADDRESS=" + s.srv.Address()}
		code, stdout, stderr := runCLI(t, env, "status", "node-7", "--output", "json")
		if code != 0 {
			t.Fatalf("status: exit %d: %s", code, stderr)
		}
		var st struct {
			Status string                   `json:"status"`
			Report workflows.ShutdownReport `json:"report"`
		}
		if err := json.Unmarshal([]byte(stdout), &st); err != nil || st.Status != "Completed" || st.Report.Outcome != r.Outcome ||
			st.Report.RunID != r.RunID {
			t.Errorf("status of node-7: %v %+v\n%s", err, st, stdout)
		}
		eventually(t, 20*time.Second, "list to show node-7's closed shutdown", func() bool {
			code, stdout, _ := runCLI(t, env, "list", "--closed", "--node", "node-7", "--output", "json")
			var list []struct {
				Node, Outcome string
			}
			if code != 0 || json.Unmarshal([]byte(stdout), &list) != nil {
				return false
			}
			return len(list) == 1 && list[0].Outcome == string(r.Outcome)
		})
		if code, _, stderr := runCLI(t, env, "status", "node-77"); code != 2 || !strings.Contains(stderr, "node-77") {
			t.Errorf("status of a node never shut down: exit %d: %s", code, stderr)
		}
	})
}

func TestNodeProcessSIGTERMRunsItsWorkflow(t *testing.T) {
	s := newStack(t, testConfig(), 0)
	p := startProcess(t, nil, "node", "--name", "sub-1", "--bind", "127.0.0.1:0",
		"--join", s.observer.Addr(), "--address", s.srv.Address())
	p.waitLine("ready ", time.Minute)
	eventually(t, 30*time.Second, "the node's worker to serve", func() bool {
		return strings.Contains(p.stderr.String(), "node worker serving")
	})
	eventually(t, 10*time.Second, "the observer to see sub-1", func() bool { return stateOf(s.observer, "sub-1") == cluster.StateAlive })

	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Fatalf("node exited %d\nstdout:\n%s\nstderr:\n%s", code, p.stdout.String(), p.stderr.String())
	}
	st, err := s.starter.Status(context.Background(), "sub-1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Report == nil || st.Report.Outcome != plan.Graceful || !strings.HasPrefix(st.Report.RequestedBy, "sigterm") {
		t.Fatalf("status after SIGTERM: %+v", st)
	}
	if got := stateOf(s.observer, "sub-1"); got != cluster.StateLeft {
		t.Errorf("observer sees sub-1 %s, want left", got)
	}
	if !strings.Contains(p.stdout.String(), "GRACEFUL") {
		t.Errorf("node did not print its report:\n%s", p.stdout.String())
	}
}

func TestNodeProcessWithoutTemporalShutsDownLocally(t *testing.T) {
	observer := newStack(t, testConfig(), 0).observer
	p := startProcess(t, nil, "node", "--name", "sub-2", "--bind", "127.0.0.1:0",
		"--join", observer.Addr(), "--address", "127.0.0.1:1")
	p.waitLine("ready ", time.Minute)
	eventually(t, 30*time.Second, "the node to say Temporal cannot be reached", func() bool {
		return strings.Contains(p.stderr.String(), "Temporal cannot be reached")
	})
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Fatalf("node exited %d\nstderr:\n%s", code, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "running the shutdown plan locally") || !strings.Contains(p.stdout.String(), "local fallback") {
		t.Errorf("the local fallback did not say so:\nstdout:\n%s", p.stdout.String())
	}
	eventually(t, 10*time.Second, "the observer to see sub-2 left", func() bool { return stateOf(observer, "sub-2") == cluster.StateLeft })
}

func TestDevAndShutdownFromTheCLI(t *testing.T) {
	port, uiPort, clusterPort := freePort(t), freePort(t), freePort(t)
	dev := startCLI(t, nil, "dev", "--port", itoa(port), "--ui-port", itoa(uiPort), "--cluster-port", itoa(clusterPort),
		"--db", "", "--nodes", "3")
	eventually(t, time.Minute, "dev to be ready", func() bool { return strings.Contains(dev.Stdout.String(), "ready ") })
	if !strings.Contains(dev.Stdout.String(), "nodes=node-1,node-2,node-3") {
		t.Errorf("ready line: %s", dev.Stdout.String())
	}
	env := []string{"TEMPORAL_ADDRESS=127.0.0.1:" + itoa(port)}
	code, stdout, stderr := runCLI(t, env, "shutdown", "node-2", "--wait", "--output", "json")
	if code != 0 {
		t.Fatalf("shutdown exit %d: %s\n%s", code, stderr, stdout)
	}
	var r workflows.ShutdownReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || r.Outcome != plan.Graceful {
		t.Fatalf("report: %v\n%s", err, stdout)
	}
	code, stdout, _ = runCLI(t, env, "shutdown", "node-3", "--output", "json")
	var run struct {
		WorkflowID string `json:"workflow_id"`
		RunID      string `json:"run_id"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &run) != nil || run.WorkflowID != "farewell-shutdown-node-3" || run.RunID == "" {
		t.Fatalf("shutdown without --wait: exit %d\n%s", code, stdout)
	}
	dev.cancel()
	if code := dev.wait(t, time.Minute); code != 0 {
		t.Fatalf("dev exited %d", code)
	}
}

func TestDemoRunsTheStory(t *testing.T) {
	code, stdout, stderr := runCLI(t, nil, "demo", "--exit", "--port", itoa(freePort(t)), "--ui-port", itoa(freePort(t)),
		"--cluster-port", itoa(freePort(t)))
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"node-2: GRACEFUL", "node-3: DEGRADED", "node-4: FORCED", "node-5: FORCED", "evicted by farewell-observer"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// assertVisibleInUI checks, through the APIs the Temporal UI reads, that a run shows a
// summary per step, the step table as current details, and its search attributes.
func assertVisibleInUI(t *testing.T, s *e2eStack, r *workflows.ShutdownReport) {
	t.Helper()
	ctx := context.Background()
	var summaries []string
	iter := s.client.GetWorkflowHistory(ctx, r.WorkflowID, r.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED {
			summaries = append(summaries, string(e.GetUserMetadata().GetSummary().GetData()))
		}
	}
	joined := strings.Join(summaries, "\n")
	for i, step := range plan.Builtin() {
		want := fmt.Sprintf("%d/4 %s on %s", i+1, step, r.Node)
		if !strings.Contains(joined, want) {
			t.Errorf("no activity summary %q among:\n%s", want, joined)
		}
	}
	v, err := s.client.QueryWorkflow(ctx, r.WorkflowID, r.RunID, "__temporal_workflow_metadata")
	if err != nil {
		t.Fatalf("metadata query: %v", err)
	}
	var md sdkpb.WorkflowMetadata
	if err := v.Get(&md); err != nil {
		t.Fatal(err)
	}
	if d := md.GetCurrentDetails(); !strings.Contains(d, "| 3/4 | deregister | ✓ succeeded |") || !strings.Contains(d, "Outcome: graceful") {
		t.Errorf("current details:\n%s", d)
	}
	desc, err := s.client.DescribeWorkflowExecution(ctx, r.WorkflowID, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	fields := desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()
	for name, want := range map[string]string{workflows.SearchAttrNode: r.Node, workflows.SearchAttrOutcome: "graceful", workflows.SearchAttrStep: "done"} {
		if got := strings.Trim(string(fields[name].GetData()), `"`); got != want {
			t.Errorf("search attribute %s = %q, want %q", name, got, want)
		}
	}
}

func TestNodeProcessSecondSignalExitsAtOnce(t *testing.T) {
	s := newStack(t, testConfig(), 0)
	p := startProcess(t, nil, "node", "--name", "sub-3", "--bind", "127.0.0.1:0",
		"--join", s.observer.Addr(), "--address", s.srv.Address(), "--fault", "set-gracefully-left=hang")
	p.waitLine("ready ", time.Minute)
	eventually(t, 30*time.Second, "the node's worker to serve", func() bool {
		return strings.Contains(p.stderr.String(), "node worker serving")
	})
	p.signal(syscall.SIGTERM)
	eventually(t, 30*time.Second, "the hanging step to start", func() bool {
		return strings.Contains(p.stderr.String(), "injected fault: step hangs")
	})
	p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 1 || !strings.Contains(p.stderr.String(), "second signal") {
		t.Fatalf("after a second signal: exit %d\n%s", code, p.stderr.String())
	}
}
