// Package collect reads a Linux host's inventory, sockets and utilisation
// from /proc and /sys, without shelling out. Root makes the whole tree
// relocatable, so tests run both against a fake tree and the real one.
package collect

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
)

// Collector reads one host. The zero value reads the real host at "/".
type Collector struct {
	// Root is the directory that holds proc/, sys/, etc/ and var/; "/"
	// when empty.
	Root string
	// Now stamps the inventory; time.Now when nil.
	Now func() time.Time
	// InterfaceAddrs lists an interface's addresses in CIDR form. Addresses
	// come from netlink, not from a file, so a fake tree must supply them;
	// nil means the real host's when Root is "/", none otherwise.
	InterfaceAddrs func(name string) ([]string, error)
	// Statfs returns the size and used bytes of the filesystem mounted at
	// path (already joined to Root); syscall.Statfs when nil.
	Statfs func(path string) (size, used uint64, err error)
}

func (c *Collector) root() string {
	if c.Root == "" {
		return "/"
	}
	return c.Root
}

func (c *Collector) path(elem ...string) string {
	return filepath.Join(append([]string{c.root()}, elem...)...)
}

func (c *Collector) read(elem ...string) string {
	b, err := os.ReadFile(c.path(elem...))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Inventory collects everything the agent reports about the host. It
// fails only when /proc itself is unreadable; anything else that is
// missing becomes a warning in the inventory.
func (c *Collector) Inventory(ctx context.Context) (discovery.Inventory, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	inv := discovery.Inventory{CollectedAt: now().UTC()}
	if _, err := os.Stat(c.path("proc", "meminfo")); err != nil {
		return inv, fmt.Errorf("read %s: %w", c.path("proc"), err)
	}
	inv.Hostname = c.read("proc", "sys", "kernel", "hostname")
	if d := c.read("proc", "sys", "kernel", "domainname"); d != "" && d != "(none)" {
		inv.FQDN = inv.Hostname + "." + d
	}
	inv.MachineID = c.read("etc", "machine-id")
	inv.BIOSUUID = strings.ToLower(c.read("sys", "class", "dmi", "id", "product_uuid"))
	if inv.BIOSUUID == "" {
		if _, err := os.Stat(c.path("sys", "class", "dmi", "id")); err == nil {
			inv.Warnings = append(inv.Warnings, "DMI product_uuid not readable; run as root to report the BIOS UUID")
		}
	}
	inv.SystemVendor = c.read("sys", "class", "dmi", "id", "sys_vendor")
	inv.ProductName = c.read("sys", "class", "dmi", "id", "product_name")
	inv.OS = c.osRelease()
	inv.Kernel = c.read("proc", "sys", "kernel", "osrelease")
	inv.Arch = c.read("proc", "sys", "kernel", "arch")
	if inv.Arch == "" {
		inv.Arch = map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i686"}[runtime.GOARCH]
	}
	inv.BootMode = discovery.BootBIOS
	if _, err := os.Stat(c.path("sys", "firmware", "efi")); err == nil {
		inv.BootMode = discovery.BootUEFI
	}
	var hypervisorFlag bool
	inv.CPU, hypervisorFlag = c.cpu()
	inv.Virtualization = virtualization(inv.SystemVendor, inv.ProductName, hypervisorFlag)
	inv.MemoryBytes = c.meminfo()["MemTotal"]
	inv.BlockDevices = c.blockDevices()
	inv.Filesystems = c.filesystems()
	inv.NICs = c.nics()
	inv.VirtioDrivers = c.virtio(inv.Kernel)

	if err := ctx.Err(); err != nil {
		return inv, err
	}
	procs, inodes, denied := c.scanProcesses()
	listening, conns, warns, err := c.sockets(procs, inodes, denied)
	if err != nil {
		inv.Warnings = append(inv.Warnings, err.Error())
	}
	inv.Listening, inv.Connections = listening, conns
	inv.Warnings = append(inv.Warnings, warns...)
	inv.Software = c.software(procs)
	nonNil(&inv)
	return inv, nil
}

// nonNil makes empty lists print as [] so a reader sees "none" rather
// than "not collected".
func nonNil(inv *discovery.Inventory) {
	if inv.BlockDevices == nil {
		inv.BlockDevices = []discovery.BlockDevice{}
	}
	if inv.Filesystems == nil {
		inv.Filesystems = []discovery.Filesystem{}
	}
	if inv.NICs == nil {
		inv.NICs = []discovery.NIC{}
	}
	if inv.VirtioDrivers == nil {
		inv.VirtioDrivers = []discovery.VirtioDriver{}
	}
	if inv.Software == nil {
		inv.Software = []discovery.Software{}
	}
	if inv.Listening == nil {
		inv.Listening = []discovery.Socket{}
	}
	if inv.Connections == nil {
		inv.Connections = []discovery.Connection{}
	}
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

func (c *Collector) osRelease() discovery.OSRelease {
	text := c.read("etc", "os-release")
	if text == "" {
		text = c.read("usr", "lib", "os-release")
	}
	var r discovery.OSRelease
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		v = unquote(v)
		switch k {
		case "ID":
			r.ID = v
		case "ID_LIKE":
			r.IDLike = v
		case "NAME":
			r.Name = v
		case "VERSION_ID":
			r.VersionID = v
		case "PRETTY_NAME":
			r.PrettyName = v
		}
	}
	return r
}

func (c *Collector) cpu() (discovery.CPU, bool) {
	f, err := os.Open(c.path("proc", "cpuinfo"))
	if err != nil {
		return discovery.CPU{}, false
	}
	defer f.Close()
	var cpu discovery.CPU
	hypervisor := false
	sockets := map[string]bool{}
	cores := map[string]bool{}
	phys := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			cpu.Threads++
			phys = "0"
		case "model name":
			if cpu.Model == "" {
				cpu.Model = v
			}
		case "physical id":
			phys = v
			sockets[v] = true
		case "core id":
			cores[phys+"/"+v] = true
		case "flags":
			hypervisor = hypervisor || strings.Contains(" "+v+" ", " hypervisor ")
		}
	}
	cpu.Sockets = max(len(sockets), 1)
	cpu.Cores = len(cores)
	if cpu.Cores == 0 {
		cpu.Cores = cpu.Threads // architectures without core ids
	}
	return cpu, hypervisor
}

