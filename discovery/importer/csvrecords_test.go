package importer

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMalformedRowsReported: every malformed row of a hosts CSV is
// reported with its line and column, and every good row — including all
// those after an unterminated quote — is kept, so good + reported = total.
func TestMalformedRowsReported(t *testing.T) {
	in := strings.Join([]string{
		"id,name,ip,os",
		"h1,web01,10.0.0.1,Linux",
		`h2,"web02,10.0.0.2,Linux`, // unterminated: used to swallow every row below
		"h3,web03,10.0.0.3,Linux",
		`h4,we"b04,10.0.0.4,Linux`,                    // bare quote
		`h5,"web05"x,10.0.0.5,Linux`,                  // text after the closing quote
		"h6,web\xff06,10.0.0.6,Linux",                 // not UTF-8
		"h7,web07,10.0.0.7,Lin\x00ux",                 // NUL
		`h8,"web 08, the ""big"" one",10.0.0.8,Linux`, // quoted commas and quotes
		`h8b,web08b,10.0.0.18,"Linux`,                 // a line break in a template cell …
		`Debian"`,                                     // … is refused: both lines are reported
		"",
		"h9,web09,10.0.0.9,Linux",
		`h10,"web10,10.0.0.10,Linux`, // unterminated at the end of the file
	}, "\n") + "\n"
	im := New(Limits{}, clock)
	if err := im.Add("hosts.csv", strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	res := im.Finish()
	var names []string
	for _, r := range res.Records {
		names = append(names, r.Name)
	}
	if d := cmp.Diff([]string{"web01", "web03", `web 08, the "big" one`, "web09"}, names); d != "" {
		t.Fatalf("kept rows (-want +got):\n%s", d)
	}
	type rowErr struct {
		Row    int
		Column string
		Reason string
	}
	var got []rowErr
	for _, e := range res.Errors {
		got = append(got, rowErr{e.Row, e.Column, e.Reason})
	}
	want := []rowErr{
		{3, "", "malformed CSV: " + errUnterminated},
		{5, "name", "malformed CSV: " + errBareQuote},
		{6, "name", "malformed CSV: " + errAfterQuote},
		{7, "name", "the cell is not valid UTF-8 text (save the file as UTF-8); the row is not imported"},
		{8, "os", "the cell holds a NUL byte; the row is not imported"},
		{10, "", "malformed CSV: " + errUnterminated},
		{11, "id", "malformed CSV: " + errBareQuote},
		{14, "", "malformed CSV: " + errUnterminated},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("errors (-want +got):\n%s", d)
	}
	s := res.Files[0]
	if s.Rows != 12 || s.Accepted != 4 || s.Rejected != 8 {
		t.Fatalf("summary %+v; want 12 rows = 4 accepted + 8 rejected", s)
	}
}

// TestMultiLineCells: an RVTools sheet may hold notes with line breaks in
// a quoted cell; a stray quote closed by another one many rows later is
// no such cell (it spans whole rows): both rows are reported, the rows
// between kept.
func TestMultiLineCells(t *testing.T) {
	var b strings.Builder
	b.WriteString("VM,CPUs,Memory,Annotation\n")
	b.WriteString("vm00,2,2048,\"backup nightly,\nowner: team a\"\n")
	b.WriteString("vm01,2,2048,\"opens here\n")
	for i := 2; i <= 50; i++ {
		fmt.Fprintf(&b, "vm%02d,2,2048,plain\n", i)
	}
	b.WriteString("vm51,2,2048,closes\"here\n")
	for _, tc := range []struct{ name, data string }{{"same count", b.String()}, {"other count", strings.Replace(b.String(), "vm51,2,2048,", "vm51,2,", 1)}} {
		t.Run(tc.name, func(t *testing.T) {
			im := New(Limits{}, clock)
			if err := im.Add("RVTools_tabvInfo.csv", strings.NewReader(tc.data)); err != nil {
				t.Fatal(err)
			}
			res := im.Finish()
			if len(res.Records) != 50 || len(res.Errors) != 2 || res.Errors[0].Row != 4 || res.Errors[1].Row != 54 {
				t.Fatalf("%d records, errors %+v", len(res.Records), res.Errors)
			}
			if s := res.Files[0]; s.Rows != 52 || s.Accepted != 50 || s.Rejected != 2 {
				t.Fatalf("summary %+v", s)
			}
		})
	}
}

// TestBadTextInEveryFormat: invalid UTF-8 and NUL bytes are refused row by
// row in every format, with file, row and column.
func TestBadTextInEveryFormat(t *testing.T) {
	for _, tc := range []struct {
		file, data string
		row        int
		column     string
	}{
		{"RVTools_tabvInfo.csv", "VM,CPUs,Memory\nvm1,2,2048\nvm\xfe2,2,2048\n", 3, "VM"},
		{"estate.json", `{"hosts":[{"id":"a","name":"a"},{"id":"b","name":"b\u0000x"}]}`, 2, "hosts.name"},
		{"estate.json", "{\"hosts\":[{\"id\":\"a\",\"name\":\"a\"},{\"id\":\"b\",\"name\":\"b\",\"owner\":\"t\xffeam\"}]}", 2, "hosts.owner"},
		{"web01.ss.txt", "ESTAB 0 0 10.0.0.5:22 10.0.0.9:51234 users:((\"sshd\",pid=5,fd=3))\nESTAB 0 0 10.0.0.5:22 10.0.0.8:51234 users:((\"ss\xffhd\",pid=5,fd=3))\n", 2, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			im := New(Limits{}, clock)
			if err := im.Add(tc.file, strings.NewReader(tc.data)); err != nil {
				t.Fatal(err)
			}
			res := im.Finish()
			if len(res.Errors) != 1 || res.Errors[0].File != tc.file || res.Errors[0].Row != tc.row || res.Errors[0].Column != tc.column {
				t.Fatalf("errors %+v; want one at row %d, column %q", res.Errors, tc.row, tc.column)
			}
			if s := res.Files[0]; s.Rejected != 1 || s.Accepted+s.Rejected+s.Skipped != s.Rows {
				t.Fatalf("summary %+v", s)
			}
			checkClean(t, res)
		})
	}
	// An xlsx cell can carry a NUL as a character reference.
	sheet := `<worksheet><sheetData><row r="1"><c t="s"><v>0</v></c></row><row r="2"><c t="inlineStr"><is><t>ok</t></is></c></row>` +
		`<row r="3"><c t="inlineStr"><is><t>bad&#0;vm</t></is></c></row></sheetData></worksheet>`
	im := New(Limits{}, clock)
	if err := im.Add("nul.xlsx", bytes.NewReader(buildXLSX(t, testSST, sheet))); err != nil {
		t.Fatal(err)
	}
	res := im.Finish()
	if len(res.Records) != 1 || len(res.Errors) != 1 || res.Errors[0].Row != 3 || res.Errors[0].Column != "VM" {
		t.Fatalf("xlsx: %d records, errors %+v", len(res.Records), res.Errors)
	}
	// UTF-16 is refused whole, saying what to do.
	if err := New(Limits{}, clock).Add("hosts.csv", strings.NewReader("\xff\xfei\x00d\x00")); err == nil || !strings.Contains(err.Error(), "UTF-16") {
		t.Fatalf("UTF-16 file: %v", err)
	}
}

