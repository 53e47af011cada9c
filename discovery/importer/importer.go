// Package importer reads the files a client hands over — the Ferry CSV
// template, RVTools exports (CSV per sheet or one .xlsx), ss/netstat
// captures and the estate JSON — into discovery records and observed
// connections. Every importer streams its input under byte and row caps,
// keeps the good rows and reports each bad one with file, row, column and
// reason.
package importer

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
)

// Limits bound what one import may consume.
type Limits struct {
	MaxBytes  int64 // per file; default 256 MiB
	MaxRows   int   // per file; default 500,000
	MaxErrors int   // row errors kept per import; default 10,000 (the rest are counted)
}

// DefaultLimits are used for zero fields.
var DefaultLimits = Limits{MaxBytes: 256 << 20, MaxRows: 500_000, MaxErrors: 10_000}

// ErrTooLarge refuses a whole file that exceeds a cap: a partial import of
// it would look complete and be wrong.
var ErrTooLarge = errors.New("file exceeds the import cap")

// ErrUnknownFormat refuses a file no importer recognises.
var ErrUnknownFormat = errors.New("unrecognised file format")

// Kind names an input format.
type Kind string

// Input formats.
const (
	KindHostsCSV       Kind = "hosts_csv"
	KindConnectionsCSV Kind = "connections_csv"
	KindRVToolsCSV     Kind = "rvtools_csv"
	KindRVToolsXLSX    Kind = "rvtools_xlsx"
	KindSS             Kind = "ss"
	KindNetstat        Kind = "netstat"
	KindEstateJSON     Kind = "estate_json"
)

// FileSummary counts what happened to one file.
type FileSummary struct {
	File     string `json:"file"`
	Kind     Kind   `json:"kind"`
	Rows     int    `json:"rows"`
	Accepted int    `json:"accepted"`
	Rejected int    `json:"rejected"`
	Skipped  int    `json:"skipped,omitempty"` // e.g. RVTools templates
}

// Result is everything one import produced.
type Result struct {
	// Records and Connections are the accepted rows, unless the import
	// was spooled (NewSpooled): then they are empty and Spool holds them.
	Records       []discovery.Record             `json:"records"`
	Connections   []discovery.ObservedConnection `json:"connections"`
	Spool         *Spool                         `json:"-"`
	Errors        []discovery.RowError           `json:"errors"`
	ErrorsDropped int                            `json:"errors_dropped,omitempty"`
	Files         []FileSummary                  `json:"files"`
}

// Importer accumulates one import (possibly several files that refer to
// each other: hosts.csv and connections.csv, or RVTools' sheets).
type Importer struct {
	limits Limits
	now    func() time.Time
	batch  string
	res    Result

	// spool, when set, takes the accepted rows (and pending, the
	// connections CSV rows waiting for Finish) instead of memory; err is
	// its first write error.
	spool   *Spool
	pending spoolFile
	err     error
	dir     string // for temporary files ("" for the system's)

	seed     maphash.Seed
	csvRefs  map[uint64]bool // hashed refs declared by the hosts CSVs of earlier files
	fileRefs map[uint64]bool // … and by the file being read, kept if it is
	csvConns []pendingConn
	rv       *rvtools
}

