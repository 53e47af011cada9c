// Package discovery owns what Ferry learns about a source estate before it
// plans anything: the inventory an agent reports about its own host, the
// sockets and connections it observes, utilisation samples and their
// percentiles, the records that importers and vCenter produce, and the
// normaliser that merges every source into one list of hosts with the
// provenance of each field.
//
// The package is pure: it imports no database, transport or queue code.
// Sub-packages do the I/O: collect (procfs/sysfs), importer (files),
// vcenter (govmomi), agentapi (the /agent/v1 protocol) and agent (the
// client that runs on a source host).
package discovery

import (
	"math"
	"slices"
	"time"
)

// BootMode values as the planner and the estate format spell them.
const (
	BootBIOS = "bios"
	BootUEFI = "uefi"
)

// Inventory is one agent's snapshot of its host: what `ferry agent
// inventory` prints and what the agent uploads.
type Inventory struct {
	CollectedAt    time.Time      `json:"collected_at"`
	Hostname       string         `json:"hostname"`
	FQDN           string         `json:"fqdn,omitempty"`
	MachineID      string         `json:"machine_id,omitempty"`
	BIOSUUID       string         `json:"bios_uuid,omitempty"`
	SystemVendor   string         `json:"system_vendor,omitempty"`
	ProductName    string         `json:"product_name,omitempty"`
	Virtualization string         `json:"virtualization,omitempty"`
	OS             OSRelease      `json:"os"`
	Kernel         string         `json:"kernel"`
	Arch           string         `json:"arch"`
	BootMode       string         `json:"boot_mode"`
	CPU            CPU            `json:"cpu"`
	MemoryBytes    uint64         `json:"memory_bytes"`
	BlockDevices   []BlockDevice  `json:"block_devices"`
	Filesystems    []Filesystem   `json:"filesystems"`
	NICs           []NIC          `json:"nics"`
	VirtioDrivers  []VirtioDriver `json:"virtio_drivers"`
	Software       []Software     `json:"software"`
	Listening      []Socket       `json:"listening"`
	Connections    []Connection   `json:"connections"`
	// Warnings lists what could not be read (permissions, missing files)
	// so that a partial inventory says why it is partial.
	Warnings []string `json:"warnings,omitempty"`
}

// OSRelease carries the fields of /etc/os-release that identify a
// distribution and its version.
type OSRelease struct {
	ID         string `json:"id"`
	IDLike     string `json:"id_like,omitempty"`
	Name       string `json:"name"`
	VersionID  string `json:"version_id"`
	PrettyName string `json:"pretty_name"`
}

// CPU describes the processor as /proc/cpuinfo reports it.
type CPU struct {
	Model   string `json:"model"`
	Sockets int    `json:"sockets"`
	Cores   int    `json:"cores"`
	Threads int    `json:"threads"`
}

// BlockDevice is a whole disk with its partitions.
type BlockDevice struct {
	Name       string      `json:"name"`
	SizeBytes  uint64      `json:"size_bytes"`
	Model      string      `json:"model,omitempty"`
	Rotational bool        `json:"rotational"`
	Removable  bool        `json:"removable"`
	Partitions []Partition `json:"partitions"`
}

// Partition is one partition of a block device.
type Partition struct {
	Name      string `json:"name"`
	SizeBytes uint64 `json:"size_bytes"`
}

// Filesystem is a mounted disk-backed filesystem.
type Filesystem struct {
	Device     string `json:"device"`
	MountPoint string `json:"mount_point"`
	Type       string `json:"type"`
	SizeBytes  uint64 `json:"size_bytes"`
	UsedBytes  uint64 `json:"used_bytes"`
}

// NIC is a network interface other than loopback.
type NIC struct {
	Name      string   `json:"name"`
	MAC       string   `json:"mac"`
	MTU       int      `json:"mtu,omitempty"`
	Up        bool     `json:"up"`
	Driver    string   `json:"driver,omitempty"`
	Addresses []string `json:"addresses"`
}

