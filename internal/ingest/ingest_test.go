package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/importrun"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/ingest"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func mustOpen(t *testing.T) (*ent.Client, int, int) {
	t.Helper()
	db, err := database.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sys := viewer.SystemContext(context.Background())
	a := db.Client.Tenant.Create().SetName("A").SetSlug("a").SaveX(sys)
	b := db.Client.Tenant.Create().SetName("B").SetSlug("b").SaveX(sys)
	return db.Client, a.ID, b.ID
}

func csvRecord(name, ip string, mem int64, disks ...int64) discovery.Record {
	r := discovery.Record{Source: discovery.SourceRef{Kind: "csv", Name: "hosts.csv", ObservedAt: now}, Refs: []string{"csv:" + name}}
	r.Name, r.IPs, r.MemoryMiB, r.OS = name, []string{ip}, mem, "RHEL 8"
	for i, d := range disks {
		r.Disks = append(r.Disks, discovery.Disk{Name: "disk" + string(rune('0'+i)), ProvisionedBytes: d})
	}
	return r
}

func conn(src, dstAddr string, port int) discovery.ObservedConnection {
	return discovery.ObservedConnection{Source: discovery.SourceRef{Kind: "csv", Name: "c.csv", ObservedAt: now},
		Src: discovery.Endpoint{Ref: "csv:" + src}, Dst: discovery.Endpoint{Address: dstAddr}, Port: port, Protocol: "tcp", Count: 3}
}

func batch() ingest.Batch {
	return ingest.Batch{
		Kind: "csv", Filename: "hosts.csv", Actor: "alice@a.example", RowsTotal: 4,
		Records: []discovery.Record{csvRecord("web01", "10.0.0.1", 4096, 10<<30), csvRecord("db01", "10.0.0.2", 16384, 50<<30, 100<<30)},
		Connections: []discovery.ObservedConnection{
			conn("web01", "10.0.0.2:5432", 5432), // resolves to db01 by IP
			conn("web01", "203.0.113.9:443", 443),
		},
		Errors: []discovery.RowError{
			{File: "hosts.csv", Row: 4, Column: "memory_mib", Reason: "not a number: \"lots\""},
			{File: "hosts.csv", Row: 5, Column: "ip", Reason: "not an IP address: \"10.0.0\""},
		},
	}
}

