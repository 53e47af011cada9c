package discovery

// Estate is the interchange shape shared with the planner (`ferry estate
// generate` writes it; the JSON importer reads it; the server stores it).
type Estate struct {
	Hosts       []EstateHost       `json:"hosts"`
	Connections []EstateConnection `json:"connections"`
}

// EstateHost is one host of an Estate.
type EstateHost struct {
	ID             string       `json:"id"`
	Name           string       `json:"name"`
	FQDN           string       `json:"fqdn"`
	Application    string       `json:"application"`
	Environment    string       `json:"environment"`
	Criticality    string       `json:"criticality"`
	Owner          string       `json:"owner"`
	Tags           []string     `json:"tags"`
	OS             string       `json:"os"`
	OSFamily       string       `json:"os_family"`
	Arch           string       `json:"arch"`
	BootMode       string       `json:"boot_mode"`
	CPUs           int          `json:"cpus"`
	MemoryMiB      int64        `json:"memory_mib"`
	CPUP95         float64      `json:"cpu_p95"`
	MemoryP95      float64      `json:"memory_p95"`
	IPs            []string     `json:"ips"`
	MACs           []string     `json:"macs"`
	BIOSUUID       string       `json:"bios_uuid"`
	Virtualization string       `json:"virtualization"`
	PinnedWave     int          `json:"pinned_wave"`
	Disks          []EstateDisk `json:"disks"`
}

// EstateDisk is one disk of an EstateHost.
type EstateDisk struct {
	Name             string `json:"name"`
	ProvisionedBytes int64  `json:"provisioned_bytes"`
	UsedBytes        int64  `json:"used_bytes"`
}

// EstateConnection is a dependency between estate hosts. Dst is empty when
// the destination is outside the estate, and DstAddress then says where.
type EstateConnection struct {
	Src        string `json:"src"`
	Dst        string `json:"dst"`
	DstAddress string `json:"dst_address"`
	Port       int    `json:"port"`
	Protocol   string `json:"protocol"`
	Process    string `json:"process"`
	Count      int64  `json:"count"`
	Bytes      int64  `json:"bytes"`
}

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
