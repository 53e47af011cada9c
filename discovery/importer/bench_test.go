package importer

import (
	"path/filepath"
	"testing"

	"github.com/ferry-migrate/ferry/discovery"
)

const benchVMs = 20000

func benchImport(b *testing.B, paths []string) {
	b.ReportAllocs()
	for b.Loop() {
		im := New(Limits{}, nil)
		for _, p := range paths {
			if err := im.AddFile(p); err != nil {
				b.Fatal(err)
			}
		}
		res := im.Finish()
		if len(res.Records) != benchVMs || len(res.Errors) != 0 {
			b.Fatalf("%d records, %d errors", len(res.Records), len(res.Errors))
		}
		n := discovery.Normalise(res.Records, res.Connections)
		if len(n.Hosts) != benchVMs {
			b.Fatalf("%d hosts after normalising", len(n.Hosts))
		}
	}
}

// BenchmarkRVToolsCSV20k imports and normalises a 20,000-VM export given as
// the four RVTools CSV sheets.
func BenchmarkRVToolsCSV20k(b *testing.B) {
	paths, err := GenerateRVToolsCSV(b.TempDir(), benchVMs, 1)
	if err != nil {
		b.Fatal(err)
	}
	benchImport(b, paths)
}

// BenchmarkRVToolsXLSX20k does the same from one .xlsx workbook.
func BenchmarkRVToolsXLSX20k(b *testing.B) {
	p := filepath.Join(b.TempDir(), "rvtools.xlsx")
	if err := GenerateRVToolsXLSX(p, benchVMs, 1); err != nil {
		b.Fatal(err)
	}
	benchImport(b, []string{p})
}
