package importer

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ferry-migrate/ferry/discovery"
)

// TestSpooledImportMatchesMemory: a spooled import yields, read back from
// its files, exactly the rows an in-memory one holds — a file refused
// half-way is cut off the spool too — and Close removes the files.
func TestSpooledImportMatchesMemory(t *testing.T) {
	dir := t.TempDir()
	files := []string{"testdata/hosts.csv", "testdata/connections.csv", "testdata/web01.ss.txt", "testdata/estate.json",
		"testdata/rvtools/RVTools_tabvInfo.csv", "testdata/rvtools/RVTools_tabvDisk.csv", "testdata/rvtools/RVTools_tabvNetwork.csv"}
	over := filepath.Join(dir, "over.csv")
	var b strings.Builder
	b.WriteString("id,name,ip\n")
	for range 30 {
		b.WriteString("h9,late,10.9.9.9\n")
	}
	os.WriteFile(over, []byte(b.String()), 0o600)
	limits := Limits{MaxRows: 25}
	run := func(im *Importer) Result {
		im.batch = "b" // refs carry a random batch id
		for _, p := range append(files[:2:2], over) {
			if err := im.AddFile(p); err != nil && !strings.Contains(p, "over") {
				t.Fatal(err)
			}
		}
		for _, p := range files[2:] {
			if err := im.AddFile(p); err != nil {
				t.Fatal(err)
			}
		}
		return im.Finish()
	}
	mem := run(New(limits, clock))
	im, err := NewSpooled(limits, clock, dir)
	if err != nil {
		t.Fatal(err)
	}
	sp := run(im)
	if im.Err() != nil || sp.Spool == nil || len(sp.Records) != 0 {
		t.Fatalf("spooled result: err %v, spool %v, %d records in memory", im.Err(), sp.Spool, len(sp.Records))
	}
	var recs []discovery.Record
	var conns []discovery.ObservedConnection
	for {
		r, err := sp.Spool.NextRecord()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	for {
		c, err := sp.Spool.NextConnection()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	opts := cmp.Options{cmpopts.EquateEmpty()}
	if d := cmp.Diff(mem.Records, recs, opts); d != "" || len(recs) == 0 {
		t.Fatalf("records (-memory +spool):\n%s", d)
	}
	if d := cmp.Diff(mem.Connections, conns, opts); d != "" || len(conns) == 0 {
		t.Fatalf("connections (-memory +spool):\n%s", d)
	}
	if d := cmp.Diff(mem.Errors, sp.Errors); d != "" {
		t.Fatalf("errors (-memory +spool):\n%s", d)
	}
	for _, r := range recs {
		if r.Name == "late" {
			t.Fatalf("a row of the refused file is in the spool")
		}
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "ferry-import-*")); len(left) != 0 {
		t.Fatalf("spool files left: %v", left)
	}
}