func virtualization(vendor, product string, hypervisorFlag bool) string {
	v := strings.ToLower(vendor + " " + product)
	switch {
	case strings.Contains(v, "vmware"):
		return "vmware"
	case strings.Contains(v, "microsoft") && strings.Contains(v, "virtual"):
		return "hyperv"
	case strings.Contains(v, "xen"):
		return "xen"
	case strings.Contains(v, "qemu"), strings.Contains(v, "kvm"), strings.Contains(v, "alibaba"), strings.Contains(v, "openstack"),
		strings.Contains(v, "amazon ec2"), strings.Contains(v, "google compute"):
		return "kvm"
	case hypervisorFlag:
		return "virtual"
	case strings.TrimSpace(v) == "":
		return ""
	default:
		return "physical"
	}
}

func (c *Collector) meminfo() map[string]uint64 {
	m := map[string]uint64{}
	for _, line := range strings.Split(c.read("proc", "meminfo"), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		m[k] = n
	}
	return m
}

// virtualBlock are block devices that are not disks to migrate.
func virtualBlock(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func (c *Collector) blockDevices() []discovery.BlockDevice {
	ents, _ := os.ReadDir(c.path("sys", "block"))
	var out []discovery.BlockDevice
	for _, e := range ents {
		name := e.Name()
		if virtualBlock(name) {
			continue
		}
		bd := discovery.BlockDevice{
			Name:       name,
			SizeBytes:  c.sectors("sys", "block", name, "size"),
			Model:      c.read("sys", "block", name, "device", "model"),
			Rotational: c.read("sys", "block", name, "queue", "rotational") == "1",
			Removable:  c.read("sys", "block", name, "removable") == "1",
			Partitions: []discovery.Partition{},
		}
		subs, _ := os.ReadDir(c.path("sys", "block", name))
		for _, s := range subs {
			if _, err := os.Stat(c.path("sys", "block", name, s.Name(), "partition")); err == nil {
				bd.Partitions = append(bd.Partitions, discovery.Partition{Name: s.Name(), SizeBytes: c.sectors("sys", "block", name, s.Name(), "size")})
			}
		}
		out = append(out, bd)
	}
	return out
}

// sectors reads a sysfs size file, which counts 512-byte sectors whatever
// the device's real sector size.
func (c *Collector) sectors(elem ...string) uint64 {
	n, _ := strconv.ParseUint(c.read(elem...), 10, 64)
	return n * 512
}

var diskFS = map[string]bool{
	"ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true, "vfat": true, "zfs": true, "jfs": true,
	"reiserfs": true, "f2fs": true, "ntfs": true, "ntfs3": true, "ocfs2": true, "gfs2": true, "overlay": true,
}

func (c *Collector) filesystems() []discovery.Filesystem {
	text := c.read("proc", "self", "mounts")
	if text == "" {
		text = c.read("proc", "mounts")
	}
	statfs := c.Statfs
	if statfs == nil {
		statfs = realStatfs
	}
	var out []discovery.Filesystem
	seen := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !diskFS[f[2]] {
			continue
		}
		dev, mnt := f[0], unescapeMount(f[1])
		if seen[dev] && dev != "overlay" {
			continue // a bind mount of a filesystem already listed
		}
		seen[dev] = true
		fs := discovery.Filesystem{Device: dev, MountPoint: mnt, Type: f[2]}
		if size, used, err := statfs(c.path(mnt)); err == nil {
			fs.SizeBytes, fs.UsedBytes = size, used
		}
		out = append(out, fs)
	}
	return out
}

