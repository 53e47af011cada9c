package ingest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/application"
	"github.com/ferry-migrate/ferry/ent/connection"
	"github.com/ferry-migrate/ferry/ent/disk"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/software"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// chunk is the part of a batch that one transaction merges.
type chunk struct {
	records []discovery.Record
	conns   []discovery.ObservedConnection
	anchors map[string]int
	known   *knownConns // the batch's view of stored connections
	tenant  int
}

// merged says what one chunk changed.
type merged struct {
	hostOfRecord []int // ent host id per chunk record
	created      []int // ids of the hosts created
	updated      []int // ids of the hosts updated
	conns        int   // connections stored (new or seen again)
}

// merge stores one chunk inside transaction c. Records are merged with the
// hosts already stored through discovery.Normalise, so the identity and
// trust rules are the normaliser's.
func merge(ctx context.Context, c *ent.Client, ch chunk, x *identityIndex, now time.Time) (*merged, error) {
	// Under the write lock only hosts created since are read (a primary
	// key range, not a scan for updated_at): an identity another writer
	// edited since the last refresh (at most refreshEvery ago, during a
	// long batch) is the one thing this can miss.
	if err := x.refreshNew(ctx, c); err != nil {
		return nil, err
	}
	existing, err := candidates(ctx, c, ch, x)
	if err != nil {
		return nil, err
	}
	anchorOf := make(map[int]string, len(ch.anchors))
	for a, id := range ch.anchors {
		anchorOf[id] = a
	}
	records := make([]discovery.Record, 0, len(existing)+len(ch.records))
	for _, h := range existing {
		r := recordOf(h)
		r.Anchor = anchorOf[h.ID]
		records = append(records, r)
	}
	base := len(records)
	records = append(records, ch.records...)
	res := discovery.Normalise(records, ch.conns)

	out := &merged{hostOfRecord: make([]int, len(ch.records))}
	w := &writer{c: c, ctx: viewer.SystemContext(ctx), tenant: ch.tenant}
	hostID := map[string]int{} // normalised id → ent id
	var apps *appCache
	var creates []*ent.HostCreate
	var createFor []discovery.Host
	for _, nh := range res.Hosts {
		dbID, fresh := 0, false
		for _, m := range nh.Members {
			if m < base {
				if dbID == 0 {
					dbID = existing[m].ID
				}
			} else {
				fresh = true
			}
		}
		if !fresh {
			if dbID != 0 {
				hostID[nh.ID] = dbID
			}
			continue
		}
		if apps == nil {
			if apps, err = applications(ctx, c); err != nil {
				return nil, err
			}
		}
		appID, err := apps.id(ctx, nh.Application)
		if err != nil {
			return nil, err
		}
		if dbID == 0 {
			cr := c.Host.Create().SetTenantID(ch.tenant)
			setFacts(cr.Mutation(), nh, appID, now)
			creates = append(creates, cr)
			createFor = append(createFor, nh)
			continue
		}
		// Update, not UpdateOne: no read of the row back.
		up := c.Host.Update().Where(host.ID(dbID), host.TenantID(ch.tenant))
		setFacts(up.Mutation(), nh, appID, now)
		if n, err := up.Save(w.ctx); err != nil {
			return nil, fmt.Errorf("update host %s: %w", nh.Name, err)
		} else if n != 1 {
			return nil, fmt.Errorf("update host %s: host %d is gone", nh.Name, dbID)
		}
		hostID[nh.ID] = dbID
		out.updated = append(out.updated, dbID)
		x.learn(dbID, nh)
		if err := w.details(dbID, false, nh, records, base); err != nil {
			return nil, err
		}
	}
	for start := 0; start < len(creates); start += bulkRows {
		end := min(start+bulkRows, len(creates))
		hs, err := c.Host.CreateBulk(creates[start:end]...).Save(w.ctx)
		if err != nil {
			return nil, fmt.Errorf("create hosts: %w", err)
		}
		for i, h := range hs {
			nh := createFor[start+i]
			hostID[nh.ID] = h.ID
			out.created = append(out.created, h.ID)
			x.learn(h.ID, nh)
			if err := w.details(h.ID, true, nh, records, base); err != nil {
				return nil, err
			}
		}
	}
	if err := w.flush(); err != nil {
		return nil, err
	}
	for _, nh := range res.Hosts {
		for _, m := range nh.Members {
			if m >= base {
				out.hostOfRecord[m-base] = hostID[nh.ID]
			}
		}
	}
	if out.conns, err = storeConnections(ctx, w, res.Connections, hostID, ch.known, now); err != nil {
		return nil, err
	}
	return out, nil
}

