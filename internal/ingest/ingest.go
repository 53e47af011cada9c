// Package ingest stores what discovery finds: it merges importer results and
// agent inventories into a tenant's hosts, disks, software and connections,
// one transaction per batch. It is the one place that translates between
// discovery's plain types and ent rows (the graph, the agent protocol and
// jobs all call it), so the merge rules live once.
package ingest

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/application"
	"github.com/ferry-migrate/ferry/ent/connection"
	"github.com/ferry-migrate/ferry/ent/disk"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/importrun"
	"github.com/ferry-migrate/ferry/ent/software"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// MaxStoredErrors caps the row errors kept on an import run; the count of
// the rest is recorded.
const MaxStoredErrors = 2000

// Batch is one unit of discovery to store.
type Batch struct {
	Kind        string // csv, rvtools, ss, estate, vcenter, agent, …
	Filename    string
	Actor       string
	Records     []discovery.Record
	Connections []discovery.ObservedConnection
	Errors      []discovery.RowError
	Dropped     int // errors the importer did not keep
	RowsTotal   int
	// NoRun stores the batch without an ImportRun row: agents send an
	// inventory every few hours and a run per inventory would bury the
	// imports people made. Outcome.Run is then nil.
	NoRun bool
	// Identities, when set, caches stored hosts' identity keys between
	// batches (see Identities); nil reads them all for this batch.
	Identities *Identities
	// InTx, when set, runs inside the batch's transaction after the merge,
	// so that what the caller links to the outcome (an agent to its host)
	// lands or fails with it. An error rolls the whole batch back and is
	// returned as is.
	InTx func(ctx context.Context, tx *ent.Client, out *Outcome) error
}

// Outcome says what a batch changed, and maps each record to its host.
type Outcome struct {
	Run          *ent.ImportRun
	HostOfRecord []int // ent host id per Batch.Records index
	HostsCreated int
	HostsUpdated int
	Connections  int // connections stored (new or seen again)
}

// Apply merges b into tenantID's inventory in one transaction: either all
// of the batch's good rows land, or (on a database error) none do. Records
// are merged with the hosts already stored through discovery.Normalise, so
// the identity and trust rules are the normaliser's.
func Apply(ctx context.Context, client *ent.Client, tenantID int, b Batch, now time.Time) (*Outcome, error) {
	ctx = viewer.TenantContext(ctx, tenantID)
	// Identities are brought up to date before the write transaction: a
	// read does not hold SQLite's write lock, so heartbeats are not kept
	// waiting while an estate is scanned. Hosts written in between are
	// picked up inside the transaction.
	idx := b.Identities
	if idx == nil {
		idx = &Identities{}
	}
	x := idx.index(tenantID)
	if err := x.refresh(ctx, client); err != nil {
		return nil, err
	}
	tx, err := client.Tx(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin import: %w", err)
	}
	out, err := apply(ctx, tx.Client(), b, x, now)
	if err == nil && b.InTx != nil {
		err = b.InTx(ctx, tx.Client(), out)
	}
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit import: %w", err)
	}
	if out.Run != nil {
		out.Run = out.Run.Unwrap()
	}
	return out, nil
}

