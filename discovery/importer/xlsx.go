package importer

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// workbook is a streaming reader of the parts of an .xlsx that hold cell
// values: the sheet list, the shared strings and each sheet's rows. It
// reads the XML token by token and keeps only the shared strings in
// memory; a general-purpose library decodes every cell into a struct,
// which made a 20,000-VM export take most of the 5-second budget.
//
// A workbook is a zip written by anything, so every size it declares is
// checked and none is trusted: the number of parts, each part's
// decompressed bytes (as declared and as read), all parts together, and
// the shared-strings table (its text and its entries), which is the one
// thing held in memory. A 4 MB workbook whose shared strings inflate to
// 1.8 GB is refused at XLSXLimits.SharedStringBytes.
type workbook struct {
	zr     *zip.Reader
	sheets []wbSheet
	// Shared strings, kept in pages of text: string i is
	// pages[at[i].page][at[i].start:at[i].end]. Pages are never grown (a
	// growing buffer holds its old copy while it doubles: three times the
	// text at its peak), one allocation per page instead of per string.
	pages  [][]byte
	at     []strRef
	text   int64  // bytes of text held
	budget *int64 // decompressed bytes left, across all parts
}

type strRef struct{ page, start, end uint32 }

// strPage is the size of a page of shared-string text; a longer string
// gets a page of its own.
const strPage = 1 << 20

type wbSheet struct{ name, part string }

// XLSXLimits bound what reading one workbook may cost; the cap on the
// upload itself (Limits.MaxBytes, 256 MiB) bounds the zip.
var XLSXLimits = struct {
	Parts             int   // zip members
	PartBytes         int64 // decompressed bytes of one part
	SharedStringBytes int64 // text of the shared-strings table, held in memory
	SharedStrings     int   // entries of the shared-strings table
}{
	Parts:             10_000,
	PartBytes:         1 << 30,
	SharedStringBytes: 64 << 20,
	SharedStrings:     2_000_000,
}

// errTotalBomb refuses a workbook whose parts together inflate too far.
func errTotalBomb(limit int64) error {
	return fmt.Errorf("%w: the workbook's parts decompress to more than %s in all (8 times the file cap); it looks like a zip bomb", ErrTooLarge, byteSize(limit))
}

// budgetReader charges decompressed bytes against the part's own limit and
// the workbook's budget, so a zip bomb is refused instead of filling
// memory, disk or an afternoon.
type budgetReader struct {
	r      io.Reader
	part   string
	left   int64 // of this part
	budget *int64
	total  int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.left -= int64(n)
	*b.budget -= int64(n)
	switch {
	case b.left < 0:
		return n, fmt.Errorf("%w: %s decompresses to more than %s (the limit for one part); it looks like a zip bomb", ErrTooLarge, b.part, byteSize(XLSXLimits.PartBytes))
	case *b.budget < 0:
		return n, errTotalBomb(b.total)
	}
	return n, err
}

func (w *workbook) open(name string) (io.ReadCloser, error) {
	name = strings.TrimPrefix(name, "/")
	for _, f := range w.zr.File {
		if f.Name == name {
			label := name // a sheet's errors are prefixed with its name by the caller
			if f.UncompressedSize64 > uint64(XLSXLimits.PartBytes) {
				return nil, fmt.Errorf("%w: %s declares %s decompressed, more than the %s limit for one part", ErrTooLarge, label,
					byteSize(int64(min(f.UncompressedSize64, 1<<62))), byteSize(XLSXLimits.PartBytes))
			}
			rc, err := f.Open()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", label, err)
			}
			return struct {
				io.Reader
				io.Closer
			}{&budgetReader{r: rc, part: label, left: XLSXLimits.PartBytes, budget: w.budget, total: *w.budget}, rc}, nil
		}
	}
	return nil, fmt.Errorf("workbook has no part %s", name)
}

