package collect

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/google/go-cmp/cmp"
)

// fakeTree writes files (path → content) under a temp root; a content of
// "->target" makes a symlink, the way /proc/<pid>/fd entries look.
func fakeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

func baseTree() map[string]string {
	return map[string]string{
		"proc/sys/kernel/hostname":      "db01\n",
		"proc/sys/kernel/domainname":    "(none)\n",
		"proc/sys/kernel/osrelease":     "5.14.0-362.el9.x86_64\n",
		"proc/sys/kernel/arch":          "x86_64\n",
		"etc/machine-id":                "0123456789abcdef0123456789abcdef\n",
		"etc/os-release":                "NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\n",
		"sys/class/dmi/id/product_uuid": "4211A2B3-C4D5-E6F7-0819-2A3B4C5D6E7F\n",
		"sys/class/dmi/id/sys_vendor":   "VMware, Inc.\n",
		"sys/class/dmi/id/product_name": "VMware Virtual Platform\n",
		"sys/firmware/efi/":             "",
		"proc/cpuinfo": "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6230\nphysical id\t: 0\ncore id\t: 0\nflags\t: fpu hypervisor\n\n" +
			"processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Gold 6230\nphysical id\t: 0\ncore id\t: 1\n\n" +
			"processor\t: 2\nmodel name\t: Intel(R) Xeon(R) Gold 6230\nphysical id\t: 1\ncore id\t: 0\n\n" +
			"processor\t: 3\nmodel name\t: Intel(R) Xeon(R) Gold 6230\nphysical id\t: 1\ncore id\t: 0\n",
		"proc/meminfo":                                      "MemTotal:       16384000 kB\nMemFree:  1000 kB\nMemAvailable:    4096000 kB\n",
		"sys/block/sda/size":                                "209715200\n",
		"sys/block/sda/device/model":                        "Virtual disk\n",
		"sys/block/sda/queue/rotational":                    "0\n",
		"sys/block/sda/removable":                           "0\n",
		"sys/block/sda/sda1/partition":                      "1\n",
		"sys/block/sda/sda1/size":                           "2097152\n",
		"sys/block/sda/sda2/partition":                      "2\n",
		"sys/block/sda/sda2/size":                           "207616000\n",
		"sys/block/loop0/size":                              "100\n",
		"proc/self/mounts":                                  "/dev/sda2 / xfs rw 0 0\nproc /proc proc rw 0 0\n/dev/sda1 /boot\\040efi vfat rw 0 0\n/dev/sda2 /srv/bind xfs rw 0 0\ntmpfs /run tmpfs rw 0 0\n",
		"sys/class/net/lo/address":                          "00:00:00:00:00:00\n",
		"sys/class/net/ens192/address":                      "00:50:56:AA:BB:CC\n",
		"sys/class/net/ens192/mtu":                          "1500\n",
		"sys/class/net/ens192/operstate":                    "up\n",
		"sys/class/net/ens192/device/driver":                "->../../../bus/pci/drivers/vmxnet3",
		"sys/module/virtio_net/":                            "",
		"lib/modules/5.14.0-362.el9.x86_64/modules.builtin": "kernel/drivers/block/virtio_blk.ko\n",
		"lib/modules/5.14.0-362.el9.x86_64/modules.dep":     "kernel/drivers/scsi/virtio_scsi.ko.xz: kernel/drivers/virtio/virtio.ko.xz\n",
		// 10.0.0.5:5432 listening (postgres, pid 100); an established
		// connection from 10.0.0.7:50000; java (pid 200) calling out to
		// 10.0.0.9:1521; and a v6 listener on [::]:22 (sshd, pid 1).
		"proc/net/tcp": tcpHeader +
			"   0: 0500000A:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000    26        0 1001 1 0000000000000000 100 0 0 10 0\n" +
			"   1: 0500000A:1538 0700000A:C350 01 00000000:00000000 00:00000000 00000000    26        0 1002 1 0000000000000000 20 4 30 10 -1\n" +
			"   2: 0500000A:A410 0900000A:05F1 01 00000000:00000000 00:00000000 00000000  1000        0 2001 1 0000000000000000 20 4 30 10 -1\n" +
			"   3: 0500000A:A411 0900000A:05F1 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000\n" +
			"   4: garbage\n",
		"proc/net/tcp6": tcpHeader +
			"   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3001 1 0000000000000000 100 0 0 10 0\n",
		"proc/1/comm":         "sshd\n",
		"proc/1/cmdline":      "/usr/sbin/sshd\x00-D\x00",
		"proc/1/fd/3":         "->socket:[3001]",
		"proc/100/comm":       "postgres\n",
		"proc/100/cmdline":    "/usr/pgsql-15/bin/postgres\x00-D\x00/var/lib/pgsql\x00",
		"proc/100/fd/5":       "->socket:[1001]",
		"proc/100/fd/6":       "->socket:[1002]",
		"proc/100/fd/0":       "->/dev/null",
		"proc/200/comm":       "java\n",
		"proc/200/cmdline":    "/usr/bin/java\x00-cp\x00x.jar\x00org.apache.catalina.startup.Bootstrap\x00start\x00",
		"proc/200/fd/9":       "->socket:[2001]",
		"var/lib/dpkg/status": "Package: nginx\nStatus: install ok installed\nVersion: 1.22.1-9\n\nPackage: redis-server\nStatus: deinstall ok config-files\nVersion: 5:7.0\n\n",
		"opt/mssql/":          "",
	}
}

