package importer

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func clock() time.Time { return t0 }

func importFiles(t *testing.T, limits Limits, paths ...string) Result {
	t.Helper()
	im := New(limits, clock)
	for _, p := range paths {
		if err := im.AddFile(p); err != nil {
			t.Fatalf("AddFile(%s): %v", p, err)
		}
	}
	return im.Finish()
}

func byName(rs []discovery.Record) map[string]discovery.Record {
	m := map[string]discovery.Record{}
	for _, r := range rs {
		m[r.Name] = r
	}
	return m
}

func f64(v float64) *float64 { return &v }

func TestHostsAndConnectionsCSV(t *testing.T) {
	res := importFiles(t, Limits{}, "testdata/connections.csv", "testdata/hosts.csv")
	wantErrs := []discovery.RowError{
		{File: "connections.csv", Row: 5, Column: "dst", Reason: "either dst (a host of hosts.csv) or dst_address is required"},
		{File: "connections.csv", Row: 6, Column: "port", Reason: "99999 is outside 0..65535"},
		{File: "connections.csv", Row: 6, Column: "port", Reason: "port is required (1..65535)"},
		{File: "connections.csv", Row: 6, Column: "protocol", Reason: `"sctp" is not one of tcp, udp`},
		{File: "connections.csv", Row: 6, Column: "count", Reason: `"x" is not a whole number`},
		{File: "hosts.csv", Row: 4, Column: "ip", Reason: `"10.1.0.300" is not an IP address`},
		{File: "hosts.csv", Row: 4, Column: "mac", Reason: `"zz:zz" is not a MAC address`},
		{File: "hosts.csv", Row: 4, Column: "cpus", Reason: `"four" is not a whole number`},
		{File: "hosts.csv", Row: 4, Column: "environment", Reason: `"prod" is not one of development, dr, production, staging, test`},
		{File: "hosts.csv", Row: 4, Column: "criticality", Reason: `"urgent" is not one of critical, high, low, medium`},
		{File: "hosts.csv", Row: 4, Column: "cpu_p95", Reason: "120 is outside 0..100"},
		{File: "hosts.csv", Row: 5, Column: "name", Reason: "a host needs a name"},
		{File: "hosts.csv", Row: 6, Column: "disk_used_gib", Reason: "150 GiB used is more than the 100 GiB provisioned"},
		{File: "connections.csv", Row: 4, Column: "src", Reason: `"nosuch" is not an id or name in the hosts CSV`},
	}
	if d := cmp.Diff(wantErrs, res.Errors); d != "" {
		t.Errorf("errors (-want +got):\n%s", d)
	}
	hosts := byName(res.Records)
	if len(res.Records) != 2 {
		t.Fatalf("want web01 and db01 kept, got %d records", len(res.Records))
	}
	web := hosts["web01"]
	wantWeb := discovery.HostFacts{
		Name: "web01", FQDN: "web01.corp.local", IPs: []string{"10.1.0.5", "10.2.0.5"}, MACs: []string{"00:50:56:aa:bb:cc"},
		BIOSUUID: "4211a2b3-c4d5-e6f7-0819-2a3b4c5d6e7f", OS: "CentOS Linux 7.9", OSFamily: "linux", Arch: "x86_64", BootMode: "bios",
		CPUs: 4, MemoryMiB: 8192, Disks: []discovery.Disk{{Name: "disk0", ProvisionedBytes: 100 * gib, UsedBytes: 40 * gib}, {Name: "disk1", ProvisionedBytes: 100 * gib, UsedBytes: 40 * gib}},
		Environment: "production", Criticality: "high", Application: "shop", Owner: "team-a", Tags: []string{"pci", "web"},
		CPUP95: f64(35.5), MemoryP95: f64(61), Virtualization: "vmware",
	}
	if d := cmp.Diff(wantWeb, web.HostFacts); d != "" {
		t.Errorf("web01 (-want +got):\n%s", d)
	}
	if db := hosts["db01"]; db.CPUs != 16 || db.MemoryMiB != 65536 {
		t.Errorf("quoted and thousands-separated numbers: cpus %d memory %d", db.CPUs, db.MemoryMiB)
	}
	if len(res.Connections) != 2 {
		t.Fatalf("connections: %+v", res.Connections)
	}
	// Both rows resolve to hosts.csv, by id and by name.
	n := discovery.Normalise(res.Records, res.Connections)
	want := []discovery.HostConnection{
		{Src: "h-00001", Dst: "h-00002", Port: 1521, Protocol: "tcp", Process: "java", Count: 1200, Bytes: 52428800, Sources: []string{"csv:connections.csv"}},
		{Src: "h-00001", DstAddress: "8.8.8.8:53", Port: 53, Protocol: "udp", Count: 10, Bytes: 1000, Sources: []string{"csv:connections.csv"}},
	}
	if d := cmp.Diff(want, n.Connections); d != "" {
		t.Errorf("normalised connections (-want +got):\n%s", d)
	}
	wantSum := []FileSummary{
		{File: "connections.csv", Kind: KindConnectionsCSV, Rows: 5, Accepted: 2, Rejected: 3},
		{File: "hosts.csv", Kind: KindHostsCSV, Rows: 5, Accepted: 2, Rejected: 3},
	}
	if d := cmp.Diff(wantSum, res.Files); d != "" {
		t.Errorf("summaries (-want +got):\n%s", d)
	}
}