func openWorkbook(ra io.ReaderAt, size int64, maxUnzipped int64) (*workbook, error) {
	// The central directory is read whole by archive/zip; count its
	// entries first, from the end record, so a file of millions of empty
	// parts is refused before it becomes millions of structs.
	if n, err := zipEntries(ra, size); err != nil {
		return nil, fmt.Errorf("not an xlsx (zip) file: %w", err)
	} else if n > XLSXLimits.Parts {
		return nil, fmt.Errorf("%w: the workbook has %d parts, more than %d", ErrTooLarge, n, XLSXLimits.Parts)
	}
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		return nil, fmt.Errorf("not an xlsx (zip) file: %w", err)
	}
	w := &workbook{zr: zr, budget: &maxUnzipped}
	var wb struct {
		Sheets []struct {
			Name string `xml:"name,attr"`
			RID  string `xml:"http://schemas.openxmlformats.org/officeDocument/2006/relationships id,attr"`
		} `xml:"sheets>sheet"`
	}
	if err := w.unmarshal("xl/workbook.xml", &wb); err != nil {
		return nil, err
	}
	var rels struct {
		Rels []struct {
			ID     string `xml:"Id,attr"`
			Target string `xml:"Target,attr"`
		} `xml:"Relationship"`
	}
	if err := w.unmarshal("xl/_rels/workbook.xml.rels", &rels); err != nil {
		return nil, err
	}
	target := map[string]string{}
	for _, r := range rels.Rels {
		t := r.Target
		if !strings.HasPrefix(t, "/") {
			t = path.Join("xl", t)
		}
		target[r.ID] = strings.TrimPrefix(t, "/")
	}
	for _, s := range wb.Sheets {
		if p, ok := target[s.RID]; ok {
			w.sheets = append(w.sheets, wbSheet{name: s.Name, part: p})
		}
	}
	if err := w.loadSharedStrings(); err != nil {
		return nil, err
	}
	return w, nil
}

// zipEntries reads the entry count from a zip's end-of-central-directory
// record (the last 22 bytes plus a comment of up to 64 KiB).
func zipEntries(ra io.ReaderAt, size int64) (int, error) {
	tail := min(size, 22+65535)
	buf := make([]byte, tail)
	if _, err := ra.ReadAt(buf, size-tail); err != nil && err != io.EOF {
		return 0, err
	}
	i := bytes.LastIndex(buf, []byte("PK\x05\x06"))
	if i < 0 || len(buf)-i < 22 {
		return 0, errors.New("no end of central directory")
	}
	n := int(binary.LittleEndian.Uint16(buf[i+10:]))
	if n == 0xffff {
		return 1 << 30, nil // zip64: more entries than any workbook has
	}
	return n, nil
}

// byteSize prints a limit the way the docs state it.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func (w *workbook) unmarshal(part string, v any) error {
	rc, err := w.open(part)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := xml.NewDecoder(rc).Decode(v); err != nil {
		return fmt.Errorf("read %s: %w", part, err)
	}
	return nil
}

// loadSharedStrings reads xl/sharedStrings.xml: each <si> is one string,
// possibly split into rich-text runs (<r><t>…</t></r>); phonetic guides
// (<rPh>) are not part of the text.
func (w *workbook) loadSharedStrings() error {
	const part = "xl/sharedStrings.xml"
	rc, err := w.open(part)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return err
		}
		return nil // a workbook without text cells has none
	}
	defer rc.Close()
	sc := newXMLScanner(rc)
	inSI, inT, inRPh := false, false, false
	var cur []byte
	push := func() error {
		if len(w.at) == XLSXLimits.SharedStrings {
			return fmt.Errorf("%w: %s has more than %d strings (the limit)", ErrTooLarge, part, XLSXLimits.SharedStrings)
		}
		w.at = append(w.at, w.keep(cur))
		return nil
	}
	for {
		err := sc.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return err
			}
			return fmt.Errorf("read shared strings: %w", err)
		}
		if inSI && inT && !inRPh {
			cur = unescapeXML(cur, sc.text)
			if w.text+int64(len(cur)) > XLSXLimits.SharedStringBytes {
				return fmt.Errorf("%w: the shared strings of %s hold more than %s of text (the limit); the workbook is refused", ErrTooLarge, part, byteSize(XLSXLimits.SharedStringBytes))
			}
		}
		switch {
		case sc.is("si"):
			switch {
			case sc.self:
				cur = cur[:0]
				if err := push(); err != nil {
					return err
				}
			case sc.end:
				if inSI {
					if err := push(); err != nil {
						return err
					}
				}
				inSI = false
			default:
				inSI, cur = true, cur[:0]
			}
		case sc.is("t"):
			inT = !sc.end && !sc.self
		case sc.is("rPh"):
			inRPh = !sc.end && !sc.self
		}
	}
}

