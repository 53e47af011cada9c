package importer

import (
	"archive/zip"
	"encoding/xml"
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
type workbook struct {
	zr      *zip.Reader
	sheets  []wbSheet
	strings []string
	budget  *int64 // decompressed bytes left, across all parts
}

type wbSheet struct{ name, part string }

var errZipBomb = fmt.Errorf("%w: the workbook decompresses to more than 8 times the byte cap", ErrTooLarge)

// budgetReader charges decompressed bytes against the workbook's budget,
// so a zip bomb is refused instead of filling memory or disk.
type budgetReader struct {
	r      io.Reader
	budget *int64
}

func (b budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	*b.budget -= int64(n)
	if *b.budget < 0 {
		return n, errZipBomb
	}
	return n, err
}

func (w *workbook) open(name string) (io.ReadCloser, error) {
	name = strings.TrimPrefix(name, "/")
	for _, f := range w.zr.File {
		if f.Name == name {
			rc, err := f.Open()
			if err != nil {
				return nil, err
			}
			return struct {
				io.Reader
				io.Closer
			}{budgetReader{rc, w.budget}, rc}, nil
		}
	}
	return nil, fmt.Errorf("workbook has no part %s", name)
}

func openWorkbook(ra io.ReaderAt, size int64, maxUnzipped int64) (*workbook, error) {
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
	rc, err := w.open("xl/sharedStrings.xml")
	if err != nil {
		return nil // a workbook without text cells has none
	}
	defer rc.Close()
	sc := newXMLScanner(rc)
	var cur []byte
	inSI, inT, inRPh := false, false, false
	for {
		err := sc.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read shared strings: %w", err)
		}
		if inSI && inT && !inRPh {
			cur = unescapeXML(cur, sc.text)
		}
		switch {
		case sc.is("si"):
			switch {
			case sc.self:
				w.strings = append(w.strings, "")
			case sc.end:
				if inSI {
					w.strings = append(w.strings, string(cur))
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
		if err != nil || i < 0 || i >= len(w.strings) {
			return ""
		}
		return w.strings[i]
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