func rvFiles() []string {
	var out []string
	for _, s := range []string{"vInfo", "vDisk", "vPartition", "vNetwork"} {
		out = append(out, "testdata/rvtools/RVTools_tab"+s+".csv")
	}
	return out
}

func TestRVToolsCSV(t *testing.T) {
	res := importFiles(t, Limits{}, rvFiles()...)
	wantErrs := []discovery.RowError{
		{File: "RVTools_tabvInfo.csv", Row: 5, Column: "CPUs", Reason: `"many" is not a whole number`},
		{File: "RVTools_tabvInfo.csv", Row: 5, Column: "Powerstate", Reason: `"poweredUp" is not poweredOn, poweredOff or suspended`},
		{File: "RVTools_tabvDisk.csv", Row: 5, Column: "VM", Reason: `VM "ghost" is not in the vInfo sheet`},
	}
	if d := cmp.Diff(wantErrs, res.Errors); d != "" {
		t.Errorf("errors (-want +got):\n%s", d)
	}
	src := discovery.SourceRef{Kind: discovery.SourceRVTools, Name: "RVTools_tabvInfo.csv", ObservedAt: t0}
	want := []discovery.Record{
		{Source: src, HostFacts: discovery.HostFacts{
			Name: "web01", FQDN: "web01.corp.local", IPs: []string{"10.1.0.5", "10.2.0.5", "fe80::250:56ff:feaa:bbcc"}, MACs: []string{"00:50:56:aa:bb:cc"},
			BIOSUUID: "4211a2b3-c4d5-e6f7-0819-2a3b4c5d6e7f", OS: "CentOS Linux 7.9", OSFamily: "linux", BootMode: "bios", CPUs: 4, MemoryMiB: 16384,
			Disks:     []discovery.Disk{{Name: "Hard disk 1", ProvisionedBytes: 102400 * mib}, {Name: "Hard disk 2", ProvisionedBytes: 102400 * mib}},
			UsedBytes: (20480 + 61440) * mib, PowerState: "on", ESXHost: "esx01.corp.local", Cluster: "prod-cluster", Datacenter: "dc-east",
			Networks: []string{"VLAN100"}, Virtualization: "vmware",
		}},
		{Source: src, HostFacts: discovery.HostFacts{
			Name: "db01", IPs: []string{"10.1.0.9"}, MACs: []string{"00:50:56:00:00:09"}, BIOSUUID: "42110000-1111-2222-3333-444455556666",
			OS: "Oracle Linux 8 (64-bit)", OSFamily: "linux", BootMode: "uefi", CPUs: 16, MemoryMiB: 65536,
			Disks: []discovery.Disk{{Name: "Hard disk 1", ProvisionedBytes: 512000 * mib}}, UsedBytes: 300000 * mib, PowerState: "on",
			ESXHost: "esx02.corp.local", Cluster: "prod-cluster", Datacenter: "dc-east", Networks: []string{"VLAN100"}, Virtualization: "vmware",
		}},
	}
	if d := cmp.Diff(want, res.Records); d != "" {
		t.Errorf("records (-want +got):\n%s", d)
	}
	if res.Files[0].Skipped != 1 || res.Files[0].Rejected != 1 || res.Files[0].Accepted != 2 {
		t.Errorf("vInfo summary %+v: want the template skipped, bad01 rejected", res.Files[0])
	}
}

