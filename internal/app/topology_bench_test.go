package app_test

import (
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/ent/plan"
	"github.com/ferry-migrate/ferry/jobs"
)

// BenchmarkTopology measures Query.topology through the real handler at
// 20,000 hosts (about 200,000 connections; BENCH_TOPOLOGY_HOSTS overrides)
// with a plan of the estate: the application level as the screen asks for
// it (500 nodes, 3,000 edges) and a drill-down into the largest
// application. It reports the statements one request sends.
func BenchmarkTopology(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("BENCH_TOPOLOGY_HOSTS")); err == nil && v > 0 {
		n = v
	}
	ts := mustStart(b)
	seedEstate(b, ts, n, 1)
	ctx, tid := defaultTenant(b, ts)
	p := ts.App.DB.Client.Plan.Create().SetName("bench").SetConstraints(benchPlanDoc).SetStatus(plan.StatusQueued).SaveX(ctx)
	task, _, err := jobs.NewGeneratePlanTask(tid, p.ID)
	if err != nil {
		b.Fatal(err)
	}
	h := &jobs.Planning{Client: ts.App.DB.Client, Now: time.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := h.GeneratePlan(ctx, task); err != nil {
		b.Fatal(err)
	}
	c := ts.login(b, "admin@example.com", adminPassword)
	vars := map[string]any{"first": 500, "e": 3000}
	d := c.mustGQL(topologyQuery, vars)
	var focus string
	best := 0.0
	for _, x := range dig(d, "topology", "nodes").([]any) {
		m := x.(map[string]any)
		if m["kind"] == "application" && m["hosts"].(float64) > best {
			focus, best = m["key"].(string), m["hosts"].(float64)
		}
	}
	b.Logf("%v hosts, %v nodes, %v edges, %v cycles", dig(d, "topology", "hosts"), dig(d, "topology", "totalNodes"), dig(d, "topology", "totalEdges"), dig(d, "topology", "cycleCount"))
	for _, bc := range []struct {
		name string
		vars map[string]any
	}{{"applications", vars}, {"drill-down", map[string]any{"f": focus, "first": 500, "e": 3000}}} {
		b.Run(bc.name, func(b *testing.B) {
			before := ts.SQL.n.Load()
			for i := 0; i < b.N; i++ {
				c.mustGQL(topologyQuery, bc.vars)
			}
			b.ReportMetric(float64(ts.SQL.n.Load()-before)/float64(b.N), "statements/op")
		})
	}
}