// candidates loads the stored hosts a batch can touch: those sharing an
// identity key (BIOS UUID, MAC, short name, IP) with one of its records,
// those its connections name by ref, address or name, and, one step
// further, hosts sharing a key with those. Only their identity columns
// are read for the whole tenant; details are loaded for the candidates
// alone, so an agent's inventory costs a narrow scan, not a load of the
// estate, while the merge comes out as if every host had been considered
// (stored hosts are already merged among themselves).
func candidates(ctx context.Context, c *ent.Client, ch chunk, x *identityIndex) ([]*ent.Host, error) {
	extra := make([]int, 0, len(ch.anchors))
	for _, id := range ch.anchors {
		extra = append(extra, id)
	}
	x.mu.Lock()
	ids, total := x.match(ch.records, ch.conns, extra)
	x.mu.Unlock()
	if len(ids) == 0 {
		return nil, nil
	}
	q := func() *ent.HostQuery {
		q := c.Host.Query().Order(ent.Asc(host.FieldID))
		if len(ch.records) > 0 {
			// Only a merge needs a host's disks and application; resolving
			// connections needs its names and addresses.
			q = q.WithDisks().WithApplication()
		}
		return q
	}
	if len(ids) >= total/2 {
		hs, err := q().All(ctx)
		if err != nil {
			return nil, fmt.Errorf("load hosts: %w", err)
		}
		out := hs[:0]
		for _, h := range hs {
			if ids[h.ID] {
				out = append(out, h)
			}
		}
		return out, nil
	}
	list := make([]int, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	sort.Ints(list)
	var out []*ent.Host
	// In pages, so that neither the IN list nor the eager load of disks
	// (host ids again) passes SQLite's parameter limit.
	for start := 0; start < len(list); start += bulkRows {
		hs, err := q().Where(host.IDIn(list[start:min(start+bulkRows, len(list))]...)).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("load hosts: %w", err)
		}
		out = append(out, hs...)
	}
	return out, nil
}

// recordOf presents a stored host to the normaliser as one more source,
// with the trust of the source it came from. It carries no observation
// time: among sources of equal trust the batch being applied is the newer
// word, whatever the clock of the agent or importer that stamped it (the
// row's updated_at is the server's clock and would let a stored fact
// outlive every later report from an agent whose clock lags).
func recordOf(h *ent.Host) discovery.Record {
	r := discovery.Record{
		Source: discovery.SourceRef{Kind: h.Source, Name: "stored"},
		Refs:   []string{"db:" + strconv.Itoa(h.ID)},
	}
	f := &r.HostFacts
	f.Name, f.FQDN, f.IPs, f.MACs, f.BIOSUUID = h.Name, h.Fqdn, h.Ips, h.Macs, h.BiosUUID
	f.InstanceUUID, f.OS, f.OSFamily, f.Arch = h.ExternalID, h.Os, h.OsFamily, h.Arch
	if h.BootMode != host.BootModeUnknown {
		f.BootMode = string(h.BootMode)
	}
	f.CPUs, f.MemoryMiB, f.PowerState, f.Virtualization = h.Cpus, h.MemoryMib, h.PowerState, h.Virtualization
	if h.Environment != host.EnvironmentUnknown {
		f.Environment = string(h.Environment)
	}
	if h.Criticality != host.CriticalityUnknown {
		f.Criticality = string(h.Criticality)
	}
	f.Owner, f.Tags, f.CPUP95, f.MemoryP95, f.PinnedWave = h.Owner, h.Tags, h.CPUP95, h.MemoryP95, h.PinnedWave
	if h.Edges.Application != nil {
		f.Application = h.Edges.Application.Name
	}
	for _, d := range h.Edges.Disks {
		f.Disks = append(f.Disks, discovery.Disk{Name: d.Name, ProvisionedBytes: d.SizeBytes, UsedBytes: d.UsedBytes})
	}
	if len(f.Disks) == 0 {
		f.UsedBytes = h.DiskUsedBytes
	}
	return r
}

