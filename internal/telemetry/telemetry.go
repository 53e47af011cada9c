// Package telemetry is Ferry's observability plumbing: OpenTelemetry
// traces (a span per HTTP request, carried into queue tasks through their
// headers, and spans around the engines' work), and the Prometheus
// collectors that read migration, plan and import figures from the
// database at scrape time and time every task.
package telemetry

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	ferrytrace "github.com/ferry-migrate/ferry/internal/trace"
)

// Config says where spans go. With none of them set, tracing is off (the
// global provider stays a no-op and costs nothing).
type Config struct {
	// File receives spans as JSON lines (FERRY_TRACES_FILE).
	File string
	// OTLPEndpoint is an OTLP/HTTP collector, host:port (OTEL_EXPORTER_OTLP_ENDPOINT).
	OTLPEndpoint string
	// Exporter, when set, receives spans (tests: tracetest.InMemoryExporter).
	Exporter sdktrace.SpanExporter
	// Service names the process in spans ("ferry-serve", "ferry-worker").
	Service string
}

// Setup installs the global tracer provider and the W3C propagator. The
// returned function flushes and stops it.
func Setup(ctx context.Context, cfg Config) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	var opts []sdktrace.TracerProviderOption
	var closers []io.Closer
	if cfg.Exporter != nil {
		opts = append(opts, sdktrace.WithSyncer(cfg.Exporter))
	}
	if cfg.File != "" {
		f, err := os.OpenFile(cfg.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("traces file: %w", err)
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(f))
		if err != nil {
			f.Close()
			return nil, err
		}
		closers = append(closers, f)
		opts = append(opts, sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)))
	}
	if cfg.OTLPEndpoint != "" {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(cfg.OTLPEndpoint), otlptracehttp.WithInsecure())
		if err != nil {
			return nil, fmt.Errorf("OTLP exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	if len(opts) == 0 {
		return func(context.Context) error { return nil }, nil
	}
	service := cfg.Service
	if service == "" {
		service = "ferry"
	}
	opts = append(opts, sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))))
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	return func(ctx context.Context) error {
		err := tp.Shutdown(ctx)
		for _, c := range closers {
			c.Close()
		}
		return err
	}, nil
}

// Tracer is Ferry's tracer.
func Tracer() trace.Tracer { return otel.Tracer("github.com/ferry-migrate/ferry") }

// Start starts a span named name under ctx's, tagged with Ferry's trace id.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if id := ferrytrace.FromContext(ctx); id != "" {
		attrs = append(attrs, attribute.String("ferry.trace_id", id))
	}
	return Tracer().Start(ctx, name, trace.WithAttributes(attrs...))
}

// End ends span, recording err.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// headerTraceID carries Ferry's own trace id into a task next to the W3C
// trace context, so the task's logs and audit events name the request's.
const headerTraceID = "ferry-trace-id"

// Headers returns the task headers that carry ctx's trace into a task.
func Headers(ctx context.Context) map[string]string {
	h := map[string]string{}
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(h))
	if id := ferrytrace.FromContext(ctx); id != "" {
		h[headerTraceID] = id
	}
	return h
}

// TaskMiddleware runs every task inside a span that continues the trace of
// whoever enqueued it (when its headers carry one), gives the task the
// enqueuer's Ferry trace id, and times it for Prometheus.
func TaskMiddleware(m *Metrics) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			if h := t.Headers(); len(h) > 0 {
				ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(h))
				if id := h[headerTraceID]; id != "" {
					ctx = ferrytrace.NewContext(ctx, id)
				}
			}
			if ferrytrace.FromContext(ctx) == "" {
				ctx = ferrytrace.NewContext(ctx, ferrytrace.New())
			}
			id, _ := asynq.GetTaskID(ctx)
			ctx, span := Start(ctx, "task "+t.Type(), attribute.String("asynq.task_id", id), attribute.String("asynq.type", t.Type()))
			start := time.Now()
			err := next.ProcessTask(ctx, t)
			if m != nil {
				result := "ok"
				if err != nil {
					result = "error"
				}
				m.taskSeconds.WithLabelValues(t.Type(), result).Observe(time.Since(start).Seconds())
			}
			End(span, err)
			return err
		})
	}
}

// Metrics are the collectors Ferry adds to its registry.
type Metrics struct {
	taskSeconds *prometheus.HistogramVec
}

// NewMetrics registers the task histogram and the database collector on reg.
func NewMetrics(reg prometheus.Registerer, db DBCollector) *Metrics {
	m := &Metrics{taskSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ferry_task_duration_seconds", Help: "Queue tasks by type and result, from start to end of processing.",
		Buckets: []float64{.01, .05, .1, .5, 1, 5, 15, 60, 300, 1800},
	}, []string{"type", "result"})}
	reg.MustRegister(m.taskSeconds)
	if db != nil {
		reg.MustRegister(db)
	}
	return m
}
