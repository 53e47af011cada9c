package importer

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ferry-migrate/ferry/discovery"
)

// HostsCSVHeader and ConnectionsCSVHeader are the Ferry CSV template.
var (
	HostsCSVHeader = []string{"id", "name", "fqdn", "ip", "mac", "bios_uuid", "os", "os_family", "arch", "boot_mode", "cpus",
		"memory_mib", "disk_count", "disk_provisioned_gib", "disk_used_gib", "environment", "criticality", "application", "owner",
		"tags", "cpu_p95", "memory_p95", "virtualization"}
	ConnectionsCSVHeader = []string{"src", "dst", "dst_address", "port", "protocol", "process", "count", "bytes"}
)

// Allowed values of the enumerated columns, shared with the estate JSON.
var (
	criticalities = set("low", "medium", "high", "critical")
	environments  = set("production", "staging", "test", "development", "dr")
	bootModes     = set("bios", "uefi")
	osFamilies    = set("linux", "windows", "other")
	protocols     = set("tcp", "udp")
)

func set(v ...string) map[string]bool {
	m := map[string]bool{}
	for _, s := range v {
		m[s] = true
	}
	return m
}

// csvTable reads a CSV with a header row, streaming one record at a time.
type csvTable struct {
	file   string
	r      *csvRecords
	cols   map[string]int
	header []string
	rows   int
	max    int
}

// openCSV reads the header. multiLine allows quoted cells spanning lines
// (see csvRecords).
func openCSV(file string, r io.Reader, maxRows int, multiLine bool) (*csvTable, error) {
	cr := newCSVRecords(r)
	cr.multiLine = multiLine
	header, _, err := cr.next()
	if err != nil {
		var re *recordError
		switch {
		case errors.Is(err, ErrTooLarge):
			return nil, err
		case errors.As(err, &re):
			return nil, fmt.Errorf("read header (line %d): %v", re.line, re.msg)
		case err == io.EOF:
			return nil, fmt.Errorf("read header: the file is empty")
		}
		return nil, fmt.Errorf("read header: %w", err)
	}
	t := &csvTable{file: file, r: cr, cols: map[string]int{}, max: maxRows}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\xef\xbb\xbf"))
		if bad := badText(h); bad != "" {
			return nil, fmt.Errorf("the header's column %d %s; save the file as UTF-8 CSV", i+1, bad)
		}
		t.header = append(t.header, h)
		if _, dup := t.cols[strings.ToLower(h)]; !dup {
			t.cols[strings.ToLower(h)] = i
		}
	}
	cr.want = len(header)
	return t, nil
}

// column names a 1-based field of the header ("column 7" past its end).
func (t *csvTable) column(field int) string {
	if field >= 1 && field <= len(t.header) && t.header[field-1] != "" {
		return t.header[field-1]
	}
	if field <= 0 {
		return ""
	}
	return fmt.Sprintf("column %d", field)
}

// next returns the next record and its 1-based line. A malformed record is
// returned as a *recordError the caller reports and skips; any other error
// ends the file.
func (t *csvTable) next() ([]string, int, error) {
	rec, line, err := t.r.next()
	if err == io.EOF {
		return nil, line, err
	}
	t.rows++
	if t.rows > t.max {
		return nil, line, fmt.Errorf("%w: more than %d rows", ErrTooLarge, t.max)
	}
	return rec, line, err
}

// eachRow reads t to its end, calling fn with every well-formed record and
// its line. Each record counts as a row; a malformed one (broken quoting,
// a cell that is not UTF-8 or holds a NUL byte) is counted as rejected and
// reported with its line and column, and reading goes on. Any other error
// ends the file.
func (im *Importer) eachRow(file string, t *csvTable, sum *FileSummary, fn func(rec []string, line int)) error {
	for {
		rec, line, err := t.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var re *recordError
			if errors.As(err, &re) {
				sum.Rows++
				sum.Rejected++
				im.rowError(file, re.line, t.column(re.field), "malformed CSV: %s", re.msg)
				continue
			}
			return err
		}
		sum.Rows++
		if col, bad := badCells(rec); bad != "" {
			sum.Rejected++
			im.rowError(file, line, t.column(col), "the cell %s; the row is not imported", bad)
			continue
		}
		unescapeFormulas(rec)
		fn(rec, line)
	}
}