// setFacts writes merged facts onto a host mutation (create or update).
func setFacts(m *ent.HostMutation, nh discovery.Host, appID int, now time.Time) {
	f := nh.HostFacts
	name := f.Name
	if name == "" {
		name = firstNonEmpty(f.FQDN, first(f.IPs), first(f.MACs), f.BIOSUUID, "unnamed")
	}
	m.SetName(truncate(name, 255))
	m.SetFqdn(truncate(f.FQDN, 255))
	m.SetExternalID(truncate(f.InstanceUUID, 255))
	m.SetBiosUUID(truncate(f.BIOSUUID, 64))
	m.SetOs(truncate(f.OS, 200))
	m.SetOsFamily(truncate(f.OSFamily, 32))
	m.SetArch(truncate(f.Arch, 32))
	if bm := host.BootMode(f.BootMode); host.BootModeValidator(bm) == nil {
		m.SetBootMode(bm)
	}
	m.SetCpus(max(f.CPUs, 0))
	m.SetMemoryMib(max(f.MemoryMiB, 0))
	var prov, used int64
	for _, d := range f.Disks {
		prov += max(d.ProvisionedBytes, 0)
		used += max(d.UsedBytes, 0)
	}
	if used == 0 {
		used = max(f.UsedBytes, 0)
	}
	m.SetDiskProvisionedBytes(prov)
	m.SetDiskUsedBytes(used)
	m.SetVirtualization(truncate(f.Virtualization, 32))
	m.SetPowerState(f.PowerState)
	if len(nh.Sources) > 0 {
		m.SetSource(truncate(kindOf(nh.Sources), 32))
	}
	if e := host.Environment(f.Environment); host.EnvironmentValidator(e) == nil {
		m.SetEnvironment(e)
	}
	if cr := host.Criticality(f.Criticality); host.CriticalityValidator(cr) == nil {
		m.SetCriticality(cr)
	}
	m.SetOwner(truncate(f.Owner, 200))
	m.SetTags(cleanAll(f.Tags))
	m.SetIps(f.IPs)
	m.SetMacs(f.MACs)
	if f.CPUP95 != nil {
		m.SetCPUP95(*f.CPUP95)
	}
	if f.MemoryP95 != nil {
		m.SetMemoryP95(*f.MemoryP95)
	}
	m.SetPinnedWave(max(f.PinnedWave, 0))
	m.SetLastSeenAt(now)
	if appID != 0 {
		m.SetApplicationID(appID)
	}
}

// kindOf returns the most trusted source kind among "kind:name@time" strings.
func kindOf(sources []string) string {
	best, rank := "", 1<<30
	order := map[string]int{"agent": 0, "vcenter": 1, "rvtools": 2, "csv": 3, "estate": 4, "capture": 5}
	for _, s := range sources {
		k, _, _ := strings.Cut(s, ":")
		if k == "stored" || k == "" {
			continue
		}
		r, ok := order[k]
		if !ok {
			r = 6
		}
		if r < rank {
			best, rank = k, r
		}
	}
	if best == "" {
		return "manual"
	}
	return best
}

