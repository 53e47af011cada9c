package discovery

import (
	"fmt"
	"time"
)

// Source kinds, ordered by how much the normaliser trusts them: what a host
// measured about itself beats what vCenter says, which beats an export of
// vCenter, which beats a spreadsheet somebody typed.
const (
	SourceAgent   = "agent"
	SourceVCenter = "vcenter"
	SourceRVTools = "rvtools"
	SourceCSV     = "csv"
	SourceEstate  = "estate"
	SourceCapture = "capture" // ss / netstat captures
)

var sourceRank = map[string]int{
	SourceAgent: 0, SourceVCenter: 1, SourceRVTools: 2, SourceCSV: 3, SourceEstate: 4, SourceCapture: 5,
}

// SourceRef says where a statement came from and when it was observed.
type SourceRef struct {
	Kind       string    `json:"kind"`
	Name       string    `json:"name"` // file name, vCenter URL, agent id
	ObservedAt time.Time `json:"observed_at"`
}

func (s SourceRef) String() string { return s.Kind + ":" + s.Name }

// Disk is one virtual or physical disk of a host.
type Disk struct {
	Name             string `json:"name"`
	ProvisionedBytes int64  `json:"provisioned_bytes"`
	UsedBytes        int64  `json:"used_bytes"`
}

// HostFacts are the things any source may say about a host. Zero values
// mean "this source did not say"; CPUP95 and MemoryP95 are pointers
// because 0 % is a statement.
type HostFacts struct {
	Name           string   `json:"name"`
	FQDN           string   `json:"fqdn,omitempty"`
	IPs            []string `json:"ips,omitempty"`
	MACs           []string `json:"macs,omitempty"`
	BIOSUUID       string   `json:"bios_uuid,omitempty"`
	InstanceUUID   string   `json:"instance_uuid,omitempty"` // vCenter's instanceUuid
	OS             string   `json:"os,omitempty"`
	OSFamily       string   `json:"os_family,omitempty"`
	Arch           string   `json:"arch,omitempty"`
	BootMode       string   `json:"boot_mode,omitempty"`
	CPUs           int      `json:"cpus,omitempty"`
	MemoryMiB      int64    `json:"memory_mib,omitempty"`
	Disks          []Disk   `json:"disks,omitempty"`
	UsedBytes      int64    `json:"used_bytes,omitempty"` // total in use when per-disk use is unknown
	PowerState     string   `json:"power_state,omitempty"`
	ESXHost        string   `json:"esx_host,omitempty"`
	Cluster        string   `json:"cluster,omitempty"`
	Datacenter     string   `json:"datacenter,omitempty"`
	Networks       []string `json:"networks,omitempty"`
	Environment    string   `json:"environment,omitempty"`
	Criticality    string   `json:"criticality,omitempty"`
	Application    string   `json:"application,omitempty"`
	Owner          string   `json:"owner,omitempty"`
	Tags           []string `json:"tags,omitempty"`
	CPUP95         *float64 `json:"cpu_p95,omitempty"`
	MemoryP95      *float64 `json:"memory_p95,omitempty"`
	Virtualization string   `json:"virtualization,omitempty"`
	PinnedWave     int      `json:"pinned_wave,omitempty"`
	Software       []string `json:"software,omitempty"`
}

// Record is one source's statement about one host.
type Record struct {
	Source SourceRef `json:"source"`
	// Refs are the source-local names that connections from the same
	// import use for this host (a CSV id and name, an estate id). Importers
	// prefix them so that two imports cannot collide.
	Refs []string `json:"refs,omitempty"`
	// Anchor, when set, is an identity stronger than any fact: records with
	// the same anchor are one host whatever their names and addresses say
	// (an agent's successive inventories, "agent:<id>", are one machine even
	// after it is renamed and re-addressed). Only two different BIOS UUIDs
	// still keep them apart.
	Anchor string `json:"anchor,omitempty"`
	HostFacts
}

// Endpoint is one end of an observed connection, as precisely as the
// source knew it: a source-local ref, a host name, or an address.
type Endpoint struct {
	Ref     string `json:"ref,omitempty"`
	Name    string `json:"name,omitempty"`
	Address string `json:"address,omitempty"` // ip, ip:port or a DNS name
}

// ObservedConnection is a dependency between two endpoints as a source saw
// it; the normaliser resolves endpoints to hosts.
type ObservedConnection struct {
	Source   SourceRef `json:"source"`
	Src      Endpoint  `json:"src"`
	Dst      Endpoint  `json:"dst"`
	Port     int       `json:"port"`
	Protocol string    `json:"protocol"`
	Process  string    `json:"process,omitempty"`
	Count    int64     `json:"count"`
	Bytes    int64     `json:"bytes"`
}

// RowError is one rejected row (or cell) of an input, precise enough for a
// user to find and fix it.
type RowError struct {
	File   string `json:"file"`
	Row    int    `json:"row"` // 1-based line or row number; 0 when the whole file is at fault
	Column string `json:"column,omitempty"`
	Reason string `json:"reason"`
}

func (e RowError) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("%s: row %d, column %s: %s", e.File, e.Row, e.Column, e.Reason)
	}
	return fmt.Sprintf("%s: row %d: %s", e.File, e.Row, e.Reason)
}

// AgentAnchor is the Record.Anchor of an agent's inventories.
func AgentAnchor(agentID string) string { return "agent:" + agentID }

// RecordFromInventory turns an agent's inventory into a record so that
// agent hosts go through the same normaliser as every other source.
func RecordFromInventory(agentID string, inv Inventory) Record {
	r := Record{Source: SourceRef{Kind: SourceAgent, Name: agentID, ObservedAt: inv.CollectedAt}, Refs: []string{"agent:" + agentID},
		Anchor: AgentAnchor(agentID)}
	f := &r.HostFacts
	f.Name = inv.Hostname
	f.FQDN = inv.FQDN
	f.BIOSUUID = inv.BIOSUUID
	f.OS = inv.OS.PrettyName
	f.OSFamily = "linux"
	f.Arch = inv.Arch
	f.BootMode = inv.BootMode
	f.CPUs = inv.CPU.Threads
	f.MemoryMiB = int64(inv.MemoryBytes >> 20)
	f.Virtualization = inv.Virtualization
	for _, n := range inv.NICs {
		if n.MAC != "" {
			f.MACs = append(f.MACs, n.MAC)
		}
		for _, a := range n.Addresses {
			f.IPs = append(f.IPs, stripPrefixLen(a))
		}
	}
	for _, b := range inv.BlockDevices {
		f.Disks = append(f.Disks, Disk{Name: b.Name, ProvisionedBytes: int64(b.SizeBytes)})
	}
	for _, fs := range inv.Filesystems {
		f.UsedBytes += int64(fs.UsedBytes)
	}
	seen := map[string]bool{}
	for _, s := range inv.Software {
		if !seen[s.Name] {
			seen[s.Name] = true
			f.Software = append(f.Software, s.Name)
		}
	}
	return r
}

func stripPrefixLen(a string) string {
	for i := 0; i < len(a); i++ {
		if a[i] == '/' {
			return a[:i]
		}
	}
	return a
}

// ApplyUtilisation copies the p95 CPU and memory of an agent's samples
// into its record, the figures the planner sizes instances from.
func (r *Record) ApplyUtilisation(u Utilisation) {
	if u.Samples == 0 {
		return
	}
	cpu, mem := u.CPU.P95, u.Memory.P95
	r.CPUP95, r.MemoryP95 = &cpu, &mem
}
