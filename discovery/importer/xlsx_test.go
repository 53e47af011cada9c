package importer

import (
	"archive/zip"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// buildXLSX writes the minimum parts of a workbook with one sheet named
// vInfo, so tests can hand-craft what other tools (not excelize) write.
func buildXLSX(t testing.TB, sharedStrings, sheet string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	parts := map[string]string{
		"xl/workbook.xml": `<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" ` +
			`xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="vInfo" sheetId="1" r:id="rId1"/></sheets></workbook>`,
		"xl/_rels/workbook.xml.rels": `<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
			`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>`,
		"xl/sharedStrings.xml":     sharedStrings,
		"xl/worksheets/sheet1.xml": sheet,
	}
	for _, name := range []string{"xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/sharedStrings.xml", "xl/worksheets/sheet1.xml"} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(parts[name]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const testSST = `<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>VM</t></si><si><t>CPUs</t></si>` +
	`<si><r><t>web</t></r><r><t xml:space="preserve">01</t></r><rPh><t>ウェブ</t></rPh></si><si><t>Template</t></si><si><t>A &amp; B</t></si></sst>`

func TestWorkbookReader(t *testing.T) {
	sheet := `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>` +
		`<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>3</v></c><c r="D1" t="inlineStr"><is><t>Cluster</t></is></c></row>` +
		`<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2"><v>4</v></c><c r="C2" t="b"><v>0</v></c><c r="D2" t="s"><v>4</v></c></row>` +
		`<row r="4"><c r="A4" t="inlineStr"><is><t>db01</t></is></c><c r="C4" t="b"><v>1</v></c></row>` +
		`<row r="5"/>` +
		`</sheetData></worksheet>`
	im := New(Limits{}, clock)
	if err := im.Add("hand.xlsx", bytes.NewReader(buildXLSX(t, testSST, sheet))); err != nil {
		t.Fatal(err)
	}
	res := im.Finish()
	var got [][]string
	for _, r := range res.Records {
		got = append(got, []string{r.Name, r.Cluster})
	}
	// Rich-text runs join, phonetic guides drop, entities decode, sparse
	// rows and cells keep their places, and the boolean template row 4 is skipped.
	if d := cmp.Diff([][]string{{"web01", "A & B"}}, got); d != "" {
		t.Fatalf("records (-want +got):\n%s", d)
	}
	if res.Records[0].CPUs != 4 || res.Files[0].Skipped != 1 {
		t.Fatalf("cpus %d, skipped %d", res.Records[0].CPUs, res.Files[0].Skipped)
	}
}

func TestWorkbookZipBomb(t *testing.T) {
	big := `<worksheet><sheetData><row r="1"><c t="inlineStr"><is><t>VM</t></is></c></row>` + string(bytes.Repeat([]byte("<row/>"), 200000)) + `</sheetData></worksheet>`
	data := buildXLSX(t, testSST, big)
	im := New(Limits{MaxBytes: int64(len(data)) + 1000}, clock) // the zip fits; its 1.2 MB of XML does not fit 8x the cap
	if err := im.Add("bomb.xlsx", bytes.NewReader(data)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("want ErrTooLarge for a workbook that inflates past the cap, got %v", err)
	}
}

func FuzzWorkbookSheet(f *testing.F) {
	f.Add(testSST, `<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row><row><c t="s"><v>2</v></c></row></sheetData></worksheet>`)
	f.Add(`<sst><si><t>VM</t></si></sst>`, `<worksheet><sheetData><row r="1"><c r="XFD1" t="s"><v>0</v></c><c r="ZZZZZZZ1"/></row></sheetData></worksheet>`)
	f.Fuzz(func(t *testing.T, sst, sheet string) {
		checkImport(t, "fuzz.xlsx", buildXLSX(t, sst, sheet))
	})
}

func TestUnescapeXML(t *testing.T) {
	for in, want := range map[string]string{
		"A &amp; B":              "A & B",
		"&lt;x&gt; &quot;&apos;": `<x> "'`,
		"caf&#233; &#x4E2D;":     "café 中",
		"&bogus; & &#xZZ;":       "&bogus; & &#xZZ;",
		"&#1114112;":             "&#1114112;",
	} {
		if got := string(unescapeXML(nil, []byte(in))); got != want {
			t.Errorf("unescapeXML(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWorkbookPrefixedAndCommented(t *testing.T) {
	// Some generators prefix the SpreadsheetML namespace and leave comments.
	sheet := `<?xml version="1.0"?><x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><!-- a > b --><x:sheetData>` +
		`<x:row r="1"><x:c r="A1" t="inlineStr"><x:is><x:t>VM</x:t></x:is></x:c><x:c r="C1" t="inlineStr"><x:is><x:t>CPUs</x:t></x:is></x:c></x:row>` +
		`<x:row r="2"><x:c r="A2" t="inlineStr"><x:is><x:t>app&amp;01</x:t></x:is></x:c><x:c r="C2"><x:v>8</x:v></x:c></x:row>` +
		`</x:sheetData></x:worksheet>`
	im := New(Limits{}, clock)
	if err := im.Add("prefixed.xlsx", bytes.NewReader(buildXLSX(t, `<sst/>`, sheet))); err != nil {
		t.Fatal(err)
	}
	res := im.Finish()
	if len(res.Records) != 1 || res.Records[0].Name != "app&01" || res.Records[0].CPUs != 8 {
		t.Fatalf("records %+v errors %+v", res.Records, res.Errors)
	}
}

// withXLSXLimits lowers the workbook limits for one test.
func withXLSXLimits(t *testing.T, set func()) {
	old := XLSXLimits
	set()
	t.Cleanup(func() { XLSXLimits = old })
}

// TestWorkbookLimits: each way a workbook can inflate is refused with the
// part and the limit named, and the refused file contributes nothing.
func TestWorkbookLimits(t *testing.T) {
	sheet := `<worksheet><sheetData><row r="1"><c t="s"><v>0</v></c></row><row r="2"><c t="s"><v>1</v></c></row></sheetData></worksheet>`
	var sst strings.Builder
	sst.WriteString(`<sst><si><t>VM</t></si>`)
	for range 2000 {
		sst.WriteString(`<si><t>` + strings.Repeat("A", 500) + `</t></si>`)
	}
	sst.WriteString(`</sst>`)
	bigSheet := `<worksheet><sheetData><row r="1"><c t="s"><v>0</v></c></row>` + strings.Repeat(`<row><c t="inlineStr"><is><t>web</t></is></c></row>`, 40000) + `</sheetData></worksheet>`
	for _, tc := range []struct {
		name       string
		limit      func()
		sst, sheet string
		want       string
	}{
		{"shared string text", func() { XLSXLimits.SharedStringBytes = 256 << 10 }, sst.String(), sheet,
			"the shared strings of xl/sharedStrings.xml hold more than 262144 bytes of text (the limit)"},
		{"shared string count", func() { XLSXLimits.SharedStrings = 100 }, sst.String(), sheet,
			"xl/sharedStrings.xml has more than 100 strings (the limit)"},
		{"one part", func() { XLSXLimits.PartBytes = 1 << 20 }, testSST, bigSheet,
			"sheet vInfo: file exceeds the import cap: xl/worksheets/sheet1.xml declares 2040084 bytes decompressed, more than the 1 MiB limit for one part"},
		{"parts", func() { XLSXLimits.Parts = 3 }, testSST, sheet, "the workbook has 4 parts, more than 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withXLSXLimits(t, tc.limit)
			im := New(Limits{}, clock)
			err := im.Add("big.xlsx", bytes.NewReader(buildXLSX(t, tc.sst, tc.sheet)))
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want ErrTooLarge saying %q", err, tc.want)
			}
			if res := im.Finish(); len(res.Records) != 0 || res.Files[0].Accepted != 0 {
				t.Fatalf("a refused workbook kept %d records", len(res.Records))
			}
		})
	}
	// A part that declares more than the limit is refused before a byte
	// of it is inflated.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"xl/workbook.xml", "xl/_rels/workbook.xml.rels"} {
		w, _ := zw.Create(name)
		w.Write([]byte(`<x/>`))
	}
	w, _ := zw.CreateRaw(&zip.FileHeader{Name: "xl/sharedStrings.xml", Method: zip.Store, CompressedSize64: 3, UncompressedSize64: 5 << 30})
	w.Write([]byte("abc"))
	zw.Close()
	err := New(Limits{}, clock).Add("declared.xlsx", bytes.NewReader(buf.Bytes()))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "xl/sharedStrings.xml declares 5 GiB decompressed, more than the 1 GiB limit for one part") {
		t.Fatalf("declared bomb: %v", err)
	}
}