func TestRVToolsSharedUUIDIsNoIdentity(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "RVTools_tabvInfo.csv")
	os.WriteFile(p, []byte("VM,CPUs,Memory,VI SDK UUID\na,1,1024,3c1b2f3a-0000-4000-8000-000000000001\nb,2,2048,3c1b2f3a-0000-4000-8000-000000000001\n"), 0o644)
	res := importFiles(t, Limits{}, p)
	for _, r := range res.Records {
		if r.BIOSUUID != "" {
			t.Errorf("%s kept the shared UUID %s", r.Name, r.BIOSUUID)
		}
	}
	if len(res.Errors) != 2 || res.Errors[0].Column != "VM UUID" {
		t.Errorf("want one warning per VM sharing the UUID, got %+v", res.Errors)
	}
	if n := discovery.Normalise(res.Records, nil); len(n.Hosts) != 2 {
		t.Errorf("two VMs with the vCenter's UUID merged into %d hosts", len(n.Hosts))
	}
}

// TestRVToolsXLSXMatchesCSV imports the same generated export as four CSV
// files and as one workbook: the records must be identical.
func TestRVToolsXLSXMatchesCSV(t *testing.T) {
	dir := t.TempDir()
	paths, err := GenerateRVToolsCSV(dir, 60, 7)
	if err != nil {
		t.Fatal(err)
	}
	xlsx := filepath.Join(dir, "export.xlsx")
	if err := GenerateRVToolsXLSX(xlsx, 60, 7); err != nil {
		t.Fatal(err)
	}
	fromCSV := importFiles(t, Limits{}, paths...)
	fromXLSX := importFiles(t, Limits{}, xlsx)
	if len(fromCSV.Errors)+len(fromXLSX.Errors) != 0 {
		t.Fatalf("generated export has errors: %v %v", fromCSV.Errors, fromXLSX.Errors)
	}
	if len(fromCSV.Records) != 60 {
		t.Fatalf("%d records from 60 VMs", len(fromCSV.Records))
	}
	ignoreSource := cmpopts.IgnoreFields(discovery.Record{}, "Source")
	if d := cmp.Diff(fromCSV.Records, fromXLSX.Records, ignoreSource); d != "" {
		t.Fatalf("csv vs xlsx (-csv +xlsx):\n%s", d)
	}
	if fromXLSX.Files[0].Rows != 60*(1+1.5*2+1) {
		t.Errorf("xlsx rows %d", fromXLSX.Files[0].Rows)
	}
}

func TestCaptures(t *testing.T) {
	res := importFiles(t, Limits{}, "testdata/web01.ss.txt", "testdata/capture-db.txt")
	wantErrs := []discovery.RowError{
		{File: "web01.ss.txt", Row: 11, Reason: `local address: "bogus" is not a port`},
		{File: "capture-db.txt", Row: 10, Reason: `unknown state "WEIRD"`},
	}
	if d := cmp.Diff(wantErrs, res.Errors); d != "" {
		t.Errorf("errors (-want +got):\n%s", d)
	}
	var names []string
	for _, r := range res.Records {
		names = append(names, r.Name+" "+strings.Join(r.IPs, ","))
	}
	if d := cmp.Diff([]string{"web01 10.1.0.5", "db01.corp.local 10.1.0.9"}, names); d != "" {
		t.Errorf("capture hosts (-want +got):\n%s", d)
	}
	// Merge with the RVTools export: the captures' peers resolve to VMs by IP.
	rv := importFiles(t, Limits{}, rvFiles()...)
	n := discovery.Normalise(append(rv.Records, res.Records...), res.Connections)
	if len(n.Hosts) != 2 {
		t.Fatalf("captures must merge into the RVTools VMs by name: %d hosts", len(n.Hosts))
	}
	srcs := []string{"capture:web01.ss.txt", "capture:capture-db.txt"}
	want := []discovery.HostConnection{
		{Src: "h-00001", Dst: "h-00002", Port: 1521, Protocol: "tcp", Process: "java", Count: 2, Sources: srcs[:1]},
		{SrcAddress: "10.9.9.9", Dst: "h-00001", Port: 443, Protocol: "tcp", Process: "nginx", Count: 2, Sources: srcs[:1]},
		{Src: "h-00002", DstAddress: "10.1.0.20:389", Port: 389, Protocol: "tcp", Process: "java", Count: 1, Sources: srcs[1:]},
		// The server side of the same dependency, seen from db01 (the WEIRD line was rejected).
		{Src: "h-00001", Dst: "h-00002", Port: 1521, Protocol: "tcp", Process: "oracle_2002_o", Count: 1, Sources: srcs[1:]},
	}
	if d := cmp.Diff(want, n.Connections); d != "" {
		t.Errorf("connections (-want +got):\n%s", d)
	}
}

