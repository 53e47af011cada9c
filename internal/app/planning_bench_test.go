package app_test

import (
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/ent/plan"
	"github.com/ferry-migrate/ferry/internal/planning"
	"github.com/ferry-migrate/ferry/jobs"
)

// benchPlanDoc is scripts/bench-planner.sh's plan.yaml, so the server and
// the CLI numbers compare.
var benchPlanDoc = map[string]any{
	"start": "2026-12-07", "timezone": "Asia/Shanghai", "max_hosts_per_wave": 100, "bandwidth": "1Gbps",
	"compression_ratio": 0.6, "parallel_migrations": 20, "pilot": map[string]any{"hosts": 10},
	"transfer_windows": []any{
		map[string]any{"when": "Mon-Thu 19:00-07:00"}, map[string]any{"when": "Fri 19:00-24:00"},
		map[string]any{"when": "Sat-Sun 00:00-24:00"}, map[string]any{"when": "Mon 00:00-07:00"},
	},
	"cutover_windows": []string{"Sat 22:00-04:00", "Wed 23:00-03:00"},
}

// peakRSS returns the process's peak resident set (VmHWM) in MiB.
func peakRSS() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkPlanServer measures plan generation end to end through the job
// handler: load the estate from SQLite, plan, write waves and members in one
// transaction. BENCH_PLAN_HOSTS sets the estate size (default 20,000 hosts,
// about 195,000 connections). Peak RSS is reset before the job runs
// (/proc/self/clear_refs), so it is the job's, not the seeding's.
func BenchmarkPlanServer(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("BENCH_PLAN_HOSTS")); err == nil && v > 0 {
		n = v
	}
	ts := mustStart(b)
	t0 := time.Now()
	seedEstate(b, ts, n, 1)
	ctx, tid := defaultTenant(b, ts)
	conns := ts.App.DB.Client.Connection.Query().CountX(ctx)
	b.Logf("seeded %d hosts, %d connections in %.1fs", n, conns, time.Since(t0).Seconds())
	t0 = time.Now()
	if _, err := planning.LoadEstate(ctx, ts.App.DB.Client, true); err != nil {
		b.Fatal(err)
	}
	load := time.Since(t0)
	h := &jobs.Planning{Client: ts.App.DB.Client, Now: time.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var total time.Duration
	var rss float64
	b.StopTimer()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := ts.App.DB.Client.Plan.Create().SetName("bench").SetConstraints(benchPlanDoc).SetStatus(plan.StatusQueued).SaveX(ctx)
		task, _, err := jobs.NewGeneratePlanTask(tid, p.ID)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
		b.StartTimer()
		t0 = time.Now()
		err = h.GeneratePlan(ctx, task)
		total += time.Since(t0)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		rss = max(rss, peakRSS())
		got := ts.App.DB.Client.Plan.GetX(ctx, p.ID)
		if got.Status != plan.StatusReady && got.Status != plan.StatusInfeasible {
			b.Fatalf("plan %s: %s", got.Status, got.Error)
		}
		b.Logf("plan %s: %v waves, %v placed", got.Status, got.Metrics["waves"], got.Metrics["placed"])
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/plan")
	b.ReportMetric(load.Seconds(), "s-load")
	b.ReportMetric(rss, "peak-RSS-MiB")
	b.ReportMetric(float64(conns), "connections")
}
