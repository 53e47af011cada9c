package importer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Limits of one CSV record: a quoted cell may hold line breaks (RVTools
// puts VM notes in one), but a record longer than this is a quote that
// never closed.
const (
	maxRecordLines = 1000
	maxRecordBytes = 1 << 20
)

// recordError is one malformed record: its first line, the 1-based field
// where it went wrong (0 when the record as a whole is), and why.
type recordError struct {
	line, field int
	msg         string
}

func (e *recordError) Error() string { return e.msg }

var (
	errUnterminated = "a quoted cell opens here and never closes (an unterminated \"); the rows after it were read on their own"
	errBareQuote    = `a " inside a cell that does not start with one; quote the whole cell and double the " ("")`
	errAfterQuote   = `text after the closing " of a quoted cell; quote the whole cell and double any " inside it ("")`
)

// csvRecords reads RFC 4180 records (comma-separated, quoted cells may
// hold commas, doubled quotes and line breaks) line by line, so that one
// malformed record costs only itself. encoding/csv cannot do that: after
// an unterminated quote it reads to the end of the file looking for the
// closing one, and one stray quote folded every later row into one cell.
// Here a record that is still open after maxRecordLines lines or
// maxRecordBytes bytes, or at the end of the file, or that closes with a
// different number of cells than the header (a stray quote closed by
// another one lines later), is reported at its first line, and reading
// resumes on the line after it.
type csvRecords struct {
	r       *bufio.Reader
	line    int      // physical lines read from r
	pending [][]byte // lines read ahead, to be read again after a malformed record
	pendAt  int      // line number of pending[0]
	buf     []byte
	fields  []string
	want    int // cells of a record, once the header is known (0: any)
	// multiLine allows quoted cells with line breaks. The Ferry template
	// has no cell that may hold one, so there an open quote at the end of
	// a line is an error at once; RVTools puts VM notes in one.
	multiLine bool
}

func newCSVRecords(r io.Reader) *csvRecords {
	return &csvRecords{r: bufio.NewReaderSize(r, 64<<10)}
}

// readLine returns the next physical line with its terminator and number.
func (c *csvRecords) readLine() ([]byte, int, error) {
	if len(c.pending) > 0 {
		l, n := c.pending[0], c.pendAt
		c.pending, c.pendAt = c.pending[1:], c.pendAt+1
		return l, n, nil
	}
	var out []byte
	for {
		chunk, err := c.r.ReadSlice('\n')
		if len(out)+len(chunk) > maxRecordBytes {
			// Keep reading to the end of the line, dropping it: the
			// record is refused, not the file.
			for err == bufio.ErrBufferFull {
				_, err = c.r.ReadSlice('\n')
			}
			c.line++
			if err != nil && err != io.EOF {
				return nil, c.line, err
			}
			return nil, c.line, &recordError{line: c.line, msg: fmt.Sprintf("line is longer than %d bytes", maxRecordBytes)}
		}
		out = append(out, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(out) == 0 {
			return nil, c.line, io.EOF
		}
		if err != nil && err != io.EOF {
			return nil, c.line, err
		}
		c.line++
		return out, c.line, nil
	}
}

// unread puts lines back to be read again, the first being number at.
func (c *csvRecords) unread(lines [][]byte, at int) {
	if len(lines) == 0 {
		return
	}
	c.pending = append(append([][]byte(nil), lines...), c.pending...)
	c.pendAt = at
}

// next returns the next record's cells and its first line. A malformed
// record is returned as a *recordError (reading can go on); any other
// error ends the file. The cells are reused by the next call.
func (c *csvRecords) next() ([]string, int, error) {
	for {
		first, start, err := c.readLine()
		if err != nil {
			return nil, start, err
		}
		c.buf = append(c.buf[:0], first...)
		var more [][]byte
		for {
			fields, open, perr := c.parse(c.buf, start)
			if perr != nil {
				c.unread(more, start+1)
				if len(more) > 0 {
					// The quote that opened on the first line is the fault.
					return nil, start, &recordError{line: start, msg: errUnterminated}
				}
				return nil, start, perr
			}
			if !open {
				if len(fields) == 0 {
					break // a blank line
				}
				if len(more) > 0 && c.folded(fields, more) {
					// A quote that closed lines later, in another row:
					// this was no multi-line cell.
					c.unread(more, start+1)
					return nil, start, &recordError{line: start, msg: errUnterminated}
				}
				return fields, start, nil
			}
			if !c.multiLine || len(more)+1 >= maxRecordLines || len(c.buf) >= maxRecordBytes {
				c.unread(more, start+1)
				return nil, start, &recordError{line: start, msg: errUnterminated}
			}
			l, _, err := c.readLine()
			if err == io.EOF {
				c.unread(more, start+1)
				return nil, start, &recordError{line: start, msg: errUnterminated}
			}
			var re *recordError
			if errors.As(err, &re) {
				// An over-long line inside an open quote: the record
				// started here is the malformed one.
				c.unread(more, start+1)
				return nil, start, &recordError{line: start, msg: errUnterminated}
			}
			if err != nil {
				return nil, start, err
			}
			more = append(more, append([]byte(nil), l...))
			c.buf = append(c.buf, l...)
		}
	}
}

// folded reports whether a record spanning lines is rows folded together
// by a stray quote rather than one record with a multi-line cell: its cell
// count differs from the header's, or a line inside it has as many commas
// as a whole row (notes with dozens of commas per line are not a thing).
func (c *csvRecords) folded(fields []string, more [][]byte) bool {
	if c.want == 0 {
		return false
	}
	if len(fields) != c.want {
		return true
	}
	for _, l := range more[:len(more)-1] {
		if c.want > 2 && bytes.Count(l, []byte(",")) >= c.want-1 {
			return true
		}
	}
	return false
}

// parse splits one record's text into cells. open says the text ends
// inside a quoted cell (more lines are needed). Inside quotes "" is one "
// and CRLF is LF, as in encoding/csv.
func (c *csvRecords) parse(b []byte, line int) (fields []string, open bool, err error) {
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	fields = c.fields[:0]
	if len(b) == 0 {
		return fields, false, nil
	}
	var cell []byte
	for field := 1; ; field++ {
		cell = cell[:0]
		if len(b) > 0 && b[0] == '"' {
			b = b[1:]
			for {
				i := bytes.IndexByte(b, '"')
				if i < 0 {
					return nil, true, nil
				}
				cell = append(cell, b[:i]...)
				b = b[i+1:]
				if len(b) > 0 && b[0] == '"' {
					cell = append(cell, '"')
					b = b[1:]
					continue
				}
				break
			}
			if len(b) > 0 && b[0] != ',' {
				return nil, false, &recordError{line: line, field: field, msg: errAfterQuote}
			}
			cell = bytes.ReplaceAll(cell, []byte("\r\n"), []byte("\n"))
		} else {
			i := bytes.IndexByte(b, ',')
			if i < 0 {
				i = len(b)
			}
			if bytes.IndexByte(b[:i], '"') >= 0 {
				return nil, false, &recordError{line: line, field: field, msg: errBareQuote}
			}
			cell = append(cell, b[:i]...)
			b = b[i:]
		}
		fields = append(fields, string(cell))
		if len(b) == 0 {
			c.fields = fields
			return fields, false, nil
		}
		b = b[1:] // the comma
	}
}
