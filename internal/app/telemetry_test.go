package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/planning"
	"github.com/ferry-migrate/ferry/internal/telemetry"
)

// TestTracesAndMetrics: a plan queued by a GraphQL request is one trace
// from the HTTP request through the queue task to the planner; /metrics
// reports plans, migrations and task timings from the database and the
// workers; every log line, asynq's included, is JSON.
func TestTracesAndMetrics(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	old := planning.InlineHosts
	planning.InlineHosts = 0 // every plan goes through the queue
	defer func() { planning.InlineHosts = old }()
	ts := mustStart(t, func(c *app.Config) {
		c.Tracing = telemetry.Config{Exporter: exp, Service: "test"}
		c.Workers = 2
	})
	if err := ts.App.StartWorkers(); err != nil {
		t.Fatal(err)
	}
	ids := seedEstate(t, ts, 40, 5)
	c := ts.login(t, "admin@example.com", adminPassword)
	d := c.mustGQL(generatePlanMutation, map[string]any{"in": planInput("traced", nil)})
	if p := waitPlan(t, c, dig(d, "generatePlan", "id").(string)); p["status"] != "ready" && p["status"] != "infeasible" {
		t.Fatalf("plan: %v", p)
	}
	var httpSpan, taskSpan, plannerSpan *tracetest.SpanStub
	deadline := time.Now().Add(10 * time.Second)
	for plannerSpan == nil && time.Now().Before(deadline) {
		spans := exp.GetSpans()
		for i := range spans {
			s := &spans[i]
			switch s.Name {
			case "task plan:generate":
				taskSpan = s
			case "planner.generate":
				plannerSpan = s
			}
		}
		if taskSpan != nil {
			for i := range spans {
				if spans[i].SpanContext.SpanID() == taskSpan.Parent.SpanID() {
					httpSpan = &spans[i]
				}
			}
		}
		time.Sleep(20 * time.Millisecond) // polling the exporter with a deadline
	}
	if taskSpan == nil || plannerSpan == nil || httpSpan == nil {
		t.Fatalf("spans: http %v, task %v, planner %v (of %d)", httpSpan != nil, taskSpan != nil, plannerSpan != nil, len(exp.GetSpans()))
	}
	if httpSpan.Name != "POST /graphql" || taskSpan.SpanContext.TraceID() != httpSpan.SpanContext.TraceID() ||
		plannerSpan.Parent.SpanID() != taskSpan.SpanContext.SpanID() {
		t.Fatalf("not one trace: http %s %s, task parent %s, planner parent %s", httpSpan.Name, httpSpan.SpanContext.TraceID(), taskSpan.Parent.SpanID(), plannerSpan.Parent.SpanID())
	}
	var ferryTrace string
	for _, a := range httpSpan.Attributes {
		if a.Key == "ferry.trace_id" {
			ferryTrace = a.Value.AsString()
		}
	}
	for _, a := range taskSpan.Attributes {
		if a.Key == "ferry.trace_id" && a.Value.AsString() != ferryTrace {
			t.Fatalf("the task's Ferry trace id %s is not the request's %s", a.Value.AsString(), ferryTrace)
		}
	}

	// A migration: the request that starts it, its step's task and the
	// step's phases (the engine's work) are one trace as well.
	var hostID int
	for _, id := range ids {
		hostID = id
		break
	}
	c.mustGQL(`mutation($h: [ID!]!) { startMigration(hostIds: $h) { id } }`, map[string]any{"h": []string{strconv.Itoa(hostID)}})
	var phaseSpan, stepSpan, startSpan *tracetest.SpanStub
	deadline = time.Now().Add(30 * time.Second)
	for startSpan == nil && time.Now().Before(deadline) {
		spans := exp.GetSpans()
		byID := map[string]*tracetest.SpanStub{}
		for i := range spans {
			byID[spans[i].SpanContext.SpanID().String()] = &spans[i]
		}
		for i := range spans {
			if strings.HasPrefix(spans[i].Name, "migration.prepare.") {
				phaseSpan = &spans[i]
				if stepSpan = byID[phaseSpan.Parent.SpanID().String()]; stepSpan != nil {
					startSpan = byID[stepSpan.Parent.SpanID().String()]
				}
				break
			}
		}
		time.Sleep(20 * time.Millisecond) // polling the exporter with a deadline
	}
	if startSpan == nil {
		t.Fatalf("migration spans: phase %v, step task %v, request none (of %d)", phaseSpan != nil, stepSpan != nil, len(exp.GetSpans()))
	}
	if stepSpan.Name != "task migration:prepare" || startSpan.Name != "POST /graphql" || phaseSpan.SpanContext.TraceID() != startSpan.SpanContext.TraceID() {
		t.Fatalf("migration trace: %s ← %s ← %s", phaseSpan.Name, stepSpan.Name, startSpan.Name)
	}

	req, _ := http.NewRequest("GET", ts.URL+"/metrics", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`ferry_plans{status="`, `ferry_migrations{state="syncing"} 0`, `ferry_import_runs{status="succeeded"}`,
		`ferry_task_duration_seconds_count{result="ok",type="plan:generate"} 1`, `ferry_migration_pass_duration_seconds_count 0`,
		`ferry_http_request_duration_seconds`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for i, line := range strings.Split(strings.TrimSpace(ts.Logs.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("log line %d is not JSON: %s", i+1, line)
		}
	}
	if !strings.Contains(ts.Logs.String(), `"component":"asynq"`) {
		t.Fatalf("asynq's own lines are not in the log")
	}
}
