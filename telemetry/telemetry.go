// Package telemetry sets up OpenTelemetry for every Farewell process (CLI, dev, worker,
// node) from the standard OTEL_* environment, through the contrib autoexport package:
// OTEL_TRACES_EXPORTER (otlp, console, none), OTEL_METRICS_EXPORTER (otlp, prometheus,
// console, none), OTEL_EXPORTER_OTLP_*, OTEL_EXPORTER_PROMETHEUS_HOST/_PORT,
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES. When nothing is set nothing is
// exported and the providers are no-ops: no cost.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// ScopeName is the instrumentation scope of Farewell's own spans and metrics.
const ScopeName = "github.com/farewell-project/farewell"

// Options configure Setup.
type Options struct {
	// Role names the process in the resource (farewell.role): cli, dev, demo, worker, node.
	Role string
	// Node names the cluster node the process is, if it is one (farewell.node).
	Node string
	// Logger receives export errors; nil means slog.Default().
	Logger *slog.Logger
	// Metrics sets up metric export; long-running processes (dev, worker, node) want
	// it, a one-shot CLI command does not (it would race them for the Prometheus port).
	Metrics bool
	// SpanExporter and MetricReader replace what the environment says (tests).
	SpanExporter sdktrace.SpanExporter
	MetricReader sdkmetric.Reader
	// Global also installs the providers and propagator as OpenTelemetry's globals.
	Global bool
	// Env, when not nil, is the environment that says whether to export (KEY=VALUE);
	// nil means the process's. The exporters' own settings still come from the
	// process's environment.
	Env []string
}

// Telemetry is one process's tracer and meter providers.
type Telemetry struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	propagator     propagation.TextMapPropagator
	log            *slog.Logger
	shutdowns      []func(context.Context) error
	// Tracing and Metrics say whether anything is exported.
	Tracing, Metrics bool
	// MetricsAddr is where /metrics is served, when OTEL_METRICS_EXPORTER=prometheus.
	MetricsAddr string
}

// Disabled is telemetry that records and exports nothing.
func Disabled() *Telemetry {
	return &Telemetry{
		tracerProvider: tracenoop.NewTracerProvider(),
		meterProvider:  metricnoop.NewMeterProvider(),
		propagator:     propagator(),
		log:            slog.Default(),
	}
}

func propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Setup builds the providers. Call Shutdown before the process exits: it flushes what
// is buffered (a CLI that exits must not lose its spans).
func Setup(ctx context.Context, o Options) (*Telemetry, error) {
	t := Disabled()
	if o.Logger != nil {
		t.log = o.Logger
	}
	res, err := newResource(ctx, o)
	if err != nil {
		return nil, err
	}

	getenv := o.getenv
	exporter := o.SpanExporter
	if exporter == nil && enabled(getenv("OTEL_TRACES_EXPORTER")) {
		if exporter, err = autoexport.NewSpanExporter(ctx); err != nil {
			return nil, fmt.Errorf("OTEL_TRACES_EXPORTER: %w", err)
		}
		if autoexport.IsNoneSpanExporter(exporter) {
			exporter = nil
		}
	}
	if exporter != nil {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
		t.tracerProvider, t.Tracing = tp, true
		t.shutdowns = append(t.shutdowns, tp.Shutdown)
	}

	if o.Metrics {
		reader := o.MetricReader
		if reader == nil && enabled(getenv("OTEL_METRICS_EXPORTER")) {
			if reader, err = autoexport.NewMetricReader(ctx); err != nil {
				t.Shutdown(ctx)
				return nil, fmt.Errorf("OTEL_METRICS_EXPORTER: %w", err)
			}
			if autoexport.IsNoneMetricReader(reader) {
				reader = nil
			}
		}
		if reader != nil {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res))
			t.meterProvider, t.Metrics = mp, true
			t.shutdowns = append(t.shutdowns, mp.Shutdown)
			if getenv("OTEL_METRICS_EXPORTER") == "prometheus" && o.MetricReader == nil {
				t.MetricsAddr = orDefault(getenv("OTEL_EXPORTER_PROMETHEUS_HOST"), "localhost") + ":" +
					orDefault(getenv("OTEL_EXPORTER_PROMETHEUS_PORT"), "9464")
			}
		}
	}

	if o.Global {
		otel.SetTracerProvider(t.tracerProvider)
		otel.SetMeterProvider(t.meterProvider)
		otel.SetTextMapPropagator(t.propagator)
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { t.log.Warn("telemetry export failed", "error", err) }))
	}
	return t, nil
}

func enabled(v string) bool {
	v = strings.TrimSpace(v)
	return v != "" && v != "none"
}

// getenv reads o.Env, or the process's environment when it is nil.
func (o Options) getenv(k string) string {
	if o.Env == nil {
		return os.Getenv(k)
	}
	for _, kv := range o.Env {
		if key, v, ok := strings.Cut(kv, "="); ok && key == k {
			return v
		}
	}
	return ""
}

func orDefault(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// newResource names the process: service.name (farewell unless OTEL_SERVICE_NAME says
// otherwise), its role and node; OTEL_RESOURCE_ATTRIBUTES adds to or overrides them.
func newResource(ctx context.Context, o Options) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{attribute.String("service.name", "farewell")}
	if o.Role != "" {
		attrs = append(attrs, attribute.String("farewell.role", o.Role))
	}
	if o.Node != "" {
		attrs = append(attrs, attribute.String("farewell.node", o.Node))
	}
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	return res, nil
}

// Tracer is Farewell's tracer.
func (t *Telemetry) Tracer() trace.Tracer { return t.tracerProvider.Tracer(ScopeName) }

// Meter is Farewell's meter.
func (t *Telemetry) Meter() metric.Meter { return t.meterProvider.Meter(ScopeName) }

// ClientInterceptors are the Temporal client interceptors: the contrib tracing
// interceptor when tracing is on, so that one trace spans caller → StartWorkflow →
// RunWorkflow → StartActivity → RunActivity. Workers built on the client inherit them;
// never give them to a replayer (it would emit a run's spans again).
func (t *Telemetry) ClientInterceptors() ([]interceptor.ClientInterceptor, error) {
	if !t.Tracing {
		return nil, nil
	}
	ti, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer:            t.tracerProvider.Tracer("temporal-sdk-go"),
		TextMapPropagator: t.propagator,
	})
	if err != nil {
		return nil, fmt.Errorf("tracing interceptor: %w", err)
	}
	return []interceptor.ClientInterceptor{ti}, nil
}

// MetricsHandler is the Temporal SDK's metrics handler, or nil when metrics are off.
// It logs instrument errors instead of panicking (the contrib default).
func (t *Telemetry) MetricsHandler() client.MetricsHandler {
	if !t.Metrics {
		return nil
	}
	return temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter:                t.meterProvider.Meter("temporal-sdk-go"),
		OnError:              func(err error) { t.log.Warn("temporal metric not recorded", "error", err) },
		UseMonotonicCounters: true,
	})
}

// Flush exports the spans buffered so far, without stopping.
func (t *Telemetry) Flush(ctx context.Context) error {
	if tp, ok := t.tracerProvider.(*sdktrace.TracerProvider); ok {
		return tp.ForceFlush(ctx)
	}
	return nil
}

// Shutdown flushes and stops the exporters (and the Prometheus endpoint).
func (t *Telemetry) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var errs []error
	for i := len(t.shutdowns) - 1; i >= 0; i-- {
		errs = append(errs, t.shutdowns[i](ctx))
	}
	t.shutdowns = nil
	return errors.Join(errs...)
}