func TestInventoryFromFakeTree(t *testing.T) {
	root := fakeTree(t, baseTree())
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	c := &Collector{
		Root: root,
		Now:  func() time.Time { return now },
		InterfaceAddrs: func(name string) ([]string, error) {
			return map[string][]string{"ens192": {"10.0.0.5/24"}}[name], nil
		},
		Statfs: func(path string) (uint64, uint64, error) {
			return map[string][2]uint64{filepath.Join(root, "/"): {100, 40}, filepath.Join(root, "/boot efi"): {10, 1}}[path][0],
				map[string][2]uint64{filepath.Join(root, "/"): {100, 40}, filepath.Join(root, "/boot efi"): {10, 1}}[path][1], nil
		},
	}
	inv, err := c.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := discovery.Inventory{
		CollectedAt: now, Hostname: "db01", MachineID: "0123456789abcdef0123456789abcdef",
		BIOSUUID: "4211a2b3-c4d5-e6f7-0819-2a3b4c5d6e7f", SystemVendor: "VMware, Inc.", ProductName: "VMware Virtual Platform",
		Virtualization: "vmware",
		OS:             discovery.OSRelease{ID: "rocky", IDLike: "rhel centos fedora", Name: "Rocky Linux", VersionID: "9.3", PrettyName: "Rocky Linux 9.3 (Blue Onyx)"},
		Kernel:         "5.14.0-362.el9.x86_64", Arch: "x86_64", BootMode: "uefi",
		CPU:         discovery.CPU{Model: "Intel(R) Xeon(R) Gold 6230", Sockets: 2, Cores: 3, Threads: 4},
		MemoryBytes: 16384000 * 1024,
		BlockDevices: []discovery.BlockDevice{{Name: "sda", SizeBytes: 209715200 * 512, Model: "Virtual disk", Partitions: []discovery.Partition{
			{Name: "sda1", SizeBytes: 2097152 * 512}, {Name: "sda2", SizeBytes: 207616000 * 512}}}},
		Filesystems: []discovery.Filesystem{
			{Device: "/dev/sda2", MountPoint: "/", Type: "xfs", SizeBytes: 100, UsedBytes: 40},
			{Device: "/dev/sda1", MountPoint: "/boot efi", Type: "vfat", SizeBytes: 10, UsedBytes: 1},
		},
		NICs:          []discovery.NIC{{Name: "ens192", MAC: "00:50:56:aa:bb:cc", MTU: 1500, Up: true, Driver: "vmxnet3", Addresses: []string{"10.0.0.5/24"}}},
		VirtioDrivers: []discovery.VirtioDriver{{Name: "virtio_blk", State: "builtin"}, {Name: "virtio_net", State: "loaded"}, {Name: "virtio_scsi", State: "module"}},
		Software: []discovery.Software{
			{Name: "PostgreSQL", Source: "process", Evidence: "postgres", PID: 100},
			{Name: "Tomcat", Source: "process", Evidence: "org.apache.catalina.startup.Bootstrap", PID: 200},
			{Name: "nginx", Version: "1.22.1-9", Source: "package", Evidence: "nginx"},
			{Name: "SQL Server", Source: "path", Evidence: "/opt/mssql"},
		},
		Listening: []discovery.Socket{
			{Protocol: "tcp", Address: "10.0.0.5", Port: 5432, PID: 100, Process: "postgres"},
			{Protocol: "tcp6", Address: "::", Port: 22, PID: 1, Process: "sshd"},
		},
		Connections: []discovery.Connection{
			{Protocol: "tcp", LocalAddress: "10.0.0.5", LocalPort: 5432, RemoteAddress: "10.0.0.7", RemotePort: 50000, State: "ESTABLISHED", PID: 100, Process: "postgres"},
			{Protocol: "tcp", LocalAddress: "10.0.0.5", LocalPort: 42000, RemoteAddress: "10.0.0.9", RemotePort: 1521, State: "ESTABLISHED", PID: 200, Process: "java"},
		},
		Warnings: []string{"1 unparsable lines in /proc/net/tcp{,6}"},
	}
	if d := cmp.Diff(want, inv); d != "" {
		t.Fatalf("inventory (-want +got):\n%s", d)
	}
}

