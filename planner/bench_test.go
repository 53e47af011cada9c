package planner_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/ferry-migrate/ferry/planner"
	"github.com/ferry-migrate/ferry/planner/estate"
)

func benchConstraints(tb testing.TB) planner.Config {
	f, err := os.Open("testdata/plan.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	cfg, err := planner.ReadConfig(f)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Rules = planner.Rules{}
	cfg.MaxBytesPerWave = 0
	return *cfg
}

// BenchmarkBuild plans generated estates; it reports hosts, connections,
// waves and the heap in use after planning.
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{2000, 20000, 100000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			e, _ := estate.Generate(estate.Options{Hosts: n, Seed: 1})
			cfg := benchConstraints(b)
			var p *planner.Plan
			for b.Loop() {
				var err error
				if p, err = planner.Build(e, cfg.Rules, cfg.Constraints); err != nil {
					b.Fatal(err)
				}
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(len(e.Connections)), "conns")
			b.ReportMetric(float64(p.Metrics.Waves), "waves")
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heapMiB")
		})
	}
}

// BenchmarkReadEstate decodes estate JSON, the other half of `ferry plan`.
func BenchmarkReadEstate(b *testing.B) {
	e, _ := estate.Generate(estate.Options{Hosts: 20000, Seed: 1})
	data, err := json.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := planner.ReadEstate(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