func TestEstateJSON(t *testing.T) {
	res := importFiles(t, Limits{}, "testdata/estate.json")
	wantErrs := []discovery.RowError{
		{File: "estate.json", Row: 4, Column: "connections.port", Reason: "a JSON string cannot be a int"},
		{File: "estate.json", Row: 3, Column: "hosts.criticality", Reason: `"extreme" is not one of critical, high, low, medium`},
		{File: "estate.json", Row: 3, Column: "hosts.cpu_p95", Reason: "140 is outside 0..100"},
		{File: "estate.json", Row: 4, Column: "hosts.cpus", Reason: "a JSON string cannot be a int64"},
		{File: "estate.json", Row: 3, Column: "connections.src", Reason: `"h-00009" is not the id of a host in this file`},
	}
	if d := cmp.Diff(wantErrs, res.Errors); d != "" {
		t.Errorf("errors (-want +got):\n%s", d)
	}
	n := discovery.Normalise(res.Records, res.Connections)
	est := n.ToEstate()
	if len(est.Hosts) != 2 || len(est.Connections) != 2 {
		t.Fatalf("estate: %d hosts, %d connections", len(est.Hosts), len(est.Connections))
	}
	wantWeb := discovery.EstateHost{ID: "h-00001", Name: "web01", FQDN: "web01.corp.local", Application: "shop", Environment: "production",
		Criticality: "high", Owner: "team-a", Tags: []string{"pci"}, OS: "CentOS Linux 7.9", OSFamily: "linux", Arch: "x86_64", BootMode: "bios",
		CPUs: 4, MemoryMiB: 8192, CPUP95: 35.5, MemoryP95: 61, IPs: []string{"10.1.0.5"}, MACs: []string{"00:50:56:aa:bb:cc"},
		BIOSUUID: "4211a2b3-c4d5-e6f7-0819-2a3b4c5d6e7f", Virtualization: "vmware",
		Disks: []discovery.EstateDisk{{Name: "sda", ProvisionedBytes: 107374182400, UsedBytes: 42949672960}}}
	if d := cmp.Diff(wantWeb, est.Hosts[0]); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	if est.Hosts[1].PinnedWave != 2 || est.Connections[1].DstAddress != "api.example.com:443" {
		t.Errorf("estate details lost: %+v %+v", est.Hosts[1], est.Connections[1])
	}
}

func TestRefusedFileContributesNothing(t *testing.T) {
	im := New(Limits{MaxBytes: 300}, clock)
	err := im.AddFile("testdata/hosts.csv")
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("file over the byte cap: %v", err)
	}
	// The same cap enforced on a stream with no size known up front.
	raw, _ := os.ReadFile("testdata/hosts.csv")
	if err := im.Add("hosts.csv", bytes.NewReader(raw)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("stream over the byte cap: %v", err)
	}
	im2 := New(Limits{MaxRows: 2}, clock)
	if err := im2.AddFile("testdata/hosts.csv"); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 2 rows") {
		t.Fatalf("file over the row cap: %v", err)
	}
	if err := im2.Add("broken.json", strings.NewReader(`{"hosts":[{"id":"h1","name":"a"},{"id":`)); err == nil {
		t.Fatal("truncated JSON accepted")
	}
	for _, res := range []Result{im.Finish(), im2.Finish()} {
		if len(res.Records) != 0 || len(res.Errors) != 0 {
			t.Fatalf("a refused file left %d records and %d errors behind", len(res.Records), len(res.Errors))
		}
	}
	for _, junk := range []string{"hello world\n", "vm\n", "name\n"} {
		if k, err := Detect("notes.txt", []byte(junk)); !errors.Is(err, ErrUnknownFormat) {
			t.Fatalf("Detect(%q) = %s, %v; want unknown format", junk, k, err)
		}
	}
}

func TestMaxErrorsCounted(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,name,cpus\n")
	for i := 0; i < 50; i++ {
		b.WriteString("x,h,notanumber\n")
	}
	im := New(Limits{MaxErrors: 10}, clock)
	if err := im.Add("hosts.csv", strings.NewReader(b.String())); err != nil {
		t.Fatal(err)
	}
	res := im.Finish()
	if len(res.Errors) != 10 || res.ErrorsDropped != 40 {
		t.Fatalf("kept %d errors, dropped %d", len(res.Errors), res.ErrorsDropped)
	}
}

