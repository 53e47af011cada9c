package app_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/assessment"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/internal/reporting"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/report"
)

// BenchmarkReport20000 writes the workbook and the HTML report of 20,000
// hosts and 100,000 connections and reports the peak Go heap while writing
// (sampled every 5 ms): rows stream, so it stays far below the estate's size.
//
//	go test -run '^$' -bench BenchmarkReport20000 -benchtime 1x ./internal/app/
func BenchmarkReport20000(b *testing.B) {
	ts := mustStart(b)
	db := ts.App.DB.Client
	ctx := viewer.TenantContext(viewer.SystemContext(context.Background()), ts.App.DB.Client.Tenant.Query().FirstIDX(viewer.SystemContext(context.Background())))
	var ids []int
	for i := 0; i < 20000; i += 1000 {
		hs := make([]*ent.HostCreate, 0, 1000)
		for j := i; j < i+1000; j++ {
			hs = append(hs, db.Host.Create().SetName(fmt.Sprintf("bench-%05d", j)).SetOs("CentOS Linux 7.9").SetCpus(4).SetMemoryMib(8192).
				SetDiskProvisionedBytes(100<<30).SetBootMode(host.BootModeBios).SetCPUP95(float64(j%50)))
		}
		created := db.Host.CreateBulk(hs...).SaveX(ctx)
		as := make([]*ent.AssessmentCreate, 0, 1000)
		for _, h := range created {
			ids = append(ids, h.ID)
			as = append(as, db.Assessment.Create().SetHostID(h.ID).SetTarget("alibaba").SetRegion("cn-hangzhou").SetReadiness(assessment.ReadinessReadyWithActions).
				SetMonthlyCostAsIs(111.5).SetMonthlyCostRightSized(55.8).SetInstanceType("ecs.g6.large"))
		}
		db.Assessment.CreateBulk(as...).ExecX(ctx)
	}
	for i := 0; i < 100000; i += 2000 {
		cs := make([]*ent.ConnectionCreate, 0, 2000)
		for j := i; j < i+2000; j++ {
			cs = append(cs, db.Connection.Create().SetSrcHostID(ids[j%len(ids)]).SetDstHostID(ids[(j*7+1)%len(ids)]).SetPort(1000+j%5000).SetCount(int64(j)))
		}
		db.Connection.CreateBulk(cs...).ExecX(ctx)
	}
	a := report.DefaultAssumptions()
	for _, kind := range []string{"xlsx", "html"} {
		b.Run(kind, func(b *testing.B) {
			for range b.N {
				src, err := reporting.New(ctx, db, "alibaba", 0, &a, time.Now)
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				var base runtime.MemStats
				runtime.ReadMemStats(&base)
				var peak atomic.Uint64
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					var m runtime.MemStats
					for {
						select {
						case <-stop:
							return
						case <-time.After(5 * time.Millisecond):
							runtime.ReadMemStats(&m)
							if m.HeapInuse > peak.Load() {
								peak.Store(m.HeapInuse)
							}
						}
					}
				}()
				start := time.Now()
				if kind == "xlsx" {
					err = report.WriteXLSX(ctx, io.Discard, src, "en")
				} else {
					err = report.WriteHTML(ctx, io.Discard, src, "en")
				}
				close(stop)
				<-done
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(peak.Load()-min(peak.Load(), base.HeapInuse))/(1<<20), "peak_heap_over_base_MiB")
				b.ReportMetric(time.Since(start).Seconds(), "s/report")
			}
		})
	}
}
