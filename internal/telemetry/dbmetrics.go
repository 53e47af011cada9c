package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/importrun"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/plan"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// DBCollector reads the figures whose truth is the database — migrations
// by state, bytes, lag and pass duration, plans and imports by status —
// with a handful of aggregate queries per scrape, so every replica reports
// the same numbers.
type DBCollector interface{ prometheus.Collector }

type dbCollector struct {
	c   *ent.Client
	log func(msg string, args ...any)

	migrations, plans, imports *prometheus.Desc
	bytesDone, bytesTotal      *prometheus.Desc
	lagMax, passSeconds        *prometheus.Desc
	scrapeErrors               prometheus.Counter
}

// NewDBCollector returns the collector over c.
func NewDBCollector(c *ent.Client, logError func(msg string, args ...any)) DBCollector {
	return &dbCollector{c: c, log: logError,
		migrations:   prometheus.NewDesc("ferry_migrations", "Migrations by state.", []string{"state"}, nil),
		plans:        prometheus.NewDesc("ferry_plans", "Plans by status.", []string{"status"}, nil),
		imports:      prometheus.NewDesc("ferry_import_runs", "Import runs by status.", []string{"status"}, nil),
		bytesDone:    prometheus.NewDesc("ferry_migration_bytes_done", "Bytes replicated by the current passes of all migrations.", nil, nil),
		bytesTotal:   prometheus.NewDesc("ferry_migration_bytes_total", "Bytes to replicate in the current passes of all migrations.", nil, nil),
		lagMax:       prometheus.NewDesc("ferry_migration_lag_seconds_max", "The largest replication lag of a migration in flight.", nil, nil),
		passSeconds:  prometheus.NewDesc("ferry_migration_pass_duration_seconds", "Duration of each migration's last completed sync pass.", nil, nil),
		scrapeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_metrics_scrape_errors_total", Help: "Database reads for metrics that failed."}),
	}
}

func (d *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{d.migrations, d.plans, d.imports, d.bytesDone, d.bytesTotal, d.lagMax, d.passSeconds} {
		ch <- x
	}
	d.scrapeErrors.Describe(ch)
}

func (d *dbCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(viewer.SystemContext(context.Background()), 5*time.Second)
	defer cancel()
	fail := func(what string, err error) {
		d.scrapeErrors.Inc()
		d.log("metrics: database read failed", "what", what, "error", err)
	}
	var byState []struct {
		State string `json:"state"`
		Count int    `json:"count"`
	}
	if err := d.c.Migration.Query().GroupBy(migration.FieldState).Aggregate(ent.Count()).Scan(ctx, &byState); err != nil {
		fail("migrations", err)
	}
	seen := map[string]int{}
	for _, r := range byState {
		seen[r.State] = r.Count
	}
	for _, st := range ferry.MigrationStates() {
		ch <- prometheus.MustNewConstMetric(d.migrations, prometheus.GaugeValue, float64(seen[string(st)]), string(st))
	}
	var sums []struct {
		Done  int64 `json:"done"`
		Total int64 `json:"total"`
		Lag   int64 `json:"lag"`
	}
	if err := d.c.Migration.Query().Where(migration.StateNotIn(ferry.MigrationCutOver, ferry.MigrationRolledBack, ferry.MigrationFailed)).
		Aggregate(ent.As(ent.Sum(migration.FieldBytesDone), "done"), ent.As(ent.Sum(migration.FieldBytesTotal), "total"),
			ent.As(ent.Max(migration.FieldLagSeconds), "lag")).Scan(ctx, &sums); err != nil {
		fail("migration totals", err)
	}
	var s struct{ Done, Total, Lag int64 }
	if len(sums) == 1 {
		s.Done, s.Total, s.Lag = sums[0].Done, sums[0].Total, sums[0].Lag
	}
	ch <- prometheus.MustNewConstMetric(d.bytesDone, prometheus.GaugeValue, float64(s.Done))
	ch <- prometheus.MustNewConstMetric(d.bytesTotal, prometheus.GaugeValue, float64(s.Total))
	ch <- prometheus.MustNewConstMetric(d.lagMax, prometheus.GaugeValue, float64(s.Lag))
	// A pass's duration: from its request to the sync that completed it.
	passes, err := d.c.Migration.Query().Where(migration.SyncRequestedAtNotNil(), migration.LastSyncAtNotNil()).
		Select(migration.FieldSyncRequestedAt, migration.FieldLastSyncAt).All(ctx)
	if err != nil {
		fail("migration passes", err)
	}
	var n uint64
	var sum float64
	buckets := map[float64]uint64{60: 0, 300: 0, 900: 0, 3600: 0, 4 * 3600: 0, 24 * 3600: 0}
	for _, p := range passes {
		if p.LastSyncAt.Before(*p.SyncRequestedAt) {
			continue // a pass still running
		}
		sec := p.LastSyncAt.Sub(*p.SyncRequestedAt).Seconds()
		n++
		sum += sec
		for b := range buckets {
			if sec <= b {
				buckets[b]++
			}
		}
	}
	ch <- prometheus.MustNewConstHistogram(d.passSeconds, n, sum, buckets)
	var byStatus []struct {
		Status string `json:"status"`
		Count  int    `json:"count"`
	}
	if err := d.c.Plan.Query().GroupBy(plan.FieldStatus).Aggregate(ent.Count()).Scan(ctx, &byStatus); err != nil {
		fail("plans", err)
	}
	seen = map[string]int{}
	for _, r := range byStatus {
		seen[r.Status] = r.Count
	}
	for _, st := range []plan.Status{plan.StatusDraft, plan.StatusQueued, plan.StatusRunning, plan.StatusReady, plan.StatusInfeasible, plan.StatusFailed} {
		ch <- prometheus.MustNewConstMetric(d.plans, prometheus.GaugeValue, float64(seen[string(st)]), string(st))
	}
	byStatus = nil
	if err := d.c.ImportRun.Query().GroupBy(importrun.FieldStatus).Aggregate(ent.Count()).Scan(ctx, &byStatus); err != nil {
		fail("imports", err)
	}
	seen = map[string]int{}
	for _, r := range byStatus {
		seen[r.Status] = r.Count
	}
	for _, st := range []importrun.Status{importrun.StatusRunning, importrun.StatusSucceeded, importrun.StatusPartial, importrun.StatusFailed} {
		ch <- prometheus.MustNewConstMetric(d.imports, prometheus.GaugeValue, float64(seen[string(st)]), string(st))
	}
	d.scrapeErrors.Collect(ch)
}