// writer stores a chunk's rows. Writes run as the system viewer with the
// tenant set on every row (and in every update's and delete's filter):
// the tenant hook's per-row check that a linked host is the tenant's would
// cost one query per disk, package and connection, and every host id here
// comes from this tenant's candidates (read under the tenant filter) or
// was created in this transaction with the tenant set. Reads stay in the
// tenant's context. internal/planning's writer does the same.
type writer struct {
	c      *ent.Client
	ctx    context.Context
	tenant int
	disks  []*ent.DiskCreate
	soft   []*ent.SoftwareCreate
	// Hosts whose disks or software are replaced: deleted before the
	// new rows of the same flush are inserted.
	clearDisks, clearSoftware []int
}

// details queues a host's disks and software for replacement with the
// merged view when a new record in the chunk says something about them.
// A host just created has none to delete.
func (w *writer) details(id int, created bool, nh discovery.Host, records []discovery.Record, base int) error {
	newDisks, newSoftware := false, false
	for _, m := range nh.Members {
		if m >= base {
			newDisks = newDisks || len(records[m].Disks) > 0
			newSoftware = newSoftware || len(records[m].Software) > 0
		}
	}
	if newDisks {
		if !created {
			w.clearDisks = append(w.clearDisks, id)
		}
		for i, d := range nh.Disks {
			name := d.Name
			if name == "" {
				name = fmt.Sprintf("disk%d", i)
			}
			w.disks = append(w.disks, w.c.Disk.Create().SetTenantID(w.tenant).SetHostID(id).SetName(truncate(name, 128)).
				SetSizeBytes(max(d.ProvisionedBytes, 0)).SetUsedBytes(max(d.UsedBytes, 0)))
		}
	}
	if newSoftware {
		if !created {
			w.clearSoftware = append(w.clearSoftware, id)
		}
		for _, s := range nh.Software {
			if s = truncate(s, 255); s != "" {
				w.soft = append(w.soft, w.c.Software.Create().SetTenantID(w.tenant).SetHostID(id).SetName(s).SetKind(softwareKind(s)))
			}
		}
	}
	if len(w.disks)+len(w.soft) >= 4*bulkRows {
		return w.flush()
	}
	return nil
}

// flush writes what is queued: deletes first, then inserts of at most
// bulkRows rows a statement.
func (w *writer) flush() error {
	for start := 0; start < len(w.clearDisks); start += bulkRows {
		// On the foreign key column itself, so SQLite uses its index
		// rather than a subquery over hosts.
		ids := w.clearDisks[start:min(start+bulkRows, len(w.clearDisks))]
		if _, err := w.c.Disk.Delete().Where(disk.TenantID(w.tenant), sql.FieldIn(disk.HostColumn, ids...)).Exec(w.ctx); err != nil {
			return fmt.Errorf("replace disks: %w", err)
		}
	}
	for start := 0; start < len(w.clearSoftware); start += bulkRows {
		ids := w.clearSoftware[start:min(start+bulkRows, len(w.clearSoftware))]
		if _, err := w.c.Software.Delete().Where(software.TenantID(w.tenant), sql.FieldIn(software.HostColumn, ids...)).Exec(w.ctx); err != nil {
			return fmt.Errorf("replace software: %w", err)
		}
	}
	for start := 0; start < len(w.disks); start += bulkRows {
		if err := w.c.Disk.CreateBulk(w.disks[start:min(start+bulkRows, len(w.disks))]...).Exec(w.ctx); err != nil {
			return fmt.Errorf("store disks: %w", err)
		}
	}
	for start := 0; start < len(w.soft); start += bulkRows {
		if err := w.c.Software.CreateBulk(w.soft[start:min(start+bulkRows, len(w.soft))]...).Exec(w.ctx); err != nil {
			return fmt.Errorf("store software: %w", err)
		}
	}
	w.clearDisks, w.clearSoftware, w.disks, w.soft = w.clearDisks[:0], w.clearSoftware[:0], w.disks[:0], w.soft[:0]
	return nil
}

