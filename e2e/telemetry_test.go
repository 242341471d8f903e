package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/telemetry"
	"github.com/farewell-project/farewell/workflows"
)

func TestTelemetryEndToEnd(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	reader := sdkmetric.NewManualReader()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Role: "test", SpanExporter: spans, Metrics: true, MetricReader: reader})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	cfg := testConfig()
	cfg.Shutdown.SlowThreshold = time.Millisecond // every shutdown is slow
	s := newStackWith(t, cfg, 3, tel)

	shutdown := func(node string) (*workflows.ShutdownReport, trace.SpanContext) {
		ctx, caller := tel.Tracer().Start(context.Background(), "test caller")
		defer caller.End()
		run, err := s.starter.Shutdown(ctx, workflows.ShutdownRequest{Node: node})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.starter.Wait(ctx, run, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r, caller.SpanContext()
	}
	inTrace := func(tid trace.TraceID) tracetest.SpanStubs {
		if err := tel.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		var out tracetest.SpanStubs
		for _, sp := range spans.GetSpans() {
			if sp.SpanContext.TraceID() == tid {
				out = append(out, sp)
			}
		}
		return out
	}

	t.Run("one trace from the caller to every service stop", func(t *testing.T) {
		r, caller := shutdown("node-1")
		if r.TraceID != caller.TraceID().String() {
			t.Errorf("report trace_id %q, caller's trace %s", r.TraceID, caller.TraceID())
		}
		got := inTrace(caller.TraceID())
		count := map[string]int{}
		byID := map[trace.SpanID]tracetest.SpanStub{}
		for _, sp := range got {
			count[sp.Name]++
			byID[sp.SpanContext.SpanID()] = sp
		}
		for _, name := range []string{"test caller", "StartWorkflow:GracefulShutdown",
			"RunActivity:SetGracefullyLeft", "RunActivity:StopHeartbeat", "RunActivity:Deregister", "RunActivity:StopServices",
			"metadata broadcast", "heartbeat stop", "memberlist leave", "service stop"} {
			if count[name] == 0 {
				t.Errorf("no %q span in the trace (have %v)", name, count)
			}
		}
		if count["RunWorkflow:GracefulShutdown"] != 1 {
			t.Errorf("%d RunWorkflow spans, want exactly 1", count["RunWorkflow:GracefulShutdown"])
		}
		// The real work hangs under the step's own activity span, with its attributes.
		for _, sp := range got {
			if sp.Name != "memberlist leave" {
				continue
			}
			if parent := byID[sp.Parent.SpanID()]; parent.Name != "RunActivity:Deregister" {
				t.Errorf("memberlist leave's parent is %q", parent.Name)
			}
			attrs := map[string]string{}
			for _, kv := range sp.Attributes {
				attrs[string(kv.Key)] = kv.Value.String()
			}
			if attrs["farewell.node"] != "node-1" || attrs["farewell.step"] != plan.Deregister ||
				attrs["farewell.attempt"] != "1" || attrs["farewell.outcome"] != "ok" {
				t.Errorf("memberlist leave attributes %v", attrs)
			}
		}
	})

	t.Run("a timed-out step's span has error status", func(t *testing.T) {
		s.nodes["node-2"].faults.Set(plan.SetGracefullyLeft, activities.FaultHang)
		r, caller := shutdown("node-2")
		if st, _ := r.Step(plan.SetGracefullyLeft); st.Status != plan.StepTimedOut {
			t.Fatalf("step %s", st.Status)
		}
		failed := 0
		for _, sp := range inTrace(caller.TraceID()) {
			if sp.Name == "RunActivity:SetGracefullyLeft" {
				if sp.Status.Code != codes.Error {
					t.Errorf("attempt span status %v", sp.Status)
				}
				failed++
			}
		}
		if failed != 2 {
			t.Errorf("%d attempt spans of the hung step, want 2", failed)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		steps := map[string]uint64{}   // step/status → observations
		outcomes := map[string]int64{} // outcome → shutdowns
		var slow, convergence uint64
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch data := m.Data.(type) {
				case metricdata.Histogram[float64]:
					for _, dp := range data.DataPoints {
						switch m.Name {
						case workflows.MetricStepDuration:
							step, _ := dp.Attributes.Value("step")
							status, _ := dp.Attributes.Value("status")
							steps[step.AsString()+"/"+status.AsString()] += dp.Count
						case workflows.MetricConvergenceDuration:
							convergence += dp.Count
						}
					}
				case metricdata.Sum[int64]:
					for _, dp := range data.DataPoints {
						switch m.Name {
						case workflows.MetricShutdowns:
							o, _ := dp.Attributes.Value("outcome")
							outcomes[o.AsString()] += dp.Value
						case workflows.MetricSlowShutdowns:
							slow += uint64(dp.Value)
						}
					}
				}
			}
		}
		for _, want := range []string{"set-gracefully-left/succeeded", "set-gracefully-left/timed_out", "deregister/succeeded", "stop-services/succeeded"} {
			if steps[want] == 0 {
				t.Errorf("no step duration for %s (have %v)", want, steps)
			}
		}
		if outcomes["graceful"] != 1 || outcomes["degraded"] != 1 {
			t.Errorf("outcome counter %v, want one graceful and one degraded", outcomes)
		}
		if slow != 2 || convergence < 2 {
			t.Errorf("slow shutdowns %d (want 2 with a 1 ms threshold), convergence observations %d", slow, convergence)
		}
	})

	t.Run("a CLI process that exits exports its span", func(t *testing.T) {
		p := startProcess(t, []string{"OTEL_TRACES_EXPORTER=console", "TEMPORAL_ADDRESS=" + s.srv.Address()},
			"shutdown", "node-3", "--wait", "--output", "json")
		if code := p.wait(time.Minute); code != 0 {
			t.Fatalf("exit %d\n%s", code, p.stderr.String())
		}
		dec := json.NewDecoder(strings.NewReader(p.stdout.String()))
		var report workflows.ShutdownReport
		if err := dec.Decode(&report); err != nil || report.TraceID == "" {
			t.Fatalf("report: %v %+v", err, report)
		}
		var names []string
		for {
			var span struct {
				Name        string
				SpanContext struct{ TraceID string }
			}
			if err := dec.Decode(&span); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("console spans: %v\n%s", err, p.stdout.String())
				}
				break
			}
			if span.SpanContext.TraceID == report.TraceID {
				names = append(names, span.Name)
			}
		}
		if !strings.Contains(strings.Join(names, ","), "farewell shutdown") {
			t.Errorf("the CLI's own span of trace %s was not exported; got %v", report.TraceID, names)
		}
		// The same trace continues in this process: the workflow and the node's steps.
		got := map[string]bool{}
		for _, sp := range inTrace(mustTraceID(t, report.TraceID)) {
			got[sp.Name] = true
		}
		if !got["RunWorkflow:GracefulShutdown"] || !got["RunActivity:StopServices"] {
			t.Errorf("the workers' spans are not in the CLI's trace: %v", got)
		}
	})
}