// TestFormulaRoundTrip: a cell Ferry's exports escaped ('=…) is imported
// as it was; stored as text either way.
func TestFormulaRoundTrip(t *testing.T) {
	im := New(Limits{}, clock)
	in := "id,name,owner,application\nh1,web01,'=cmd|' /C calc'!A0,\"=HYPERLINK(\"\"x\"\")\"\n"
	if err := im.Add("hosts.csv", strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	res := im.Finish()
	if len(res.Records) != 1 || res.Records[0].Owner != "=cmd|' /C calc'!A0" || res.Records[0].Application != `=HYPERLINK("x")` {
		t.Fatalf("records %+v errors %+v", res.Records, res.Errors)
	}
}

// checkClean fails when anything stored is not clean text.
func checkClean(t *testing.T, res Result) {
	t.Helper()
	bad := func(what, s string) {
		if b := badText(s); b != "" {
			t.Fatalf("%s %q %s", what, s, b)
		}
	}
	for _, r := range res.Records {
		f := r.HostFacts
		for _, s := range []string{f.Name, f.FQDN, f.BIOSUUID, f.InstanceUUID, f.OS, f.OSFamily, f.Arch, f.BootMode, f.PowerState,
			f.ESXHost, f.Cluster, f.Datacenter, f.Environment, f.Criticality, f.Application, f.Owner, f.Virtualization} {
			bad("record field", s)
		}
		for _, l := range [][]string{f.IPs, f.MACs, f.Networks, f.Tags, f.Software, r.Refs} {
			for _, s := range l {
				bad("record list entry", s)
			}
		}
		for _, d := range f.Disks {
			bad("disk name", d.Name)
		}
	}
	for _, c := range res.Connections {
		for _, s := range []string{c.Process, c.Src.Name, c.Src.Address, c.Src.Ref, c.Dst.Name, c.Dst.Address, c.Dst.Ref} {
			bad("connection field", s)
		}
	}
}

// FuzzCSVRecords holds the record reader to encoding/csv: wherever the
// standard reader (strict quoting) reads a file whole without a line
// break inside a cell, this one reads the same records; and whatever the
// input, it ends without looping and accounts for every line.
func FuzzCSVRecords(f *testing.F) {
	for _, s := range []string{
		"a,b,c\n1,2,3\n", "a,\"b,c\"\n\"x\"\"y\",z\n", "a,b\r\n1,2\r\n", "a,b\n\n1,2", "a\n\"open\n1\n2\n", "\"a\nb\",c\nd,e\n",
		"a,b\nx\"y,z\n", "a,b,\n,,\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ours [][]string
		r := newCSVRecords(bytes.NewReader(data))
		r.multiLine = len(data) > 0 && data[0]&1 == 1
		for n := 0; ; n++ {
			if n > len(data)+1 {
				t.Fatalf("more records than bytes: looping on %q", data)
			}
			rec, _, err := r.next()
			if err == io.EOF {
				break
			}
			var re *recordError
			if errors.As(err, &re) {
				ours = append(ours, nil)
				continue
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			ours = append(ours, append([]string(nil), rec...))
		}
		std := csv.NewReader(bytes.NewReader(data))
		std.FieldsPerRecord = -1
		want, err := std.ReadAll()
		if err != nil {
			return
		}
		for _, rec := range want {
			for _, c := range rec {
				if strings.ContainsAny(c, "\r\n") {
					return // multi-line cells are held to the header's cell count here; there is none in this comparison
				}
			}
		}
		if d := cmp.Diff(want, ours); d != "" && !(len(want) == 0 && len(ours) == 0) {
			t.Fatalf("records differ from encoding/csv on %q (-want +got):\n%s", data, d)
		}
	})
}