// unescapeMount undoes the octal escapes /proc/mounts uses for spaces.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func realStatfs(path string) (size, used uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	bs := uint64(st.Bsize)
	return st.Blocks * bs, (st.Blocks - st.Bfree) * bs, nil
}

func (c *Collector) nics() []discovery.NIC {
	ents, _ := os.ReadDir(c.path("sys", "class", "net"))
	addrs := c.InterfaceAddrs
	if addrs == nil && c.root() == "/" {
		addrs = hostAddrs
	}
	var out []discovery.NIC
	for _, e := range ents {
		name := e.Name()
		if name == "lo" {
			continue
		}
		n := discovery.NIC{Name: name, MAC: discovery.CanonicalMAC(c.read("sys", "class", "net", name, "address")), Addresses: []string{}}
		n.MTU, _ = strconv.Atoi(c.read("sys", "class", "net", name, "mtu"))
		n.Up = c.read("sys", "class", "net", name, "operstate") == "up"
		if link, err := os.Readlink(c.path("sys", "class", "net", name, "device", "driver")); err == nil {
			n.Driver = filepath.Base(link)
		}
		if addrs != nil {
			if a, err := addrs(name); err == nil && a != nil {
				n.Addresses = a
			}
		}
		out = append(out, n)
	}
	return out
}

func hostAddrs(name string) ([]string, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	as, err := ifc.Addrs()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out, nil
}

var virtioModules = []string{"virtio_blk", "virtio_net", "virtio_scsi", "virtio_pci", "virtio_console"}

// virtio reports which virtio drivers the kernel has: loaded now, built
// in, or available as a module (so an initramfs rebuild can add it).
func (c *Collector) virtio(kernel string) []discovery.VirtioDriver {
	builtin := c.read("lib", "modules", kernel, "modules.builtin")
	dep := c.read("lib", "modules", kernel, "modules.dep")
	var out []discovery.VirtioDriver
	for _, m := range virtioModules {
		state := ""
		switch {
		case exists(c.path("sys", "module", m)):
			state = "loaded"
		case strings.Contains(builtin, "/"+m+".ko"):
			state = "builtin"
		case strings.Contains(dep, "/"+m+".ko"):
			state = "module"
		}
		if state != "" {
			out = append(out, discovery.VirtioDriver{Name: m, State: state})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