func TestApply(t *testing.T) {
	client, tenantA, tenantB := mustOpen(t)
	ctxA := viewer.TenantContext(context.Background(), tenantA)
	out, err := ingest.Apply(context.Background(), client, tenantA, batch(), now)
	if err != nil {
		t.Fatal(err)
	}
	run := out.Run
	if run.Status != importrun.StatusPartial || run.HostsCreated != 2 || run.HostsUpdated != 0 || run.ConnectionsImported != 2 ||
		run.RowsTotal != 4 || run.RowsImported != 4 || run.Actor != "alice@a.example" || run.TenantID != tenantA {
		t.Fatalf("run: %+v", run)
	}
	want := []map[string]any{
		{"file": "hosts.csv", "row": float64(4), "column": "memory_mib", "reason": "not a number: \"lots\""},
		{"file": "hosts.csv", "row": float64(5), "column": "ip", "reason": "not an IP address: \"10.0.0\""},
	}
	stored := client.ImportRun.GetX(ctxA, run.ID)
	if diff := cmp.Diff(want, stored.Errors); diff != "" {
		t.Fatalf("stored errors (-want +got):\n%s", diff)
	}
	hosts := client.Host.Query().WithDisks().WithOutgoing().Order(ent.Asc("name")).AllX(ctxA)
	if len(hosts) != 2 || hosts[0].Name != "db01" || len(hosts[0].Edges.Disks) != 2 || hosts[0].DiskProvisionedBytes != 150<<30 {
		t.Fatalf("hosts: %v", hosts)
	}
	if out.HostOfRecord[0] != hosts[1].ID || out.HostOfRecord[1] != hosts[0].ID {
		t.Fatalf("HostOfRecord %v; hosts %d %d", out.HostOfRecord, hosts[1].ID, hosts[0].ID)
	}
	web := hosts[1]
	if len(web.Edges.Outgoing) != 2 {
		t.Fatalf("web01 has %d outgoing connections", len(web.Edges.Outgoing))
	}
	for _, c := range web.Edges.Outgoing {
		if c.Port == 5432 && (c.DstHostID == nil || *c.DstHostID != hosts[0].ID) {
			t.Fatalf("web01→db01 did not resolve to the db01 host: %+v", c)
		}
		if c.Port == 443 && (c.DstHostID != nil || c.DstAddress != "203.0.113.9:443") {
			t.Fatalf("external connection: %+v", c)
		}
	}

	// The same file again updates the two hosts; connections are not doubled.
	b := batch()
	b.Records[1].MemoryMiB = 32768
	b.Records[1].Disks = b.Records[1].Disks[:1]
	b.Errors = nil
	out, err = ingest.Apply(context.Background(), client, tenantA, b, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if out.Run.Status != importrun.StatusSucceeded || out.Run.HostsCreated != 0 || out.Run.HostsUpdated != 2 {
		t.Fatalf("second run: %+v", out.Run)
	}
	db := client.Host.Query().Order(ent.Asc("name")).WithDisks().FirstX(ctxA)
	if db.MemoryMib != 32768 || len(db.Edges.Disks) != 1 {
		t.Fatalf("db01 after re-import: memory %d, %d disks", db.MemoryMib, len(db.Edges.Disks))
	}
	if n := client.Connection.Query().CountX(ctxA); n != 2 {
		t.Fatalf("%d connections after re-import, want 2", n)
	}
	for _, c := range client.Connection.Query().AllX(ctxA) {
		if c.Count != 3 {
			t.Fatalf("a re-imported connection was counted twice: %+v", c)
		}
	}

	// Tenant B's import of the same names makes B's own hosts; A's are untouched.
	if _, err := ingest.Apply(context.Background(), client, tenantB, batch(), now); err != nil {
		t.Fatal(err)
	}
	if n := client.Host.Query().CountX(ctxA); n != 2 {
		t.Fatalf("tenant A has %d hosts after B's import", n)
	}
	if n := client.Host.Query().CountX(viewer.TenantContext(context.Background(), tenantB)); n != 2 {
		t.Fatalf("tenant B has %d hosts", n)
	}
}

// TestApplyAllOrNothing: a failure inside the batch leaves nothing behind.
func TestApplyAllOrNothing(t *testing.T) {
	client, tenantA, _ := mustOpen(t)
	ctxA := viewer.TenantContext(context.Background(), tenantA)
	boom := errors.New("boom")
	b := batch()
	b.InTx = func(context.Context, *ent.Client, *ingest.Outcome) error { return boom }
	if _, err := ingest.Apply(context.Background(), client, tenantA, b, now); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	for name, n := range map[string]int{
		"hosts": client.Host.Query().CountX(ctxA), "disks": client.Disk.Query().CountX(ctxA),
		"connections": client.Connection.Query().CountX(ctxA), "import runs": client.ImportRun.Query().CountX(ctxA),
	} {
		if n != 0 {
			t.Fatalf("%d %s left by a failed batch", n, name)
		}
	}
}

func TestApplyErrorsCapped(t *testing.T) {
	client, tenantA, _ := mustOpen(t)
	b := ingest.Batch{Kind: "csv", Filename: "bad.csv", Dropped: 5}
	for i := range ingest.MaxStoredErrors + 10 {
		b.Errors = append(b.Errors, discovery.RowError{File: "bad.csv", Row: i + 2, Column: "name", Reason: "required"})
	}
	out, err := ingest.Apply(context.Background(), client, tenantA, b, now)
	if err != nil {
		t.Fatal(err)
	}
	if out.Run.Status != importrun.StatusFailed || len(out.Run.Errors) != ingest.MaxStoredErrors+1 {
		t.Fatalf("status %s, %d errors", out.Run.Status, len(out.Run.Errors))
	}
	if last := out.Run.Errors[ingest.MaxStoredErrors]["reason"]; last != "15 more errors not shown" {
		t.Fatalf("last error: %v", last)
	}
}

// TestApplyNarrowsToCandidates: only hosts sharing an identity with the
// batch are loaded in full, yet a record still merges with its stored host
// (by MAC, under another name spelling) and a connection still resolves to
// a stored peer by address.
func TestApplyNarrowsToCandidates(t *testing.T) {
	client, tenantA, _ := mustOpen(t)
	ctxA := viewer.TenantContext(context.Background(), tenantA)
	var seed []discovery.Record
	for i := range 50 {
		r := csvRecord(fmt.Sprintf("vm%02d", i), fmt.Sprintf("10.9.0.%d", i+1), 1024, 1<<30)
		r.MACs = []string{fmt.Sprintf("00:50:56:00:00:%02x", i)}
		seed = append(seed, r)
	}
	if _, err := ingest.Apply(context.Background(), client, tenantA, ingest.Batch{Kind: "csv", Records: seed}, now); err != nil {
		t.Fatal(err)
	}
	agent := discovery.Record{Source: discovery.SourceRef{Kind: "agent", Name: "7", ObservedAt: now}, Refs: []string{"agent:7"}}
	agent.Name, agent.FQDN, agent.MACs, agent.MemoryMiB = "VM07", "vm07.corp.example", []string{"00-50-56-00-00-07"}, 4096
	out, err := ingest.Apply(context.Background(), client, tenantA, ingest.Batch{
		Kind: "agent", NoRun: true, Records: []discovery.Record{agent},
		Connections: []discovery.ObservedConnection{{Source: agent.Source, Src: discovery.Endpoint{Ref: "agent:7"},
			Dst: discovery.Endpoint{Address: "10.9.0.31:5432"}, Port: 5432, Protocol: "tcp", Count: 1}},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if out.HostsCreated != 0 || out.HostsUpdated != 1 {
		t.Fatalf("created %d, updated %d; want the agent merged into vm07", out.HostsCreated, out.HostsUpdated)
	}
	h := client.Host.GetX(ctxA, out.HostOfRecord[0])
	if h.Name != "VM07" || h.MemoryMib != 4096 {
		t.Fatalf("merged host: %s %d MiB", h.Name, h.MemoryMib)
	}
	c := client.Connection.Query().WithDst().OnlyX(ctxA)
	if c.Edges.Dst == nil || c.Edges.Dst.Name != "vm30" {
		t.Fatalf("connection to 10.9.0.31 resolved to %v, want vm30", c.Edges.Dst)
	}
	if n := client.Host.Query().CountX(ctxA); n != 50 {
		t.Fatalf("%d hosts, want 50", n)
	}
}

// TestIdentitiesStayCurrent: batches sharing an identity cache still merge
// with hosts written since the cache was filled, by them or by anyone else.
func TestIdentitiesStayCurrent(t *testing.T) {
	client, tenantA, tenantB := mustOpen(t)
	ctxA := viewer.TenantContext(context.Background(), tenantA)
	ids := &ingest.Identities{}
	apply := func(tenant int, recs ...discovery.Record) *ingest.Outcome {
		t.Helper()
		out, err := ingest.Apply(context.Background(), client, tenant, ingest.Batch{Kind: "csv", Records: recs, Identities: ids}, now)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := apply(tenantA, csvRecord("app01", "10.0.0.1", 1024))
	// Written by another path (a user editing the host): a MAC is added.
	client.Host.UpdateOneID(first.HostOfRecord[0]).SetMacs([]string{"00:50:56:01:02:03"}).ExecX(ctxA)
	byMAC := csvRecord("app01-renamed", "", 2048)
	byMAC.IPs = nil
	byMAC.MACs = []string{"00:50:56:01:02:03"}
	if out := apply(tenantA, byMAC); out.HostsCreated != 0 || out.HostOfRecord[0] != first.HostOfRecord[0] {
		t.Fatalf("a record with the host's new MAC made host %d (created %d), want %d", out.HostOfRecord[0], out.HostsCreated, first.HostOfRecord[0])
	}
	// A host made by a batch is found by the next one through the cache.
	second := apply(tenantA, csvRecord("db01", "10.0.0.2", 1024))
	if out := apply(tenantA, csvRecord("db01", "10.0.0.2", 4096)); out.HostsCreated != 0 || out.HostOfRecord[0] != second.HostOfRecord[0] {
		t.Fatalf("db01 was not merged with itself")
	}
	// The cache is per tenant: B's db01 is B's own.
	if out := apply(tenantB, csvRecord("db01", "10.0.0.2", 4096)); out.HostsCreated != 1 {
		t.Fatalf("tenant B's db01 merged into another tenant's host")
	}
	if n := client.Host.Query().CountX(ctxA); n != 2 {
		t.Fatalf("tenant A has %d hosts, want 2", n)
	}
}

// TestApplyInChunks: a batch stored one row per transaction comes out as it
// would in one: records of later chunks merge with hosts of earlier ones,
// connections find hosts by the refs of records stored chunks before, and
// the run, completed in the last chunk, counts the whole batch.
func TestApplyInChunks(t *testing.T) {
	client, tenantA, _ := mustOpen(t)
	ctxA := viewer.TenantContext(context.Background(), tenantA)
	b := batch()
	again := csvRecord("web01", "10.0.0.1", 8192) // the same host twice in one upload
	again.Refs = nil
	b.Records = append(b.Records, again)
	b.Connections = append(b.Connections, discovery.ObservedConnection{Source: b.Connections[0].Source,
		Src: discovery.Endpoint{Ref: "csv:db01"}, Dst: discovery.Endpoint{Ref: "csv:web01"}, Port: 8080, Protocol: "tcp", Count: 1})
	b.ChunkRows = 1
	out, err := ingest.Apply(context.Background(), client, tenantA, b, now)
	if err != nil {
		t.Fatal(err)
	}
	if out.Chunks != 6 || out.Rows != 6 || out.HostsCreated != 2 || out.HostsUpdated != 0 || out.Connections != 3 {
		t.Fatalf("outcome: %+v", out)
	}
	run := client.ImportRun.GetX(ctxA, out.Run.ID)
	if run.Status != importrun.StatusPartial || run.HostsCreated != 2 || run.ConnectionsImported != 3 || run.RowsImported != 6 || len(run.Errors) != 2 {
		t.Fatalf("run: %+v", run)
	}
	hosts := client.Host.Query().WithDisks().Order(ent.Asc("name")).AllX(ctxA)
	if len(hosts) != 2 || hosts[1].Name != "web01" || hosts[1].MemoryMib != 8192 || len(hosts[0].Edges.Disks) != 2 {
		t.Fatalf("hosts: %v", hosts)
	}
	db, web := hosts[0], hosts[1]
	if out.HostOfRecord[0] != web.ID || out.HostOfRecord[1] != db.ID || out.HostOfRecord[2] != web.ID {
		t.Fatalf("HostOfRecord %v; web01 %d, db01 %d", out.HostOfRecord, web.ID, db.ID)
	}
	for _, c := range client.Connection.Query().AllX(ctxA) {
		switch c.Port {
		case 5432:
			if c.SrcHostID != web.ID || c.DstHostID == nil || *c.DstHostID != db.ID {
				t.Fatalf("web01→db01: %+v", c)
			}
		case 8080:
			if c.SrcHostID != db.ID || c.DstHostID == nil || *c.DstHostID != web.ID {
				t.Fatalf("db01→web01 by refs of earlier chunks: %+v", c)
			}
		}
	}
}

// failingSource yields n records, then fails.
type failingSource struct{ n int }

func (s *failingSource) NextRecord() (discovery.Record, error) {
	if s.n == 0 {
		return discovery.Record{}, errors.New("spool unreadable")
	}
	s.n--
	return csvRecord(fmt.Sprintf("vm%03d", s.n), fmt.Sprintf("10.1.0.%d", s.n+1), 1024), nil
}

func (s *failingSource) NextConnection() (discovery.ObservedConnection, error) {
	return discovery.ObservedConnection{}, errors.New("unreachable")
}

// TestApplyFailsPartWay: when a chunk fails, the chunks before it stay
// stored and the run says failed, with how much was stored and why.
func TestApplyFailsPartWay(t *testing.T) {
	client, tenantA, _ := mustOpen(t)
	ctxA := viewer.TenantContext(context.Background(), tenantA)
	out, err := ingest.Apply(context.Background(), client, tenantA, ingest.Batch{Kind: "csv", Source: &failingSource{n: 5}, ChunkRows: 2}, now)
	if err == nil || !strings.Contains(err.Error(), "spool unreadable") {
		t.Fatalf("err = %v", err)
	}
	if out.Rows != 4 || out.HostsCreated != 4 || out.HostOfRecord != nil {
		t.Fatalf("outcome: %+v", out)
	}
	run := client.ImportRun.GetX(ctxA, out.Run.ID)
	last := run.Errors[len(run.Errors)-1]["reason"].(string)
	if run.Status != importrun.StatusFailed || run.RowsImported != 4 || run.HostsCreated != 4 || !strings.Contains(last, "stopped after 4 stored rows") || !strings.Contains(last, "spool unreadable") {
		t.Fatalf("run: %+v", run)
	}
	if n := client.Host.Query().CountX(ctxA); n != 4 {
		t.Fatalf("%d hosts stored, want the 4 of the chunks before the failure", n)
	}
}

// TestApplyManyDetails: a host with more software and disks than one SQL
// statement can carry is stored ("too many SQL variables" before), and
// replaced whole on the next report.
func TestApplyManyDetails(t *testing.T) {
	client, tenantA, tenantB := mustOpen(t)
	ctxA := viewer.TenantContext(context.Background(), tenantA)
	r := discovery.Record{Source: discovery.SourceRef{Kind: "agent", Name: "1", ObservedAt: now}}
	r.Name = "big01"
	for i := range 6000 {
		r.Software = append(r.Software, fmt.Sprintf("package-%05d", i))
	}
	for i := range 4100 {
		r.Disks = append(r.Disks, discovery.Disk{Name: fmt.Sprintf("sd%05d", i), ProvisionedBytes: 1 << 30})
	}
	for _, n := range []int{6000, 5999} {
		r.Software = r.Software[:n]
		if _, err := ingest.Apply(context.Background(), client, tenantA, ingest.Batch{Kind: "agent", NoRun: true, Records: []discovery.Record{r}}, now); err != nil {
			t.Fatal(err)
		}
		if got := client.Software.Query().CountX(ctxA); got != n {
			t.Fatalf("%d software rows, want %d", got, n)
		}
		if got := client.Disk.Query().CountX(ctxA); got != 4100 {
			t.Fatalf("%d disks, want 4100", got)
		}
	}
	// Written with the tenant set on every row: tenant B sees none of them.
	ctxB := viewer.TenantContext(context.Background(), tenantB)
	if n := client.Software.Query().CountX(ctxB) + client.Disk.Query().CountX(ctxB) + client.Host.Query().CountX(ctxB); n != 0 {
		t.Fatalf("tenant B sees %d of tenant A's rows", n)
	}
	sys := viewer.SystemContext(context.Background())
	if n := client.Disk.Query().CountX(sys); n != 4100 {
		t.Fatalf("%d disks in all tenants, want 4100", n)
	}
}

// TestIdentitiesBounded: an identity cache over its key budget drops the
// tenants used least recently, and merging stays right for them (their
// keys are read again when next used).
func TestIdentitiesBounded(t *testing.T) {
	client, tenantA, tenantB := mustOpen(t)
	ids := &ingest.Identities{MaxKeys: 5}
	apply := func(tenant int, recs ...discovery.Record) *ingest.Outcome {
		t.Helper()
		out, err := ingest.Apply(context.Background(), client, tenant, ingest.Batch{Kind: "csv", Records: recs, Identities: ids}, now)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a := apply(tenantA, csvRecord("app01", "10.0.0.1", 1024), csvRecord("app02", "10.0.0.2", 1024), csvRecord("app03", "10.0.0.3", 1024))
	apply(tenantB, csvRecord("db01", "10.0.0.9", 1024), csvRecord("db02", "10.0.0.8", 1024), csvRecord("db03", "10.0.0.7", 1024))
	if out := apply(tenantA, csvRecord("app02", "10.0.0.2", 2048)); out.HostsCreated != 0 || out.HostOfRecord[0] != a.HostOfRecord[1] {
		t.Fatalf("after eviction app02 made a new host (created %d)", out.HostsCreated)
	}
	if n := ids.Keys(); n > 3*2+1 {
		t.Fatalf("the cache holds %d keys; tenant B's should have been dropped", n)
	}
}
