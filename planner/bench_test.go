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

// BenchmarkQualityUnlabelled is TestQualityWithoutLabels at scale (make
// bench): generated estates with every label removed, planned at 100 hosts
// per wave. It reports the adjusted Rand index of the suggestions against
// the planted applications, the share of applications whole in one wave,
// the non-shared crossing weight against the naive baseline's, the shared
// services found of those planted, and the heap after planning.
func BenchmarkQualityUnlabelled(b *testing.B) {
	for _, n := range []int{20000, 100000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			full, planted := estate.Generate(estate.Options{Hosts: n, Seed: 1})
			e := unlabelled(full)
			c := planner.Constraints{Start: "2026-12-07", Bandwidth: 1e9, MaxHostsPerWave: 100}
			var p *planner.Plan
			for b.Loop() {
				var err error
				if p, err = planner.Build(e, planner.Rules{}, c); err != nil {
					b.Fatal(err)
				}
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			suggested := map[string]string{}
			for _, s := range p.Suggestions {
				for _, h := range s.Hosts {
					suggested[h] = s.ID
				}
			}
			truth := make([]string, 0, n)
			pred := make([]string, 0, n)
			for _, h := range e.Hosts {
				tr, ok := planted.App[h.ID]
				if !ok {
					tr = "single:" + h.ID
				}
				pr, ok := suggested[h.ID]
				if !ok {
					pr = "single:" + h.ID
				}
				truth, pred = append(truth, tr), append(pred, pr)
			}
			w := map[string]int{}
			for _, wv := range p.Waves {
				for _, m := range wv.Members {
					w[m.HostID] = wv.Number
				}
			}
			first := map[string]int{}
			split := map[string]bool{}
			for h, a := range planted.App {
				if f, ok := first[a]; ok && f != w[h] {
					split[a] = true
				}
				first[a] = w[h]
			}
			found := map[string]bool{}
			for _, s := range p.SharedServices {
				found[s.HostID] = true
			}
			hit := 0
			for _, h := range planted.SharedApp {
				if found[h] {
					hit++
				}
			}
			base, _ := planner.Baseline(e, planner.Rules{}, c)
			b.ReportMetric(adjustedRand(truth, pred), "ARI")
			b.ReportMetric(float64(len(first)-len(split))/float64(len(first))*100, "%whole")
			b.ReportMetric(float64(p.Metrics.NonSharedCrossingWeight)/float64(max(1, base.NonSharedCrossingWeight)), "cross/baseline")
			b.ReportMetric(float64(hit), "shared_found")
			b.ReportMetric(float64(len(planted.SharedApp)), "shared_planted")
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heapMiB")
		})
	}
}
