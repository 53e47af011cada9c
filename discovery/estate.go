package discovery

import "github.com/ferry-migrate/ferry"

// The estate interchange types live in the shared vocabulary (package
// ferry), so that discovery and the planner cannot drift apart.
type (
	// Estate is the interchange shape shared with the planner (`ferry
	// estate generate` writes it; the JSON importer reads it).
	Estate = ferry.Estate
	// EstateHost is one host of an Estate.
	EstateHost = ferry.EstateHost
	// EstateDisk is one disk of an EstateHost.
	EstateDisk = ferry.EstateDisk
	// EstateConnection is a dependency between estate hosts.
	EstateConnection = ferry.EstateConnection
)

// ToEstate converts a normalised result to the interchange shape.
// Connections whose source is outside the estate (inbound clients nobody
// inventoried) have no place in it and are left out; they stay in Result.
func (r Result) ToEstate() Estate {
	e := Estate{Hosts: make([]EstateHost, 0, len(r.Hosts)), Connections: make([]EstateConnection, 0, len(r.Connections))}
	for i := range r.Hosts {
		e.Hosts = append(e.Hosts, r.Hosts[i].ToEstate())
	}
	for _, c := range r.Connections {
		if c.Src == "" {
			continue
		}
		e.Connections = append(e.Connections, EstateConnection{
			Src: c.Src, Dst: c.Dst, DstAddress: c.DstAddress, Port: c.Port, Protocol: c.Protocol,
			Process: c.Process, Count: c.Count, Bytes: c.Bytes,
		})
	}
	return e
}

// ToEstate converts one host. When sources gave only a host-wide used
// total, it is spread over the disks in proportion to their size, because
// the planner sizes transfers per disk.
func (h *Host) ToEstate() EstateHost {
	eh := EstateHost{
		ID: h.ID, Name: h.Name, FQDN: h.FQDN, Application: h.Application, Environment: h.Environment,
		Criticality: h.Criticality, Owner: h.Owner, Tags: nonNil(h.Tags), OS: h.OS, OSFamily: h.OSFamily,
		Arch: h.Arch, BootMode: h.BootMode, CPUs: h.CPUs, MemoryMiB: h.MemoryMiB, IPs: nonNil(h.IPs),
		MACs: nonNil(h.MACs), BIOSUUID: h.BIOSUUID, Virtualization: h.Virtualization, PinnedWave: h.PinnedWave,
		Disks: []EstateDisk{},
	}
	if h.CPUP95 != nil {
		eh.CPUP95 = *h.CPUP95
	}
	if h.MemoryP95 != nil {
		eh.MemoryP95 = *h.MemoryP95
	}
	var prov, used int64
	for _, d := range h.Disks {
		prov += d.ProvisionedBytes
		used += d.UsedBytes
	}
	spread := used == 0 && h.UsedBytes > 0 && prov > 0
	for _, d := range h.Disks {
		ed := EstateDisk{Name: d.Name, ProvisionedBytes: d.ProvisionedBytes, UsedBytes: d.UsedBytes}
		if spread {
			ed.UsedBytes = min(d.ProvisionedBytes, int64(float64(h.UsedBytes)*float64(d.ProvisionedBytes)/float64(prov)))
		}
		eh.Disks = append(eh.Disks, ed)
	}
	return eh
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
