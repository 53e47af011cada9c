package planner_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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

// BenchmarkQuality compares the dependency weight crossing waves in Ferry's
// plan with the naive baseline (topological generations poured in order)
// and with Ferry's greedy pass alone (improvement_passes: -1), on generated
// estates with planted applications. Run with -benchtime 1x; the numbers
// are the point, not the time.
func BenchmarkQuality(b *testing.B) {
	for _, n := range []int{1000, 5000, 20000} {
		for _, cap := range []int{25, 100} {
			for _, seed := range []uint64{1, 2, 3} {
				b.Run(fmt.Sprintf("hosts=%d/cap=%d/seed=%d", n, cap, seed), func(b *testing.B) {
					e, _ := estate.Generate(estate.Options{Hosts: n, Seed: seed})
					c := planner.Constraints{Start: "2026-12-07", Bandwidth: 1e9, MaxHostsPerWave: cap}
					var p, greedy *planner.Plan
					for b.Loop() {
						p, _ = planner.Build(e, planner.Rules{}, c)
					}
					g := c
					g.ImprovementPasses = -1
					greedy, _ = planner.Build(e, planner.Rules{}, g)
					base, _ := planner.Baseline(e, planner.Rules{}, c)
					b.ReportMetric(float64(base.CrossingWeight), "baseline_cross")
					b.ReportMetric(float64(greedy.Metrics.CrossingWeight), "greedy_cross")
					b.ReportMetric(float64(p.Metrics.CrossingWeight), "ferry_cross")
					b.ReportMetric(float64(p.Metrics.TotalWeight), "total_weight")
					b.ReportMetric(float64(base.Waves), "baseline_waves")
					b.ReportMetric(float64(p.Metrics.Waves), "ferry_waves")
				})
			}
		}
	}
}

// BenchmarkEndToEnd is what `ferry plan` does: decode estate JSON, plan,
// encode the plan JSON.
func BenchmarkEndToEnd(b *testing.B) {
	for _, n := range []int{20000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			e, _ := estate.Generate(estate.Options{Hosts: n, Seed: 1})
			data, _ := json.Marshal(e)
			cfg := benchConstraints(b)
			for b.Loop() {
				e, err := planner.ReadEstate(bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				if err := planner.ValidateEstate(e); err != nil {
					b.Fatal(err)
				}
				p, err := planner.Build(e, cfg.Rules, cfg.Constraints)
				if err != nil {
					b.Fatal(err)
				}
				enc := json.NewEncoder(io.Discard)
				enc.SetIndent("", " ")
				if err := enc.Encode(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