func TestDetectAndHostNames(t *testing.T) {
	cases := []struct {
		name, head string
		want       Kind
	}{
		{"RVTools_tabvInfo.csv", "VM,Powerstate\n", KindRVToolsCSV},
		{"hosts.csv", "\xef\xbb\xbfid,name,fqdn\n", KindHostsCSV},
		{"deps.csv", "src,dst,dst_address,port\n", KindConnectionsCSV},
		{"x.xlsx", "PK\x03\x04", KindRVToolsXLSX},
		{"estate.json", "{", KindEstateJSON},
		{"db01.txt", "Proto Recv-Q Send-Q Local Address\n", KindNetstat},
		{"db01.txt", "State Recv-Q Send-Q Local Address:Port Peer Address:Port\n", KindSS},
	}
	for _, c := range cases {
		if got, err := Detect(c.name, []byte(c.head)); got != c.want || err != nil {
			t.Errorf("Detect(%s) = %s, %v; want %s", c.name, got, err, c.want)
		}
	}
	for in, want := range map[string]string{"web01.ss.txt": "web01", "/tmp/DB01-netstat.log": "db01", "ss_app7.txt": "app7", `C:\caps\web02.txt`: "web02"} {
		if got := HostFromCaptureName(in); got != want {
			t.Errorf("HostFromCaptureName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseSocketLines(t *testing.T) {
	ss := []struct {
		line string
		want SocketLine
	}{
		{`ESTAB 0 0 10.0.0.5:22 10.0.0.9:51234 users:(("sshd",pid=5678,fd=3))`, SocketLine{"ESTABLISHED", "10.0.0.5", 22, "10.0.0.9", 51234, 5678, "sshd"}},
		{`LISTEN 0 128 *:22 *:*`, SocketLine{"LISTEN", "0.0.0.0", 22, "0.0.0.0", 0, 0, ""}},
		{`LISTEN 0 128 :::22 :::*`, SocketLine{"LISTEN", "::", 22, "::", 0, 0, ""}},
		{`tcp ESTAB 0 0 [::ffff:10.0.0.5]:443 [::ffff:10.0.0.7]:5000 users:(("java",pid=9,fd=1))`, SocketLine{"ESTABLISHED", "10.0.0.5", 443, "10.0.0.7", 5000, 9, "java"}},
		{`ESTAB 0 0 ::ffff:10.0.0.5:443 ::ffff:10.0.0.7:5000`, SocketLine{"ESTABLISHED", "10.0.0.5", 443, "10.0.0.7", 5000, 0, ""}},
	}
	for _, c := range ss {
		got, err := ParseSSLine(c.line)
		if err != nil || got != c.want {
			t.Errorf("ParseSSLine(%q) = %+v, %v; want %+v", c.line, got, err, c.want)
		}
	}
	ns := []struct {
		line string
		want SocketLine
	}{
		{`tcp 0 0 10.1.0.9:1521 10.1.0.5:40122 ESTABLISHED 2002/oracle`, SocketLine{"ESTABLISHED", "10.1.0.9", 1521, "10.1.0.5", 40122, 2002, "oracle"}},
		{`tcp6 0 0 :::80 :::* LISTEN 999/nginx: master`, SocketLine{"LISTEN", "::", 80, "::", 0, 999, "nginx"}},
		{`  TCP    10.0.0.4:3389    10.0.0.8:50000    ESTABLISHED     1044`, SocketLine{"ESTABLISHED", "10.0.0.4", 3389, "10.0.0.8", 50000, 1044, ""}},
		{`tcp 0 0 0.0.0.0:22 0.0.0.0:* LISTEN -`, SocketLine{"LISTEN", "0.0.0.0", 22, "0.0.0.0", 0, 0, ""}},
	}
	for _, c := range ns {
		got, err := ParseNetstatLine(c.line)
		if err != nil || got != c.want {
			t.Errorf("ParseNetstatLine(%q) = %+v, %v; want %+v", c.line, got, err, c.want)
		}
	}
	for _, skip := range []string{"", "State Recv-Q", "udp 0 0 0.0.0.0:68 0.0.0.0:* 612/dhclient", "unix 2 [ ] DGRAM 1 /x"} {
		if _, err := ParseNetstatLine(skip); !errors.Is(err, errSkip) {
			if _, err2 := ParseSSLine(skip); !errors.Is(err2, errSkip) {
				t.Errorf("%q should be skipped: %v / %v", skip, err, err2)
			}
		}
	}
}