func softwareKind(name string) string {
	switch n := strings.ToLower(name); {
	case strings.Contains(n, "db2"), strings.Contains(n, "oracle"), strings.Contains(n, "mysql"), strings.Contains(n, "mariadb"),
		strings.Contains(n, "postgres"), strings.Contains(n, "sql server"), strings.Contains(n, "mongo"):
		return "database"
	case strings.Contains(n, "redis"), strings.Contains(n, "memcache"):
		return "cache"
	case strings.Contains(n, "nginx"), strings.Contains(n, "apache"), strings.Contains(n, "httpd"), strings.Contains(n, "iis"):
		return "webserver"
	}
	return "middleware"
}

type connKey struct {
	src, dst int
	addr     string
	port     int
	proto    string
}

// knownConns caches, for one batch, the stored connections of the hosts
// its chunks connected from, so that each chunk asks only for the rows
// added since the previous one instead of reading a host's connections
// again (an agent reporting 50,000 connections, stored in chunks, would
// otherwise read its own rows back quadratically).
type knownConns struct {
	rows   map[connKey]knownConn
	loaded map[int]bool // source hosts read in full
	mark   int          // every connection id up to this one has been read
}

type knownConn struct {
	id           int
	count, bytes int64
	process      string
}

func (k *knownConns) add(r *ent.Connection) {
	k.rows[connKey{r.SrcHostID, deref(r.DstHostID), r.DstAddress, r.Port, string(r.Protocol)}] =
		knownConn{id: r.ID, count: r.Count, bytes: r.Bytes, process: r.Process}
}

// load brings the rows of srcs up to date: in full for hosts not seen
// before, and rows above the mark for the others (rows written since by
// this batch or anyone else). The mark is taken first, so nothing written
// during the reads is missed next time.
func (k *knownConns) load(ctx context.Context, c *ent.Client, srcs []int) error {
	if k.rows == nil {
		k.rows, k.loaded = map[connKey]knownConn{}, map[int]bool{}
	}
	mark, err := c.Connection.Query().Aggregate(ent.Max(connection.FieldID)).Int(ctx)
	if err != nil && !ent.IsNotFound(err) {
		// An empty table has no maximum: NULL, which does not scan into an int.
		if !strings.Contains(err.Error(), "converting NULL") {
			return fmt.Errorf("load connections: %w", err)
		}
	}
	var fresh, seen []int
	for _, id := range srcs {
		if k.loaded[id] {
			seen = append(seen, id)
		} else {
			fresh = append(fresh, id)
		}
	}
	for _, part := range []struct {
		ids   []int
		since bool
	}{{seen, true}, {fresh, false}} {
		for start := 0; start < len(part.ids); start += bulkRows {
			q := c.Connection.Query().Where(connection.SrcHostIDIn(part.ids[start:min(start+bulkRows, len(part.ids))]...))
			if part.since {
				q = q.Where(connection.IDGT(k.mark))
			}
			rows, err := q.All(ctx)
			if err != nil {
				return fmt.Errorf("load connections: %w", err)
			}
			for _, r := range rows {
				k.add(r)
			}
		}
	}
	for _, id := range fresh {
		k.loaded[id] = true
	}
	k.mark = max(k.mark, mark)
	return nil
}