func apply(ctx context.Context, c *ent.Client, b Batch, x *identityIndex, now time.Time) (*Outcome, error) {
	// Under the write lock only hosts created since the refresh are read
	// (a primary key range, not a scan for updated_at): an identity edited
	// in the few milliseconds between is the one thing this can miss.
	if err := x.refreshNew(ctx, c); err != nil {
		return nil, err
	}
	existing, err := candidates(ctx, c, b, x)
	if err != nil {
		return nil, err
	}
	records := make([]discovery.Record, 0, len(existing)+len(b.Records))
	for _, h := range existing {
		records = append(records, recordOf(h))
	}
	base := len(records)
	records = append(records, b.Records...)
	res := discovery.Normalise(records, b.Connections)

	apps, err := applications(ctx, c)
	if err != nil {
		return nil, err
	}
	out := &Outcome{HostOfRecord: make([]int, len(b.Records))}
	hostID := map[string]int{} // normalised id → ent id
	created, updated := 0, 0
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
		appID, err := apps.id(ctx, nh.Application)
		if err != nil {
			return nil, err
		}
		if dbID == 0 {
			cr := c.Host.Create()
			setFacts(cr.Mutation(), nh, appID, now)
			creates = append(creates, cr)
			createFor = append(createFor, nh)
			continue
		}
		up := c.Host.UpdateOneID(dbID)
		setFacts(up.Mutation(), nh, appID, now)
		if err := up.Exec(ctx); err != nil {
			return nil, fmt.Errorf("update host %s: %w", nh.Name, err)
		}
		hostID[nh.ID] = dbID
		updated++
		if err := replaceDetails(ctx, c, dbID, false, nh, records, base); err != nil {
			return nil, err
		}
	}
	for start := 0; start < len(creates); start += 500 {
		end := min(start+500, len(creates))
		hs, err := c.Host.CreateBulk(creates[start:end]...).Save(ctx)
		if err != nil {
			return nil, fmt.Errorf("create hosts: %w", err)
		}
		for i, h := range hs {
			nh := createFor[start+i]
			hostID[nh.ID] = h.ID
			if err := replaceDetails(ctx, c, h.ID, true, nh, records, base); err != nil {
				return nil, err
			}
		}
		created += len(hs)
	}
	for _, nh := range res.Hosts {
		for _, m := range nh.Members {
			if m >= base {
				out.HostOfRecord[m-base] = hostID[nh.ID]
			}
		}
	}
	conns, err := storeConnections(ctx, c, res.Connections, hostID, now)
	if err != nil {
		return nil, err
	}
	out.HostsCreated, out.HostsUpdated, out.Connections = created, updated, conns
	if b.NoRun {
		return out, nil
	}
	status := importrun.StatusSucceeded
	if len(b.Errors) > 0 {
		status = importrun.StatusPartial
		if len(b.Records) == 0 && len(b.Connections) == 0 {
			status = importrun.StatusFailed
		}
	}
	errs := make([]map[string]any, 0, min(len(b.Errors), MaxStoredErrors))
	for i, e := range b.Errors {
		if i == MaxStoredErrors {
			break
		}
		errs = append(errs, map[string]any{"file": e.File, "row": e.Row, "column": e.Column, "reason": e.Reason})
	}
	if dropped := b.Dropped + max(0, len(b.Errors)-MaxStoredErrors); dropped > 0 {
		errs = append(errs, map[string]any{"file": "", "row": 0, "column": "", "reason": fmt.Sprintf("%d more errors not shown", dropped)})
	}
	rows := b.RowsTotal
	if rows == 0 {
		rows = len(b.Records) + len(b.Connections) + len(b.Errors)
	}
	run, err := c.ImportRun.Create().SetKind(b.Kind).SetFilename(b.Filename).SetStatus(status).
		SetRowsTotal(rows).SetRowsImported(len(b.Records) + len(b.Connections)).
		SetHostsCreated(created).SetHostsUpdated(updated).SetConnectionsImported(conns).
		SetErrors(errs).SetActor(b.Actor).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("record import: %w", err)
	}
	out.Run = run
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
func candidates(ctx context.Context, c *ent.Client, b Batch, x *identityIndex) ([]*ent.Host, error) {
	x.mu.Lock()
	ids, total := x.match(b)
	x.mu.Unlock()
	if len(ids) == 0 {
		return nil, nil
	}
	q := c.Host.Query().WithDisks().WithApplication().Order(ent.Asc(host.FieldID))
	if len(ids) < total/2 {
		list := make([]int, 0, len(ids))
		for id := range ids {
			list = append(list, id)
		}
		q = q.Where(host.IDIn(list...))
	}
	hs, err := q.All(ctx)
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

// match returns the ids of the hosts a batch can touch (see candidates)
// and how many hosts the index knows. Call with x.mu held.
func (x *identityIndex) match(b Batch) (map[int]bool, int) {
	want := map[string]bool{}
	ids := map[int]bool{}
	for i := range b.Records {
		for _, k := range identityKeys(b.Records[i].Name, b.Records[i].FQDN, b.Records[i].BIOSUUID, b.Records[i].IPs, b.Records[i].MACs) {
			want[k] = true
		}
	}
	for _, oc := range b.Connections {
		for _, e := range []discovery.Endpoint{oc.Src, oc.Dst} {
			if id, ok := strings.CutPrefix(e.Ref, "db:"); ok {
				if n, err := strconv.Atoi(id); err == nil {
					ids[n] = true
				}
			}
			for _, k := range endpointKeys(e) {
				want[k] = true
			}
		}
	}
	for round := 0; round < 2; round++ {
		var grown []string
		for id, keys := range x.keys {
			if ids[id] {
				continue
			}
			for _, k := range keys {
				if want[k] {
					ids[id] = true
					grown = append(grown, keys...)
					break
				}
			}
		}
		for _, k := range grown {
			if strings.HasPrefix(k, "ip:") {
				continue // an IP alone never merges differently named hosts: no further step through it
			}
			want[k] = true
		}
	}
	return ids, len(x.keys)
}

// Identities caches, per tenant, the identity keys of the stored hosts, so
// that a batch finds the hosts it can touch without reading every host:
// each use reads only the hosts updated since the last one (updated_at
// moves on every write; a margin covers clock jitter). Deleted hosts may
// linger as keys; they only cost a lookup that finds nothing. The zero
// value is ready to use; share one per database.
type Identities struct {
	mu      sync.Mutex
	tenants map[int]*identityIndex
}

type identityIndex struct {
	mu    sync.Mutex
	keys  map[int][]string // host id → identity keys
	since time.Time        // newest updated_at read
}

// refreshMargin re-reads hosts updated this long before the newest one seen.
const refreshMargin = time.Second

func (s *Identities) index(tenantID int) *identityIndex {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tenants == nil {
		s.tenants = map[int]*identityIndex{}
	}
	x := s.tenants[tenantID]
	if x == nil {
		x = &identityIndex{keys: map[int][]string{}}
		s.tenants[tenantID] = x
	}
	return x
}

// refreshNew reads the identity columns of hosts with an id above every id
// the index knows.
func (x *identityIndex) refreshNew(ctx context.Context, c *ent.Client) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	maxID := 0
	for id := range x.keys {
		maxID = max(maxID, id)
	}
	hs, err := c.Host.Query().Where(host.IDGT(maxID)).
		Select(host.FieldID, host.FieldName, host.FieldFqdn, host.FieldBiosUUID, host.FieldIps, host.FieldMacs).All(ctx)
	if err != nil {
		return fmt.Errorf("load host identities: %w", err)
	}
	for _, h := range hs {
		x.keys[h.ID] = identityKeys(h.Name, h.Fqdn, h.BiosUUID, h.Ips, h.Macs)
	}
	return nil
}

