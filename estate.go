package ferry

// The estate interchange format: what `ferry estate generate` writes, the
// estate JSON importer reads, `ferry plan --estate` plans and the server
// translates its rows into. Discovery and the planner both speak it (as
// discovery.Estate… and planner.Estate…, aliases of these), so it is
// defined once, here in the shared vocabulary.

// Estate is a set of hosts and the connections observed between them.
type Estate struct {
	Hosts       []EstateHost       `json:"hosts"`
	Connections []EstateConnection `json:"connections"`
}

// EstateHost is one source machine of an Estate.
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

// EstateConnection is an observed flow from Src to Dst. Src depends on Dst: the
// client needs the server. Dst is empty when the destination is outside the
// estate, and DstAddress then says where.
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

// UsedBytes is the data a host replicates: the sum of its disks' used bytes.
func (h *EstateHost) UsedBytes() int64 {
	var n int64
	for _, d := range h.Disks {
		n += d.UsedBytes
	}
	return n
}

// ProvisionedBytes is the sum of the host's provisioned disk sizes.
func (h *EstateHost) ProvisionedBytes() int64 {
	var n int64
	for _, d := range h.Disks {
		n += d.ProvisionedBytes
	}
	return n
}

// Label is the name a person recognises: the name, else the id.
func (h *EstateHost) Label() string {
	if h.Name != "" {
		return h.Name
	}
	return h.ID
}