func TestInventoryWithoutProc(t *testing.T) {
	c := &Collector{Root: t.TempDir()}
	if _, err := c.Inventory(context.Background()); err == nil {
		t.Fatal("an empty root must fail: there is no /proc to read")
	}
}

// TestSocketsOnRealProc opens real listeners and clients on loopback and
// expects the collector to find them in the real /proc with this process
// as owner.
func TestSocketsOnRealProc(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp on this system")
	}
	self, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	comm := strings.TrimSpace(string(self))
	pid := os.Getpid()

	type pair struct{ listen, client, server net.Conn }
	var ls []net.Listener
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		for _, l := range ls {
			l.Close()
		}
	})
	networks := []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}}
	type expect struct {
		listenPort int
		clientPort int
		family     string
	}
	var exp []expect
	for _, n := range networks {
		l, err := net.Listen(n.network, n.addr)
		if err != nil {
			if n.network == "tcp6" {
				t.Logf("no IPv6 loopback: %v", err)
				continue
			}
			t.Fatal(err)
		}
		ls = append(ls, l)
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err == nil {
				accepted <- c
			}
		}()
		cl, err := net.Dial(n.network, l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, cl, <-accepted)
		exp = append(exp, expect{
			listenPort: l.Addr().(*net.TCPAddr).Port,
			clientPort: cl.LocalAddr().(*net.TCPAddr).Port,
			family:     map[string]string{"tcp4": "tcp", "tcp6": "tcp6"}[n.network],
		})
	}

	c := &Collector{}
	listening, established, _, err := c.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exp {
		found := false
		for _, s := range listening {
			if s.Port == e.listenPort && s.Protocol == e.family {
				found = true
				if s.PID != pid || s.Process != comm {
					t.Errorf("listener on %d: owner pid %d %q, want %d %q", e.listenPort, s.PID, s.Process, pid, comm)
				}
			}
		}
		if !found {
			t.Errorf("listener on port %d (%s) not reported", e.listenPort, e.family)
		}
		var client, server bool
		for _, cn := range established {
			if cn.State != "ESTABLISHED" || cn.PID != pid || cn.Process != comm {
				continue
			}
			if cn.LocalPort == e.clientPort && cn.RemotePort == e.listenPort {
				client = true
				if a, _ := netip.ParseAddr(cn.RemoteAddress); !a.IsLoopback() {
					t.Errorf("client remote address %q is not loopback", cn.RemoteAddress)
				}
			}
			if cn.LocalPort == e.listenPort && cn.RemotePort == e.clientPort {
				server = true
			}
		}
		if !client || !server {
			t.Errorf("%s connection %d→%d: client side seen %v, server side seen %v", e.family, e.clientPort, e.listenPort, client, server)
		}
	}
}

func TestRealInventoryIsComplete(t *testing.T) {
	inv, err := (&Collector{}).Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if inv.Hostname != host || inv.Kernel == "" || inv.CPU.Threads == 0 || inv.MemoryBytes == 0 || inv.OS.ID == "" {
		t.Fatalf("real inventory missing basics: %+v", inv)
	}
}