// keep copies b into the pages and says where it is.
func (w *workbook) keep(b []byte) strRef {
	w.text += int64(len(b))
	n := len(w.pages)
	if n == 0 || len(w.pages[n-1])+len(b) > cap(w.pages[n-1]) {
		w.pages = append(w.pages, make([]byte, 0, max(strPage, len(b))))
		n++
	}
	p := &w.pages[n-1]
	start := len(*p)
	*p = append(*p, b...)
	return strRef{uint32(n - 1), uint32(start), uint32(len(*p))}
}

// sharedString returns the i-th shared string.
func (w *workbook) sharedString(i int) (string, bool) {
	if i < 0 || i >= len(w.at) {
		return "", false
	}
	r := w.at[i]
	return string(w.pages[r.page][r.start:r.end]), true
}

// rows streams one sheet, calling fn with each row's 1-based number and
// its cells (missing cells are ""). fn's slice is reused between calls.
func (w *workbook) rows(part string, fn func(rowNum int, cells []string) error) error {
	rc, err := w.open(part)
	if err != nil {
		return err
	}
	defer rc.Close()
	sc := newXMLScanner(rc)
	var cells []string
	var val []byte
	rowNum, col := 0, 0
	cellType := ""
	inRow, inV, inIS, inT := false, false, false, false
	for {
		err := sc.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read sheet: %w", err)
		}
		if inV || inT {
			val = unescapeXML(val, sc.text)
		}
		switch {
		case sc.is("row"):
			if sc.end {
				if inRow {
					inRow = false
					if err := fn(rowNum, cells); err != nil {
						return err
					}
				}
				continue
			}
			cells, col = cells[:0], 0
			rowNum++
			if v, ok := sc.attrValue("r"); ok {
				if n, err := strconv.Atoi(string(v)); err == nil && n > 0 {
					rowNum = n
				}
			}
			inRow = !sc.self
			if sc.self {
				if err := fn(rowNum, cells); err != nil {
					return err
				}
			}
		case sc.is("c"):
			if !inRow {
				continue
			}
			if sc.end {
				if col < len(cells) {
					cells[col] = w.cellValue(cellType, string(val))
				}
				col++
				continue
			}
			cellType, val = "", val[:0]
			if v, ok := sc.attrValue("t"); ok {
				cellType = string(v)
			}
			idx := col
			if v, ok := sc.attrValue("r"); ok {
				if c, ok := columnIndex(string(v)); ok {
					idx = c
				}
			}
			if idx >= 16384 {
				return fmt.Errorf("row %d: cell column %d is beyond the xlsx limit", rowNum, idx+1)
			}
			for len(cells) <= idx {
				cells = append(cells, "")
			}
			col = idx
			if sc.self {
				col++
			}
		case sc.is("v"):
			inV = !sc.end && !sc.self
		case sc.is("is"):
			inIS = !sc.end && !sc.self
		case sc.is("t"):
			inT = inIS && !sc.end && !sc.self
		}
	}
}

func (w *workbook) cellValue(typ, raw string) string {
	switch typ {
	case "s":
		i, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			return ""
		}
		v, _ := w.sharedString(i)
		return v
	case "b":
		if strings.TrimSpace(raw) == "1" {
			return "True"
		}
		return "False"
	}
	return raw
}

// columnIndex turns a cell reference such as "AB12" into its 0-based
// column.
func columnIndex(ref string) (int, bool) {
	n := 0
	i := 0
	for ; i < len(ref) && ref[i] >= 'A' && ref[i] <= 'Z'; i++ {
		n = n*26 + int(ref[i]-'A'+1)
		if n > 1<<20 {
			return 0, false
		}
	}
	if i == 0 {
		return 0, false
	}
	return n - 1, true
}
