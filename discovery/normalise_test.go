package discovery

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func rec(kind, name string, f HostFacts, refs ...string) Record {
	return Record{Source: SourceRef{Kind: kind, Name: name, ObservedAt: t0}, Refs: refs, HostFacts: f}
}

func TestCanonicalUUIDMatchesVMwareByteSwap(t *testing.T) {
	// vCenter config.uuid and the guest's SMBIOS reading of the same VM.
	a := CanonicalUUID("4211a2b3-c4d5-e6f7-0819-2a3b4c5d6e7f")
	b := CanonicalUUID("B3A21142-D5C4-F7E6-0819-2A3B4C5D6E7F")
	if a == "" || a != b {
		t.Fatalf("canonical forms differ: %q vs %q", a, b)
	}
	if CanonicalUUID("00000000-0000-0000-0000-000000000000") != "" || CanonicalUUID("nope") != "" {
		t.Fatal("unusable UUIDs must canonicalise to empty")
	}
}

func TestNormaliseMergesByIdentity(t *testing.T) {
	mem8, mem16 := int64(8192), int64(16384)
	records := []Record{
		rec(SourceRVTools, "rv.xlsx", HostFacts{Name: "web01", BIOSUUID: "4211a2b3-c4d5-e6f7-0819-2a3b4c5d6e7f", MemoryMiB: mem16, MACs: []string{"00:50:56:AA:BB:CC"}, CPUs: 4}),
		rec(SourceAgent, "agent-1", HostFacts{Name: "web01.corp.local", FQDN: "web01.corp.local", BIOSUUID: "b3a21142-d5c4-f7e6-0819-2a3b4c5d6e7f", MemoryMiB: mem8, IPs: []string{"10.0.0.5"}}, "agent:agent-1"),
		rec(SourceCSV, "hosts.csv", HostFacts{Name: "db01", MACs: []string{"00-50-56-00-00-01"}, Owner: "team-a"}, "csv:db01"),
		rec(SourceCapture, "db01.ss", HostFacts{Name: "DB01", IPs: []string{"10.0.0.9"}}),
		// Same MAC as web01, but by MAC alone: merges.
		rec(SourceCSV, "hosts.csv", HostFacts{Name: "web01-alias", MACs: []string{"0050.56aa.bbcc"}, Environment: "production"}),
		// A clone: same name as web01 but a different BIOS UUID — a different machine.
		rec(SourceVCenter, "vc", HostFacts{Name: "web01", BIOSUUID: "11111111-2222-3333-4444-555555555555"}),
		// Reused IP under another name: must not merge with the agent host.
		rec(SourceCSV, "old.csv", HostFacts{Name: "legacy", IPs: []string{"10.0.0.5"}}),
	}
	res := Normalise(records, nil)
	var names [][]string
	for _, h := range res.Hosts {
		names = append(names, []string{h.ID, h.Name})
	}
	want := [][]string{{"h-00001", "web01.corp.local"}, {"h-00002", "db01"}, {"h-00003", "web01"}, {"h-00004", "legacy"}}
	if d := cmp.Diff(want, names); d != "" {
		t.Fatalf("hosts (-want +got):\n%s", d)
	}
	var members [][]int
	for _, h := range res.Hosts {
		members = append(members, h.Members)
	}
	if d := cmp.Diff([][]int{{0, 1, 4}, {2, 3}, {5}, {6}}, members); d != "" {
		t.Errorf("members (-want +got):\n%s", d)
	}
	web := res.Hosts[0]
	if web.MemoryMiB != mem8 {
		t.Errorf("agent must win memory: got %d", web.MemoryMiB)
	}
	if web.CPUs != 4 || web.Environment != "production" {
		t.Errorf("facts only other sources had must be kept: cpus=%d env=%q", web.CPUs, web.Environment)
	}
	var memConflict *Conflict
	for i := range web.Conflicts {
		if web.Conflicts[i].Field == "memory_mib" {
			memConflict = &web.Conflicts[i]
		}
		if web.Conflicts[i].Field == "bios_uuid" {
			t.Errorf("byte-swapped UUID readings are the same UUID, not a conflict")
		}
	}
	if memConflict == nil {
		t.Fatalf("memory disagreement not reported; conflicts=%+v", web.Conflicts)
	}
	wantClaims := []Claim{
		{Value: "8192", Source: "agent:agent-1", ObservedAt: t0},
		{Value: "16384", Source: "rvtools:rv.xlsx", ObservedAt: t0},
	}
	if d := cmp.Diff(wantClaims, memConflict.Claims); d != "" {
		t.Errorf("memory claims (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"00:50:56:aa:bb:cc"}, web.MACs); d != "" {
		t.Errorf("MACs (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"agent:agent-1", "rvtools:rv.xlsx", "csv:hosts.csv"}, web.Sources); d != "" {
		t.Errorf("sources (-want +got):\n%s", d)
	}
	db := res.Hosts[1]
	if d := cmp.Diff([]string{"10.0.0.9"}, db.IPs); d != "" || db.Owner != "team-a" {
		t.Errorf("db01 merged by name: ips %v owner %q", db.IPs, db.Owner)
	}
}

func TestNormaliseResolvesConnections(t *testing.T) {
	records := []Record{
		rec(SourceCSV, "hosts.csv", HostFacts{Name: "web01", IPs: []string{"10.0.0.5"}}, "csv:h1"),
		rec(SourceCSV, "hosts.csv", HostFacts{Name: "db01", IPs: []string{"10.0.0.9"}}, "csv:h2"),
	}
	src := SourceRef{Kind: SourceCapture, Name: "web01.ss", ObservedAt: t0}
	conns := []ObservedConnection{
		{Source: src, Src: Endpoint{Ref: "csv:h1"}, Dst: Endpoint{Address: "10.0.0.9:3306"}, Port: 3306, Protocol: "tcp", Process: "java", Count: 2},
		{Source: src, Src: Endpoint{Name: "WEB01"}, Dst: Endpoint{Ref: "csv:h2"}, Port: 3306, Protocol: "tcp", Process: "java", Count: 3, Bytes: 10},
		{Source: src, Src: Endpoint{Ref: "csv:h1"}, Dst: Endpoint{Address: "8.8.8.8:443"}, Port: 443, Protocol: "TCP", Count: 1},
		{Source: src, Src: Endpoint{Address: "192.168.1.1"}, Dst: Endpoint{Ref: "csv:h1"}, Port: 443, Count: 1},
		{Source: src, Src: Endpoint{Address: "1.1.1.1"}, Dst: Endpoint{Address: "2.2.2.2:80"}, Port: 80, Count: 1},
	}
	res := Normalise(records, conns)
	want := []HostConnection{
		{Src: "h-00001", Dst: "h-00002", Port: 3306, Protocol: "tcp", Process: "java", Count: 5, Bytes: 10, Sources: []string{"capture:web01.ss"}},
		{Src: "h-00001", DstAddress: "8.8.8.8:443", Port: 443, Protocol: "tcp", Count: 1, Sources: []string{"capture:web01.ss"}},
		{SrcAddress: "192.168.1.1", Dst: "h-00001", Port: 443, Protocol: "tcp", Count: 1, Sources: []string{"capture:web01.ss"}},
	}
	if d := cmp.Diff(want, res.Connections); d != "" {
		t.Fatalf("connections (-want +got):\n%s", d)
	}
	est := res.ToEstate()
	if len(est.Connections) != 2 {
		t.Fatalf("estate keeps only connections from estate hosts, got %+v", est.Connections)
	}
}

func TestToEstateSpreadsUsedBytes(t *testing.T) {
	h := Host{ID: "h-00001", HostFacts: HostFacts{Name: "a", UsedBytes: 30, Disks: []Disk{{Name: "d1", ProvisionedBytes: 100}, {Name: "d2", ProvisionedBytes: 200}}}}
	got := h.ToEstate().Disks
	want := []EstateDisk{{Name: "d1", ProvisionedBytes: 100, UsedBytes: 10}, {Name: "d2", ProvisionedBytes: 200, UsedBytes: 20}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("disks (-want +got):\n%s", d)
	}
}

func TestSummarise(t *testing.T) {
	var s []UtilisationSample
	for i := 1; i <= 100; i++ {
		s = append(s, UtilisationSample{At: t0.Add(time.Duration(101-i) * time.Minute), CPUPercent: float64(i), MemoryPercent: 50, DiskIOBytesPerSec: float64(i * 10), NetworkBytesPerSec: 1})
	}
	u := Summarise(s)
	if d := cmp.Diff(Percentiles{P50: 50, P95: 95, Max: 100}, u.CPU); d != "" {
		t.Errorf("cpu (-want +got):\n%s", d)
	}
	if u.DiskIO.P95 != 950 || u.Memory.Max != 50 || u.Samples != 100 || !u.From.Equal(t0.Add(time.Minute)) || !u.To.Equal(t0.Add(100*time.Minute)) {
		t.Errorf("unexpected summary %+v", u)
	}
	if s[0].CPUPercent != 1 {
		t.Error("Summarise must not reorder its input")
	}
	if got := Summarise(nil); got.Samples != 0 {
		t.Errorf("empty summary %+v", got)
	}
}

func TestDeriveConnections(t *testing.T) {
	self := Endpoint{Ref: "agent:a"}
	listening := []Socket{{Protocol: "tcp", Address: "0.0.0.0", Port: 8080}}
	conns := []Connection{
		{LocalAddress: "10.0.0.5", LocalPort: 8080, RemoteAddress: "10.0.0.7", RemotePort: 50000, State: "ESTABLISHED", Process: "java"},
		{LocalAddress: "10.0.0.5", LocalPort: 8080, RemoteAddress: "::ffff:10.0.0.7", RemotePort: 50001, State: "ESTABLISHED", Process: "java"},
		{LocalAddress: "10.0.0.5", LocalPort: 41000, RemoteAddress: "10.0.0.9", RemotePort: 5432, State: "ESTABLISHED", Process: "java"},
		{LocalAddress: "127.0.0.1", LocalPort: 41001, RemoteAddress: "127.0.0.1", RemotePort: 8080, State: "ESTABLISHED"},
		{LocalAddress: "10.0.0.5", LocalPort: 41002, RemoteAddress: "10.0.0.9", RemotePort: 5432, State: "TIME_WAIT"},
	}
	got := DeriveConnections(SourceRef{Kind: SourceAgent, Name: "a"}, self, listening, conns)
	want := []ObservedConnection{
		{Source: SourceRef{Kind: SourceAgent, Name: "a"}, Src: Endpoint{Address: "10.0.0.7"}, Dst: self, Port: 8080, Protocol: "tcp", Process: "java", Count: 2},
		{Source: SourceRef{Kind: SourceAgent, Name: "a"}, Src: self, Dst: Endpoint{Address: "10.0.0.9:5432"}, Port: 5432, Protocol: "tcp", Process: "java", Count: 1},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

func TestRecordFromInventory(t *testing.T) {
	inv := Inventory{
		CollectedAt: t0, Hostname: "db01", BIOSUUID: "4211a2b3-c4d5-e6f7-0819-2a3b4c5d6e7f", OS: OSRelease{PrettyName: "Rocky Linux 9.3"},
		Arch: "x86_64", BootMode: BootUEFI, CPU: CPU{Threads: 8}, MemoryBytes: 16 << 30,
		NICs:         []NIC{{Name: "ens192", MAC: "00:50:56:aa:bb:cc", Addresses: []string{"10.0.0.5/24", "fe80::1/64"}}},
		BlockDevices: []BlockDevice{{Name: "sda", SizeBytes: 100 << 30}},
		Filesystems:  []Filesystem{{UsedBytes: 10 << 30}, {UsedBytes: 5 << 30}},
		Software:     []Software{{Name: "PostgreSQL", Source: "process"}, {Name: "PostgreSQL", Source: "package"}},
	}
	r := RecordFromInventory("a-1", inv)
	r.ApplyUtilisation(Utilisation{Samples: 3, CPU: Percentiles{P95: 40}, Memory: Percentiles{P95: 70}})
	want := Record{Source: SourceRef{Kind: SourceAgent, Name: "a-1", ObservedAt: t0}, Refs: []string{"agent:a-1"}, Anchor: "agent:a-1", HostFacts: HostFacts{
		Name: "db01", IPs: []string{"10.0.0.5", "fe80::1"}, MACs: []string{"00:50:56:aa:bb:cc"}, BIOSUUID: "4211a2b3-c4d5-e6f7-0819-2a3b4c5d6e7f",
		OS: "Rocky Linux 9.3", OSFamily: "linux", Arch: "x86_64", BootMode: "uefi", CPUs: 8, MemoryMiB: 16384,
		Disks: []Disk{{Name: "sda", ProvisionedBytes: 100 << 30}}, UsedBytes: 15 << 30, Software: []string{"PostgreSQL"},
		CPUP95: ptr(40.0), MemoryP95: ptr(70.0),
	}}
	if d := cmp.Diff(want, r); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

func ptr[T any](v T) *T { return &v }

// TestNormaliseAnchors: records sharing an anchor are one host though no
// name, address or MAC says so (an agent's host renamed and re-addressed),
// unless their BIOS UUIDs differ.
func TestNormaliseAnchors(t *testing.T) {
	rec := func(name, ip, uuid, anchor string) Record {
		r := Record{Source: SourceRef{Kind: SourceAgent, Name: "7", ObservedAt: t0}, Anchor: anchor}
		r.Name, r.IPs, r.BIOSUUID = name, []string{ip}, uuid
		return r
	}
	res := Normalise([]Record{
		rec("app01", "10.0.0.5", "", "agent:7"),
		rec("app01-new", "10.0.9.9", "", "agent:7"),
		rec("app02", "10.0.0.6", "", ""),
	}, nil)
	if len(res.Hosts) != 2 || res.Hosts[0].Name != "app01" || len(res.Hosts[0].Members) != 2 {
		t.Fatalf("hosts %+v; want the two anchored records merged", res.Hosts)
	}
	res = Normalise([]Record{
		rec("db07", "10.0.3.3", "4c4c4544-0042-3510-8052-b3c04f4d0007", "agent:7"),
		rec("db08", "10.0.3.3", "4c4c4544-0042-3510-8052-b3c04f4d0008", "agent:7"),
	}, nil)
	if len(res.Hosts) != 2 {
		t.Fatalf("two BIOS UUIDs under one anchor merged: %+v", res.Hosts)
	}
}