// New starts an import. now stamps observations (time.Now when nil).
func New(limits Limits, now func() time.Time) *Importer {
	if limits.MaxBytes <= 0 {
		limits.MaxBytes = DefaultLimits.MaxBytes
	}
	if limits.MaxRows <= 0 {
		limits.MaxRows = DefaultLimits.MaxRows
	}
	if limits.MaxErrors <= 0 {
		limits.MaxErrors = DefaultLimits.MaxErrors
	}
	if now == nil {
		now = time.Now
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return &Importer{limits: limits, now: now, batch: hex.EncodeToString(b), seed: maphash.MakeSeed(),
		csvRefs: map[uint64]bool{}, fileRefs: map[uint64]bool{}}
}

// NewSpooled starts an import that keeps its rows in temporary files in
// dir ("" for the system's) instead of memory: Finish's Result then has
// them in Spool. Close removes the files.
func NewSpooled(limits Limits, now func() time.Time, dir string) (*Importer, error) {
	im := New(limits, now)
	im.dir = dir
	var err error
	if im.spool, err = newSpool(dir); err != nil {
		return nil, err
	}
	if err := im.pending.open(dir, "ferry-import-pending-*.jsonl"); err != nil {
		im.spool.Close()
		return nil, err
	}
	return im, nil
}

// Close removes a spooled import's files; a no-op otherwise.
func (im *Importer) Close() error {
	if im.spool == nil {
		return nil
	}
	err := im.spool.Close()
	if perr := im.pending.close(); err == nil {
		err = perr
	}
	return err
}

// Err is the first error writing the spool (a full disk): the import is
// then incomplete and must not be stored.
func (im *Importer) Err() error { return im.err }

func (im *Importer) fail(err error) {
	if err != nil && im.err == nil {
		im.err = err
	}
}

// addRecord, addConnection and addPending keep an accepted row.
func (im *Importer) addRecord(r discovery.Record) {
	if im.spool != nil {
		im.fail(im.spool.records.add(r))
		return
	}
	im.res.Records = append(im.res.Records, r)
}

func (im *Importer) addConnection(c discovery.ObservedConnection) {
	if im.spool != nil {
		im.fail(im.spool.conns.add(c))
		return
	}
	im.res.Connections = append(im.res.Connections, c)
}

func (im *Importer) addPending(p pendingConn) {
	if im.spool != nil {
		im.fail(im.pending.add(p))
		return
	}
	im.csvConns = append(im.csvConns, p)
}

func (im *Importer) refKey(ref string) uint64 { return maphash.String(im.seed, ref) }

func (im *Importer) source(kind, file string) discovery.SourceRef {
	return discovery.SourceRef{Kind: kind, Name: file, ObservedAt: im.now().UTC()}
}

// rowError records a problem, keeping at most MaxErrors of them.
func (im *Importer) rowError(file string, row int, column, format string, a ...any) {
	if len(im.res.Errors) >= im.limits.MaxErrors {
		im.res.ErrorsDropped++
		return
	}
	im.res.Errors = append(im.res.Errors, discovery.RowError{File: file, Row: row, Column: column, Reason: fmt.Sprintf(format, a...)})
}

// capReader fails with ErrTooLarge once more than max bytes were read, so
// no importer can be made to hold more than the cap.
type capReader struct {
	r    io.Reader
	left int64
	max  int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One probe byte tells "exactly at the cap" from "over it".
		var one [1]byte
		if n, _ := c.r.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("%w of %d bytes", ErrTooLarge, c.max)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// AddFile imports one file, choosing the importer from its name and first
// bytes. A file-level error (too large, unknown format, unreadable)
// refuses the file; row errors go to the Result.
func (im *Importer) AddFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	if fi.Size() > im.limits.MaxBytes {
		return fmt.Errorf("import %s: %w of %d bytes (it has %d)", path, ErrTooLarge, im.limits.MaxBytes, fi.Size())
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	defer f.Close()
	return im.Add(filepath.Base(path), f)
}

// Add imports one stream named name (the name picks the format and, for
// captures, the host).
func (im *Importer) Add(name string, r io.Reader) error {
	cr := &capReader{r: r, left: im.limits.MaxBytes, max: im.limits.MaxBytes}
	br := bufio.NewReaderSize(cr, 64<<10)
	head, _ := br.Peek(4096)
	if bytes.HasPrefix(head, []byte("\xff\xfe")) || bytes.HasPrefix(head, []byte("\xfe\xff")) {
		// Windows tools write UTF-16 (PowerShell's > redirection, Excel's
		// "Unicode text"): every row would be refused as not UTF-8.
		return fmt.Errorf("import %s: the file is UTF-16 text; save or export it as UTF-8", name)
	}
	kind, err := Detect(name, head)
	if err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	sum := FileSummary{File: name, Kind: kind}
	mark := im.mark()
	switch kind {
	case KindHostsCSV:
		err = im.hostsCSV(name, br, &sum)
	case KindConnectionsCSV:
		err = im.connectionsCSV(name, br, &sum)
	case KindRVToolsCSV:
		err = im.rvtoolsCSV(name, br, &sum)
	case KindRVToolsXLSX:
		err = im.rvtoolsXLSX(name, br, &sum)
	case KindSS, KindNetstat:
		err = im.capture(name, kind, br, &sum)
	case KindEstateJSON:
		err = im.estateJSON(name, br, &sum)
	}
	if err == nil {
		err = im.err
	}
	if err != nil {
		// A refused file contributes nothing: a partial file would look
		// complete and be wrong.
		im.rollback(mark)
		sum.Accepted, sum.Rejected = 0, sum.Rows
		im.res.Files = append(im.res.Files, sum)
		return fmt.Errorf("import %s: %w", name, err)
	}
	for k := range im.fileRefs {
		im.csvRefs[k] = true
	}
	clear(im.fileRefs)
	im.res.Files = append(im.res.Files, sum)
	return nil
}

type mark struct {
	records, conns, errs, csvConns, rvVMs, rvChildren int
	spooled                                           [3]spoolMark
}

func (im *Importer) mark() mark {
	m := mark{records: len(im.res.Records), conns: len(im.res.Connections), errs: len(im.res.Errors), csvConns: len(im.csvConns)}
	if im.rv != nil {
		m.rvVMs, m.rvChildren = len(im.rv.vms), len(im.rv.children)
	}
	if im.spool != nil {
		for i, f := range []*spoolFile{&im.spool.records, &im.spool.conns, &im.pending} {
			var err error
			m.spooled[i], err = f.mark()
			im.fail(err)
		}
	}
	return m
}

func (im *Importer) rollback(m mark) {
	im.res.Records = im.res.Records[:m.records]
	im.res.Connections = im.res.Connections[:m.conns]
	im.res.Errors = im.res.Errors[:m.errs]
	im.csvConns = im.csvConns[:m.csvConns]
	clear(im.fileRefs)
	if im.spool != nil {
		for i, f := range []*spoolFile{&im.spool.records, &im.spool.conns, &im.pending} {
			im.fail(f.rollback(m.spooled[i]))
		}
	}
	if im.rv != nil {
		im.rv.vms = im.rv.vms[:m.rvVMs]
		im.rv.children = im.rv.children[:m.rvChildren]
		im.rv.byName = map[string][]*rvVM{}
		for _, v := range im.rv.vms {
			k := strings.ToLower(v.facts.Name)
			im.rv.byName[k] = append(im.rv.byName[k], v)
		}
	}
}

// Detect picks the format of a file from its name and its first bytes.
func Detect(name string, head []byte) (Kind, error) {
	lower := strings.ToLower(name)
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	switch {
	case strings.HasSuffix(lower, ".xlsx") || bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return KindRVToolsXLSX, nil
	case strings.HasSuffix(lower, ".json") || bytes.HasPrefix(bytes.TrimSpace(head), []byte("{")):
		return KindEstateJSON, nil
	}
	first := string(head)
	if i := strings.IndexByte(first, '\n'); i >= 0 {
		first = first[:i]
	}
	cols := map[string]bool{}
	for _, c := range strings.Split(strings.TrimSpace(first), ",") {
		cols[strings.ToLower(strings.Trim(strings.TrimSpace(c), `"`))] = true
	}
	switch {
	case len(cols) < 2:
		// One column is no table: fall through to the capture formats.
	case cols["vm"]:
		return KindRVToolsCSV, nil
	case cols["src"] && cols["port"]:
		return KindConnectionsCSV, nil
	case cols["name"] && (cols["id"] || cols["ip"] || cols["fqdn"]):
		return KindHostsCSV, nil
	}
	text := string(head)
	switch {
	case strings.Contains(text, "Proto Recv-Q") || strings.Contains(text, "Active Internet connections") ||
		strings.Contains(lower, "netstat") || containsLinePrefix(text, "tcp ", "tcp6 ", "  TCP "):
		return KindNetstat, nil
	case strings.Contains(text, "Local Address:Port") || strings.Contains(lower, ".ss") || strings.Contains(lower, "_ss") ||
		containsLinePrefix(text, "ESTAB", "LISTEN", "TIME-WAIT", "SYN-SENT", "CLOSE-WAIT"):
		return KindSS, nil
	}
	return "", ErrUnknownFormat
}

func containsLinePrefix(text string, prefixes ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				return true
			}
		}
	}
	return false
}

// Finish resolves what needed every file (connections to hosts.csv refs,
// RVTools sheets to their VMs) and returns the import.
func (im *Importer) Finish() Result {
	im.finishCSVConnections()
	// The refs of the hosts CSVs were for the connections CSVs only.
	im.csvRefs, im.fileRefs = nil, nil
	if im.rv != nil {
		im.rv.finish(im)
	}
	if im.spool != nil {
		im.fail(im.spool.Rewind())
		im.res.Spool = im.spool
	}
	if im.res.Records == nil {
		im.res.Records = []discovery.Record{}
	}
	if im.res.Connections == nil {
		im.res.Connections = []discovery.ObservedConnection{}
	}
	if im.res.Errors == nil {
		im.res.Errors = []discovery.RowError{}
	}
	return im.res
}