// After real shutdowns, /metrics carries every metric and label the shipped alerting
// rules use.
func TestPrometheusEndpointServesWhatTheAlertsUse(t *testing.T) {
	port := itoa(freePort(t))
	t.Setenv("OTEL_METRICS_EXPORTER", "prometheus")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_PORT", port)
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Role: "test", Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	cfg := testConfig()
	cfg.Shutdown.SlowThreshold = time.Millisecond // so that the slow counter exists
	s := newStackWith(t, cfg, 2, tel)
	if err := telemetry.ObserveMembers(tel.Meter(), s.observer); err != nil {
		t.Fatal(err)
	}
	s.nodes["node-2"].agent.StopWorker() // a forced shutdown too
	for _, node := range []string{"node-1", "node-2"} {
		s.shutdown(t, node)
	}

	wanted := alertSelectors(t)
	var families map[string]*dto.MetricFamily
	eventually(t, 30*time.Second, "/metrics to carry what the alerts use", func() bool {
		families = scrape(t, "http://127.0.0.1:"+port+"/metrics")
		for metric, labels := range wanted {
			if !hasLabels(families[metric], labels) {
				return false
			}
		}
		return true
	})
	for metric, labels := range wanted {
		t.Logf("%s %v: present", metric, labels)
	}
}

// alertSelectors reads the shipped alerting rules and returns each metric their
// expressions select, with the label names they match on or group by.
func alertSelectors(t *testing.T) map[string][]string {
	t.Helper()
	groups, errs := rulefmt.ParseFile("../deploy/prometheus/farewell-rules.yml", false, model.UTF8Validation,
		parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 || groups == nil {
		t.Fatalf("alert rules: %v", errs)
	}
	out := map[string][]string{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr)
			if err != nil {
				t.Fatalf("%s: %v", r.Alert, err)
			}
			var grouping []string
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				switch n := n.(type) {
				case *parser.AggregateExpr:
					grouping = append(grouping, n.Grouping...)
				case *parser.VectorSelector:
					for _, m := range n.LabelMatchers {
						if m.Name != model.MetricNameLabel {
							out[n.Name] = append(out[n.Name], m.Name)
						}
					}
					out[n.Name] = append(out[n.Name], grouping...)
				}
				return nil
			})
		}
	}
	if len(out) == 0 {
		t.Fatal("the alert rules select no metric")
	}
	return out
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("not Prometheus text format: %v\n%s", err, body)
	}
	return families
}

// hasLabels reports whether some sample of the family carries every label named.
func hasLabels(f *dto.MetricFamily, labels []string) bool {
	if f == nil {
		return false
	}
	for _, m := range f.GetMetric() {
		have := map[string]bool{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = true
		}
		all := true
		for _, l := range labels {
			all = all && have[l]
		}
		if all {
			return true
		}
	}
	return false
}

func mustTraceID(t *testing.T, s string) trace.TraceID {
	t.Helper()
	id, err := trace.TraceIDFromHex(s)
	if err != nil {
		t.Fatalf("trace id %q: %v", s, err)
	}
	return id
}