// storeConnections upserts dependencies: a connection seen again keeps the
// larger count and byte total (re-importing a capture does not double it)
// and moves last_seen forward.
func storeConnections(ctx context.Context, w *writer, conns []discovery.HostConnection, hostID map[string]int, known *knownConns, now time.Time) (int, error) {
	c := w.c
	if len(conns) == 0 {
		return 0, nil
	}
	srcs := map[int]bool{}
	for _, hc := range conns {
		if id := hostID[hc.Src]; id != 0 {
			srcs[id] = true
		}
	}
	ids := make([]int, 0, len(srcs))
	for id := range srcs {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	if err := known.load(ctx, c, ids); err != nil {
		return 0, err
	}
	var bulk []*ent.ConnectionCreate
	n := 0
	seen := map[connKey]bool{}
	for _, hc := range conns {
		src := hostID[hc.Src]
		if src == 0 || hc.Port < 0 || hc.Port > 65535 {
			continue // an inbound client nobody inventoried: kept on the destination side only when known
		}
		dst := hostID[hc.Dst]
		addr := ""
		if dst == 0 {
			addr = truncate(hc.DstAddress, 255)
		}
		proto := connection.Protocol(strings.ToLower(hc.Protocol))
		if connection.ProtocolValidator(proto) != nil {
			proto = connection.ProtocolTCP
		}
		k := connKey{src, dst, addr, hc.Port, string(proto)}
		if seen[k] {
			continue
		}
		seen[k] = true
		n++
		if old, ok := known.rows[k]; ok {
			count, bytes, process := max(old.count, hc.Count), max(old.bytes, hc.Bytes), firstNonEmpty(truncate(hc.Process, 255), old.process)
			err := c.Connection.Update().Where(connection.ID(old.id), connection.TenantID(w.tenant)).
				SetCount(count).SetBytes(bytes).SetLastSeen(now).SetProcess(process).Exec(w.ctx)
			if err != nil {
				return 0, fmt.Errorf("update connection: %w", err)
			}
			known.rows[k] = knownConn{id: old.id, count: count, bytes: bytes, process: process}
			continue
		}
		cr := c.Connection.Create().SetTenantID(w.tenant).SetSrcHostID(src).SetPort(hc.Port).SetProtocol(proto).SetProcess(truncate(hc.Process, 255)).
			SetCount(max(hc.Count, 1)).SetBytes(max(hc.Bytes, 0)).SetFirstSeen(now).SetLastSeen(now).SetDstAddress(addr)
		if dst != 0 {
			cr.SetDstHostID(dst)
		}
		bulk = append(bulk, cr)
		if len(bulk) == bulkRows {
			if err := c.Connection.CreateBulk(bulk...).Exec(w.ctx); err != nil {
				return 0, fmt.Errorf("store connections: %w", err)
			}
			bulk = bulk[:0]
		}
	}
	if len(bulk) > 0 {
		if err := c.Connection.CreateBulk(bulk...).Exec(w.ctx); err != nil {
			return 0, fmt.Errorf("store connections: %w", err)
		}
	}
	return n, nil
}

// appCache finds or creates applications by name within the transaction.
type appCache struct {
	c   *ent.Client
	ids map[string]int
}

func applications(ctx context.Context, c *ent.Client) (*appCache, error) {
	all, err := c.Application.Query().Select(application.FieldID, application.FieldName).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load applications: %w", err)
	}
	a := &appCache{c: c, ids: map[string]int{}}
	for _, x := range all {
		a.ids[x.Name] = x.ID
	}
	return a, nil
}

func (a *appCache) id(ctx context.Context, name string) (int, error) {
	name = truncate(strings.TrimSpace(name), 200)
	if name == "" {
		return 0, nil
	}
	if id, ok := a.ids[name]; ok {
		return id, nil
	}
	x, err := a.c.Application.Create().SetName(name).Save(ctx)
	if err != nil {
		return 0, fmt.Errorf("create application %q: %w", name, err)
	}
	a.ids[name] = x.ID
	return x.ID, nil
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// Truncate cleans s (valid UTF-8, no NUL bytes) and cuts it to at most n
// bytes, on a rune boundary: what every text column of discovery stores.
func Truncate(s string, n int) string { return truncate(s, n) }

func truncate(s string, n int) string {
	s = clean(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// clean makes s valid UTF-8 without NUL bytes. Imports refuse such cells
// row by row; this is the last line for every other source (an agent
// reports process and package names byte for byte).
func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

func cleanAll(v []string) []string {
	for i, s := range v {
		if c := clean(s); c != s {
			v = append([]string(nil), v...)
			v[i] = c
		}
	}
	return v
}