func (t *csvTable) has(col string) bool { _, ok := t.cols[strings.ToLower(col)]; return ok }

// get returns a cell by column name ("" when the column or cell is missing).
func (t *csvTable) get(rec []string, col string) string {
	i, ok := t.cols[strings.ToLower(col)]
	if !ok || i >= len(rec) {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

var digitSeparators = strings.NewReplacer(",", "", " ", "", "\u00a0", "")

// parseNumber accepts "8192", "8,192", "8 192" and "8192.0".
func parseNumber(s string) (float64, error) {
	s = digitSeparators.Replace(s)
	return strconv.ParseFloat(s, 64)
}

// cellErr is one rejected cell.
type cellErr struct{ col, reason string }

// cells parses typed cells of one row, collecting errors instead of
// stopping at the first, so a user fixes a row in one go.
type cells struct{ errs []cellErr }

func (c *cells) fail(col, format string, a ...any) {
	c.errs = append(c.errs, cellErr{col, fmt.Sprintf(format, a...)})
}

func (c *cells) int(col, s string, lo, hi int64) int64 {
	if s == "" {
		return 0
	}
	f, err := parseNumber(s)
	if err != nil || f != float64(int64(f)) {
		c.fail(col, "%q is not a whole number", s)
		return 0
	}
	if int64(f) < lo || int64(f) > hi {
		c.fail(col, "%d is outside %d..%d", int64(f), lo, hi)
		return 0
	}
	return int64(f)
}

func (c *cells) float(col, s string, lo, hi float64) *float64 {
	if s == "" {
		return nil
	}
	f, err := parseNumber(s)
	if err != nil {
		c.fail(col, "%q is not a number", s)
		return nil
	}
	if f < lo || f > hi {
		c.fail(col, "%v is outside %v..%v", f, lo, hi)
		return nil
	}
	return &f
}

func (c *cells) enum(col, s string, allowed map[string]bool) string {
	s = strings.ToLower(s)
	if s == "" || allowed[s] {
		return s
	}
	var keys []string
	for k := range allowed {
		keys = append(keys, k)
	}
	sortStrings(keys)
	c.fail(col, "%q is not one of %s", s, strings.Join(keys, ", "))
	return ""
}

func (c *cells) ips(col string, vals []string) []string {
	var out []string
	for _, v := range vals {
		a, err := netip.ParseAddr(v)
		if err != nil {
			c.fail(col, "%q is not an IP address", v)
			continue
		}
		out = append(out, a.Unmap().String())
	}
	return out
}

func (c *cells) macs(col string, vals []string) []string {
	var out []string
	for _, v := range vals {
		m := discovery.CanonicalMAC(v)
		if m == "" {
			c.fail(col, "%q is not a MAC address", v)
			continue
		}
		out = append(out, m)
	}
	return out
}

func (c *cells) uuid(col, s string) string {
	if s == "" {
		return ""
	}
	if discovery.CanonicalUUID(s) == "" {
		c.fail(col, "%q is not a UUID", s)
		return ""
	}
	return strings.ToLower(s)
}

func splitList(s string, seps string) []string {
	var out []string
	for _, v := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(seps, r) }) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

const gib = 1 << 30

func (im *Importer) csvRef(v string) string { return "csv:" + im.batch + ":" + strings.ToLower(v) }

func (im *Importer) hostsCSV(file string, r io.Reader, sum *FileSummary) error {
	t, err := openCSV(file, r, im.limits.MaxRows, false)
	if err != nil {
		return err
	}
	if !t.has("name") {
		return fmt.Errorf("header has no name column; the template header is %s", strings.Join(HostsCSVHeader, ","))
	}
	src := im.source(discovery.SourceCSV, file)
	return im.eachRow(file, t, sum, func(rec []string, line int) {
		name := t.get(rec, "name")
		if name == "" {
			sum.Rejected++
			im.rowError(file, line, "name", "a host needs a name")
			return
		}
		var c cells
		f := discovery.HostFacts{
			Name: name, FQDN: t.get(rec, "fqdn"), OS: t.get(rec, "os"),
			Arch: t.get(rec, "arch"), Application: t.get(rec, "application"), Owner: t.get(rec, "owner"),
			Virtualization: strings.ToLower(t.get(rec, "virtualization")),
		}
		f.IPs = c.ips("ip", splitList(t.get(rec, "ip"), ";"))
		f.MACs = c.macs("mac", splitList(t.get(rec, "mac"), ";"))
		f.BIOSUUID = c.uuid("bios_uuid", t.get(rec, "bios_uuid"))
		f.OSFamily = c.enum("os_family", t.get(rec, "os_family"), osFamilies)
		f.BootMode = c.enum("boot_mode", t.get(rec, "boot_mode"), bootModes)
		f.CPUs = int(c.int("cpus", t.get(rec, "cpus"), 0, 4096))
		f.MemoryMiB = c.int("memory_mib", t.get(rec, "memory_mib"), 0, 64<<20)
		f.Environment = c.enum("environment", t.get(rec, "environment"), environments)
		f.Criticality = c.enum("criticality", t.get(rec, "criticality"), criticalities)
		f.Tags = splitList(t.get(rec, "tags"), ";")
		f.CPUP95 = c.float("cpu_p95", t.get(rec, "cpu_p95"), 0, 100)
		f.MemoryP95 = c.float("memory_p95", t.get(rec, "memory_p95"), 0, 100)
		count := c.int("disk_count", t.get(rec, "disk_count"), 0, 64)
		prov := c.float("disk_provisioned_gib", t.get(rec, "disk_provisioned_gib"), 0, 1<<30)
		used := c.float("disk_used_gib", t.get(rec, "disk_used_gib"), 0, 1<<30)
		if prov != nil && used != nil && *used > *prov {
			c.fail("disk_used_gib", "%v GiB used is more than the %v GiB provisioned", *used, *prov)
			used = nil
		}
		if prov != nil && *prov > 0 {
			if count == 0 {
				count = 1
			}
			for i := int64(0); i < count; i++ {
				d := discovery.Disk{Name: fmt.Sprintf("disk%d", i), ProvisionedBytes: int64(*prov * gib / float64(count))}
				if used != nil {
					d.UsedBytes = int64(*used * gib / float64(count))
				}
				f.Disks = append(f.Disks, d)
			}
		}
		if len(c.errs) > 0 {
			// A row is taken whole or not at all: a host half-described
			// would be planned on guesses.
			sum.Rejected++
			for _, e := range c.errs {
				im.rowError(file, line, e.col, "%s", e.reason)
			}
			return
		}
		refs := []string{im.csvRef(name)}
		if id := t.get(rec, "id"); id != "" {
			refs = append(refs, im.csvRef(id))
		}
		for _, ref := range refs {
			im.fileRefs[im.refKey(ref)] = true
		}
		im.addRecord(discovery.Record{Source: src, Refs: refs, HostFacts: f})
		sum.Accepted++
	})
}

// pendingConn waits for Finish, when every hosts CSV of the import is known.
type pendingConn struct {
	File string                       `json:"file"`
	Line int                          `json:"line"`
	Conn discovery.ObservedConnection `json:"conn"`
	Src  string                       `json:"src"`
	Dst  string                       `json:"dst,omitempty"`
}

func (im *Importer) connectionsCSV(file string, r io.Reader, sum *FileSummary) error {
	t, err := openCSV(file, r, im.limits.MaxRows, false)
	if err != nil {
		return err
	}
	for _, col := range []string{"src", "port"} {
		if !t.has(col) {
			return fmt.Errorf("header has no %s column; the template header is %s", col, strings.Join(ConnectionsCSVHeader, ","))
		}
	}
	src := im.source(discovery.SourceCSV, file)
	return im.eachRow(file, t, sum, func(rec []string, line int) {
		var c cells
		oc := discovery.ObservedConnection{Source: src, Process: t.get(rec, "process")}
		s, d, addr := t.get(rec, "src"), t.get(rec, "dst"), t.get(rec, "dst_address")
		if s == "" {
			c.fail("src", "src is required (an id or name from hosts.csv)")
		}
		if d == "" && addr == "" {
			c.fail("dst", "either dst (a host of hosts.csv) or dst_address is required")
		}
		oc.Port = int(c.int("port", t.get(rec, "port"), 0, 65535))
		if oc.Port == 0 && t.get(rec, "port") != "0" {
			c.fail("port", "port is required (1..65535)")
		}
		oc.Protocol = c.enum("protocol", t.get(rec, "protocol"), protocols)
		if oc.Protocol == "" {
			oc.Protocol = "tcp"
		}
		oc.Count = c.int("count", t.get(rec, "count"), 0, 1<<62)
		oc.Bytes = c.int("bytes", t.get(rec, "bytes"), 0, 1<<62)
		if oc.Count == 0 {
			oc.Count = 1
		}
		oc.Dst.Address = addr
		if len(c.errs) > 0 {
			sum.Rejected++
			for _, e := range c.errs {
				im.rowError(file, line, e.col, "%s", e.reason)
			}
			return
		}
		im.addPending(pendingConn{File: file, Line: line, Conn: oc, Src: s, Dst: d})
		sum.Accepted++
	})
}

// finishCSVConnections binds src/dst to the hosts CSVs of this import. A
// name no hosts CSV declares is still kept as a name, so a connections.csv
// imported together with RVTools or agents can refer to their hosts.
func (im *Importer) finishCSVConnections() {
	next := func() (pendingConn, bool) {
		if len(im.csvConns) > 0 {
			p := im.csvConns[0]
			im.csvConns = im.csvConns[1:]
			return p, true
		}
		return pendingConn{}, false
	}
	if im.spool != nil {
		im.fail(im.pending.rewind())
		next = func() (pendingConn, bool) {
			var p pendingConn
			err := im.pending.next(&p)
			if err != io.EOF {
				im.fail(err)
			}
			return p, err == nil
		}
	}
	for p, ok := next(); ok; p, ok = next() {
		c := p.Conn
		c.Src = im.csvEndpoint(p.Src)
		if p.Dst != "" {
			c.Dst.Ref, c.Dst.Name = im.csvEndpoint(p.Dst).Ref, p.Dst
		}
		if len(im.csvRefs) > 0 && c.Src.Ref == "" {
			im.rowError(p.File, p.Line, "src", "%q is not an id or name in the hosts CSV", p.Src)
			im.adjustSummary(p.File)
			continue
		}
		im.addConnection(c)
	}
	im.csvConns = nil
}

func (im *Importer) csvEndpoint(v string) discovery.Endpoint {
	if ref := im.csvRef(v); im.csvRefs[im.refKey(ref)] {
		// The name too: refs are kept hashed, so should two ever collide
		// the normaliser still finds the host by name.
		return discovery.Endpoint{Ref: ref, Name: v}
	}
	return discovery.Endpoint{Name: v}
}

func (im *Importer) adjustSummary(file string) {
	for i := range im.res.Files {
		if im.res.Files[i].File == file {
			im.res.Files[i].Accepted--
			im.res.Files[i].Rejected++
			return
		}
	}
}
