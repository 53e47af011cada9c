package app_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/discovery/importer"
)

// BenchmarkUploadRVTools uploads a generated RVTools export of
// FERRY_BENCH_VMS VMs (default 20,000) through POST /api/v1/imports into an
// empty tenant, then again (every VM now an update): parsing, merging and
// storing, end to end over loopback.
func BenchmarkUploadRVTools(b *testing.B) {
	vms := envInt("FERRY_BENCH_VMS", 20000)
	path := filepath.Join(b.TempDir(), "rvtools.xlsx")
	if err := importer.GenerateRVToolsXLSX(path, vms, 1); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	ts := mustStart(b)
	admin := ts.login(b, "admin@example.com", adminPassword)
	b.ResetTimer()
	for range b.N {
		for _, phase := range []string{"create", "update"} {
			start := time.Now()
			status, body := upload(b, admin, "rvtools.xlsx", path)
			if status != 200 {
				b.Fatalf("%s: %d %s", phase, status, body)
			}
			b.ReportMetric(time.Since(start).Seconds(), phase+"-s")
		}
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "xlsx-MiB")
}