// refresh reads the identity columns of hosts changed since the last
// refresh (all of them the first time).
func (x *identityIndex) refresh(ctx context.Context, c *ent.Client) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	q := c.Host.Query()
	if !x.since.IsZero() {
		q = q.Where(host.UpdatedAtGTE(x.since.Add(-refreshMargin)))
	}
	hs, err := q.Select(host.FieldID, host.FieldName, host.FieldFqdn, host.FieldBiosUUID, host.FieldIps, host.FieldMacs, host.FieldUpdatedAt).All(ctx)
	if err != nil {
		return fmt.Errorf("load host identities: %w", err)
	}
	for _, h := range hs {
		x.keys[h.ID] = identityKeys(h.Name, h.Fqdn, h.BiosUUID, h.Ips, h.Macs)
		if h.UpdatedAt.After(x.since) {
			x.since = h.UpdatedAt
		}
	}
	return nil
}

// identityKeys are the keys the normaliser merges hosts by, prefixed by kind.
func identityKeys(name, fqdn, bios string, ips, macs []string) []string {
	var ks []string
	if u := discovery.CanonicalUUID(bios); u != "" {
		ks = append(ks, "uuid:"+u)
	}
	for _, m := range macs {
		if cm := discovery.CanonicalMAC(m); cm != "" {
			ks = append(ks, "mac:"+cm)
		}
	}
	for _, n := range []string{name, fqdn} {
		if sn := discovery.ShortName(n); sn != "" {
			ks = append(ks, "name:"+sn)
		}
	}
	for _, ip := range ips {
		if a, err := netip.ParseAddr(strings.TrimSpace(ip)); err == nil {
			ks = append(ks, "ip:"+a.Unmap().String())
		}
	}
	return ks
}