func TestSamplerComputesRates(t *testing.T) {
	files := baseTree()
	files["proc/stat"] = "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 1 1 1\n"
	files["proc/diskstats"] = "   8       0 sda 10 0 1000 0 10 0 1000 0 0 0 0\n   8       1 sda1 10 0 1000 0 10 0 1000 0 0 0 0\n   7       0 loop0 1 0 9999 0 0 0 0 0 0 0 0\n"
	files["proc/net/dev"] = "Inter-|\n face |\n    lo: 999 1 0 0 0 0 0 0 999 0 0 0 0 0 0 0\nens192: 1000 1 0 0 0 0 0 0 2000 0 0 0 0 0 0 0\n"
	root := fakeTree(t, files)
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	c := &Collector{Root: root, Now: func() time.Time { return now }}
	s := &Sampler{Collector: c}
	if _, ok, err := s.Sample(); ok || err != nil {
		t.Fatalf("first sample must only prime: ok=%v err=%v", ok, err)
	}
	must := func(p, content string) {
		if err := os.WriteFile(filepath.Join(root, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must("proc/stat", "cpu  200 0 200 1400 200 0 0 0 0 0\n")
	must("proc/diskstats", "   8       0 sda 10 0 3000 0 10 0 3000 0 0 0 0\n   8       1 sda1 10 0 3000 0 10 0 3000 0 0 0 0\n")
	must("proc/net/dev", "ens192: 6000 1 0 0 0 0 0 0 7000 0 0 0 0 0 0 0\n")
	now = now.Add(10 * time.Second)
	got, ok, err := s.Sample()
	if err != nil || !ok {
		t.Fatalf("second sample: ok=%v err=%v", ok, err)
	}
	want := discovery.UtilisationSample{
		At:                 now,
		CPUPercent:         20,                // 200 busy of 1000 jiffies
		MemoryPercent:      75,                // (16384000-4096000)/16384000
		DiskIOBytesPerSec:  4000 * 512 / 10.0, // whole disk only, not its partition or loop0
		NetworkBytesPerSec: 10000 / 10.0,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("sample (-want +got):\n%s", d)
	}
}

func TestParseTCPLine(t *testing.T) {
	e, err := ParseTCPLine("   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 30 10 -1")
	if err != nil {
		t.Fatal(err)
	}
	want := TCPEntry{Local: netip.MustParseAddrPort("127.0.0.1:8080"), Remote: netip.MustParseAddrPort("127.0.0.1:50000"), State: "ESTABLISHED", Inode: 4242}
	if d := cmp.Diff(want, e, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	e6, err := ParseTCPLine("   0: 00000000000000000000000001000000:1F90 0000000000000000FFFF00000100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 77 1")
	if err != nil {
		t.Fatal(err)
	}
	if e6.Local.String() != "[::1]:8080" || e6.Remote.Addr().Unmap().String() != "127.0.0.1" {
		t.Fatalf("v6 parse: %v %v", e6.Local, e6.Remote)
	}
	for _, bad := range []string{"", "1: x y", "   1: 0100007F:1F90 0100007F:C350 ZZ 0 0 0 0 0 1", "   1: 0100007F 0100007F:C350 01 0 0 0 0 0 1", "   1: 0100007F:1F90 0100007F:C350 01 0 0 0 0 0 -1"} {
		if _, err := ParseTCPLine(bad); err == nil {
			t.Errorf("ParseTCPLine(%q) accepted garbage", bad)
		}
	}
}

func FuzzParseTCPLine(f *testing.F) {
	f.Add("   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 30 10 -1")
	f.Add("   0: 00000000000000000000000001000000:1F90 0000000000000000FFFF00000100007F:C350 0A 0:0 0:0 0 0 0 77 1")
	f.Add(tcpHeader)
	f.Add("0: :: :: 01 a b c d e 1")
	f.Fuzz(func(t *testing.T, line string) {
		e, err := ParseTCPLine(line)
		if err != nil {
			return
		}
		if !e.Local.IsValid() || !e.Remote.IsValid() || e.State == "" {
			t.Fatalf("accepted line gave an invalid entry: %+v", e)
		}
	})
}

// BenchmarkInventory measures one full inventory pass on the real host and
// reports the CPU time (user+system) it costs.
func BenchmarkInventory(b *testing.B) {
	c := &Collector{}
	ctx := context.Background()
	start := cpuTime(b)
	for b.Loop() {
		if _, err := c.Inventory(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime(b)-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