// VirtioDriver says whether a virtio driver is available to the kernel;
// a host without virtio_blk and virtio_net needs driver repair before it
// can boot on KVM-based clouds.
type VirtioDriver struct {
	Name  string `json:"name"`
	State string `json:"state"` // loaded | builtin | module
}

// Software is a database or middleware product recognised on the host.
type Software struct {
	Name     string `json:"name"`
	Version  string `json:"version,omitempty"`
	Source   string `json:"source"`   // process | package | path
	Evidence string `json:"evidence"` // the process, package or path that gave it away
	PID      int    `json:"pid,omitempty"`
}

// Socket is a listening TCP socket and the process that owns it.
type Socket struct {
	Protocol string `json:"protocol"` // tcp | tcp6
	Address  string `json:"address"`
	Port     int    `json:"port"`
	PID      int    `json:"pid,omitempty"`
	Process  string `json:"process,omitempty"`
}

// Connection is a TCP connection seen on the host, with the owning process
// when the collector could see it.
type Connection struct {
	Protocol      string `json:"protocol"`
	LocalAddress  string `json:"local_address"`
	LocalPort     int    `json:"local_port"`
	RemoteAddress string `json:"remote_address"`
	RemotePort    int    `json:"remote_port"`
	State         string `json:"state"`
	PID           int    `json:"pid,omitempty"`
	Process       string `json:"process,omitempty"`
}

// UtilisationSample is the host's load averaged over the interval that
// ends at At.
type UtilisationSample struct {
	At                 time.Time `json:"at"`
	CPUPercent         float64   `json:"cpu_percent"`
	MemoryPercent      float64   `json:"memory_percent"`
	DiskIOBytesPerSec  float64   `json:"disk_io_bytes_per_sec"`
	NetworkBytesPerSec float64   `json:"network_bytes_per_sec"`
}

// Percentiles summarises one utilisation metric.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	Max float64 `json:"max"`
}

// Utilisation is the percentile summary of a series of samples, the shape
// the planner sizes instances from.
type Utilisation struct {
	Samples int         `json:"samples"`
	From    time.Time   `json:"from"`
	To      time.Time   `json:"to"`
	CPU     Percentiles `json:"cpu"`
	Memory  Percentiles `json:"memory"`
	DiskIO  Percentiles `json:"disk_io"`
	Network Percentiles `json:"network"`
}

// Summarise reduces samples to percentiles (nearest-rank). It does not
// modify samples.
func Summarise(samples []UtilisationSample) Utilisation {
	u := Utilisation{Samples: len(samples)}
	if len(samples) == 0 {
		return u
	}
	u.From, u.To = samples[0].At, samples[0].At
	cpu := make([]float64, len(samples))
	mem := make([]float64, len(samples))
	dio := make([]float64, len(samples))
	net := make([]float64, len(samples))
	for i, s := range samples {
		if s.At.Before(u.From) {
			u.From = s.At
		}
		if s.At.After(u.To) {
			u.To = s.At
		}
		cpu[i], mem[i], dio[i], net[i] = s.CPUPercent, s.MemoryPercent, s.DiskIOBytesPerSec, s.NetworkBytesPerSec
	}
	u.CPU, u.Memory, u.DiskIO, u.Network = percentiles(cpu), percentiles(mem), percentiles(dio), percentiles(net)
	return u
}

func percentiles(v []float64) Percentiles {
	slices.Sort(v)
	return Percentiles{P50: rank(v, 50), P95: rank(v, 95), Max: v[len(v)-1]}
}

// rank is the nearest-rank percentile of sorted v: the smallest value with
// at least p% of the samples at or below it.
func rank(sorted []float64, p float64) float64 {
	n := int(math.Ceil(p / 100 * float64(len(sorted))))
	if n < 1 {
		n = 1
	}
	return sorted[n-1]
}