// endpointKeys are the keys a connection endpoint can resolve to a host by.
func endpointKeys(e discovery.Endpoint) []string {
	var ks []string
	for _, v := range []string{e.Name, e.Address} {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if ap, err := netip.ParseAddrPort(v); err == nil {
			ks = append(ks, "ip:"+ap.Addr().Unmap().String())
		} else if a, err := netip.ParseAddr(v); err == nil {
			ks = append(ks, "ip:"+a.Unmap().String())
		} else if sn := discovery.ShortName(v); sn != "" {
			ks = append(ks, "name:"+sn)
		}
	}
	return ks
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
	m.SetTags(f.Tags)
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

// replaceDetails replaces a host's disks and software with the merged view
// when a new record in the batch says something about them. A host just
// created has none to delete (asking would cost a query per new host).
func replaceDetails(ctx context.Context, c *ent.Client, id int, created bool, nh discovery.Host, records []discovery.Record, base int) error {
	newDisks, newSoftware := false, false
	for _, m := range nh.Members {
		if m >= base {
			newDisks = newDisks || len(records[m].Disks) > 0
			newSoftware = newSoftware || len(records[m].Software) > 0
		}
	}
	if newDisks {
		if !created {
			// On the foreign key column itself, so SQLite uses its index
			// rather than a subquery over hosts.
			if _, err := c.Disk.Delete().Where(sql.FieldEQ(disk.HostColumn, id)).Exec(ctx); err != nil {
				return fmt.Errorf("replace disks: %w", err)
			}
		}
		bulk := make([]*ent.DiskCreate, 0, len(nh.Disks))
		for i, d := range nh.Disks {
			name := d.Name
			if name == "" {
				name = fmt.Sprintf("disk%d", i)
			}
			bulk = append(bulk, c.Disk.Create().SetHostID(id).SetName(truncate(name, 128)).
				SetSizeBytes(max(d.ProvisionedBytes, 0)).SetUsedBytes(max(d.UsedBytes, 0)))
		}
		if err := c.Disk.CreateBulk(bulk...).Exec(ctx); err != nil {
			return fmt.Errorf("store disks: %w", err)
		}
	}
	if newSoftware {
		if !created {
			if _, err := c.Software.Delete().Where(sql.FieldEQ(software.HostColumn, id)).Exec(ctx); err != nil {
				return fmt.Errorf("replace software: %w", err)
			}
		}
		bulk := make([]*ent.SoftwareCreate, 0, len(nh.Software))
		for _, s := range nh.Software {
			if s == "" {
				continue
			}
			bulk = append(bulk, c.Software.Create().SetHostID(id).SetName(s).SetKind(softwareKind(s)))
		}
		if err := c.Software.CreateBulk(bulk...).Exec(ctx); err != nil {
			return fmt.Errorf("store software: %w", err)
		}
	}
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

// storeConnections upserts dependencies: a connection seen again keeps the
// larger count and byte total (re-importing a capture does not double it)
// and moves last_seen forward.
func storeConnections(ctx context.Context, c *ent.Client, conns []discovery.HostConnection, hostID map[string]int, now time.Time) (int, error) {
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
	have := map[connKey]*ent.Connection{}
	for start := 0; start < len(ids); start += 500 {
		rows, err := c.Connection.Query().Where(connection.SrcHostIDIn(ids[start:min(start+500, len(ids))]...)).All(ctx)
		if err != nil {
			return 0, fmt.Errorf("load connections: %w", err)
		}
		for _, r := range rows {
			k := connKey{r.SrcHostID, deref(r.DstHostID), r.DstAddress, r.Port, string(r.Protocol)}
			have[k] = r
		}
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
		if old, ok := have[k]; ok {
			err := c.Connection.UpdateOne(old).SetCount(max(old.Count, hc.Count)).SetBytes(max(old.Bytes, hc.Bytes)).
				SetLastSeen(now).SetProcess(firstNonEmpty(hc.Process, old.Process)).Exec(ctx)
			if err != nil {
				return 0, fmt.Errorf("update connection: %w", err)
			}
			continue
		}
		cr := c.Connection.Create().SetSrcHostID(src).SetPort(hc.Port).SetProtocol(proto).SetProcess(truncate(hc.Process, 255)).
			SetCount(max(hc.Count, 1)).SetBytes(max(hc.Bytes, 0)).SetFirstSeen(now).SetLastSeen(now).SetDstAddress(addr)
		if dst != 0 {
			cr.SetDstHostID(dst)
		}
		bulk = append(bulk, cr)
		if len(bulk) == 500 {
			if err := c.Connection.CreateBulk(bulk...).Exec(ctx); err != nil {
				return 0, fmt.Errorf("store connections: %w", err)
			}
			bulk = bulk[:0]
		}
	}
	if len(bulk) > 0 {
		if err := c.Connection.CreateBulk(bulk...).Exec(ctx); err != nil {
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
