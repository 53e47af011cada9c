package importer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/ferry-migrate/ferry/discovery"
)

// Spool holds an import's records and connections in temporary files
// instead of memory, so that the server reads an upload of any size with
// a bounded amount of it: the importer appends rows as it accepts them
// (a refused file is cut off again), and the store reads them back one by
// one (Spool implements ingest.Source). Rows are JSON lines.
type Spool struct {
	records, conns spoolFile
}

type spoolFile struct {
	f     *os.File
	w     *bufio.Writer
	enc   *json.Encoder
	n     int // rows written
	size  int64
	dec   *json.Decoder // reading back, after Finish
	count int           // rows read back
}

func (s *spoolFile) open(dir, pattern string) error {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.f = f
	s.w = bufio.NewWriterSize(countingWriter{f, &s.size}, 64<<10)
	s.enc = json.NewEncoder(s.w)
	return nil
}

// countingWriter counts the bytes that reach the file, so a mark is a
// file offset.
type countingWriter struct {
	w io.Writer
	n *int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	*c.n += int64(n)
	return n, err
}

func (s *spoolFile) add(v any) error {
	s.n++
	return s.enc.Encode(v)
}

type spoolMark struct {
	n    int
	size int64
}

func (s *spoolFile) mark() (spoolMark, error) {
	if err := s.w.Flush(); err != nil {
		return spoolMark{}, fmt.Errorf("spool: %w", err)
	}
	return spoolMark{s.n, s.size}, nil
}

func (s *spoolFile) rollback(m spoolMark) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := s.f.Truncate(m.size); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := s.f.Seek(m.size, io.SeekStart); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.n, s.size = m.n, m.size
	return nil
}

// rewind ends writing and starts reading from the top.
func (s *spoolFile) rewind() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.dec = json.NewDecoder(bufio.NewReaderSize(s.f, 64<<10))
	s.count = 0
	return nil
}

func (s *spoolFile) next(v any) error {
	if s.dec == nil {
		return fmt.Errorf("spool: read before the import finished")
	}
	if s.count == s.n {
		return io.EOF
	}
	if err := s.dec.Decode(v); err != nil {
		return fmt.Errorf("spool: row %d: %w", s.count+1, err)
	}
	s.count++
	return nil
}

func (s *spoolFile) close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	if rerr := os.Remove(s.f.Name()); err == nil && !os.IsNotExist(rerr) {
		err = rerr
	}
	s.f = nil
	return err
}

func newSpool(dir string) (*Spool, error) {
	s := &Spool{}
	if err := s.records.open(dir, "ferry-import-records-*.jsonl"); err != nil {
		return nil, err
	}
	if err := s.conns.open(dir, "ferry-import-connections-*.jsonl"); err != nil {
		s.records.close()
		return nil, err
	}
	return s, nil
}

// Records and Connections count the rows spooled.
func (s *Spool) Records() int     { return s.records.n }
func (s *Spool) Connections() int { return s.conns.n }

// NextRecord returns the next spooled record, io.EOF after the last.
func (s *Spool) NextRecord() (discovery.Record, error) {
	var r discovery.Record
	err := s.records.next(&r)
	return r, err
}

// NextConnection returns the next spooled connection, io.EOF after the last.
func (s *Spool) NextConnection() (discovery.ObservedConnection, error) {
	var c discovery.ObservedConnection
	err := s.conns.next(&c)
	return c, err
}

// Rewind starts reading both lists from the top again.
func (s *Spool) Rewind() error {
	if err := s.records.rewind(); err != nil {
		return err
	}
	return s.conns.rewind()
}

// Close removes the spool's files.
func (s *Spool) Close() error {
	err := s.records.close()
	if cerr := s.conns.close(); err == nil {
		err = cerr
	}
	return err
}
