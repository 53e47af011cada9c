package discovery

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Claim is what one source said about one field of a host, and when.
type Claim struct {
	Value      string    `json:"value"`
	Source     string    `json:"source"` // kind:name
	ObservedAt time.Time `json:"observed_at"`
}

// Conflict is a field on which sources disagree. Chosen is the value the
// host carries; Claims keeps every value so nothing is lost.
type Conflict struct {
	Field  string  `json:"field"`
	Chosen string  `json:"chosen"`
	Claims []Claim `json:"claims"`
}

// Host is one machine after merging every record that identifies it.
type Host struct {
	ID string `json:"id"`
	HostFacts
	Sources []string `json:"sources"`
	// Members are the indexes, into the records given to Normalise, of
	// the records merged into this host, so a caller can link its stored
	// source rows to the host.
	Members    []int              `json:"members"`
	Provenance map[string][]Claim `json:"provenance"`
	Conflicts  []Conflict         `json:"conflicts,omitempty"`
}

// HostConnection is an observed dependency resolved to hosts. Dst is empty
// when the destination is outside the known estate; SrcAddress is set when
// the source is (an inbound client nobody inventoried).
type HostConnection struct {
	Src        string   `json:"src,omitempty"`
	SrcAddress string   `json:"src_address,omitempty"`
	Dst        string   `json:"dst,omitempty"`
	DstAddress string   `json:"dst_address,omitempty"`
	Port       int      `json:"port"`
	Protocol   string   `json:"protocol"`
	Process    string   `json:"process,omitempty"`
	Count      int64    `json:"count"`
	Bytes      int64    `json:"bytes"`
	Sources    []string `json:"sources"`
}

// Result is the normalised estate.
type Result struct {
	Hosts       []Host           `json:"hosts"`
	Connections []HostConnection `json:"connections"`
}

// field is one scalar of HostFacts the normaliser merges.
type field struct {
	name string
	get  func(*HostFacts) string // "" means not stated
	copy func(dst, src *HostFacts)
}

func itoa(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

func ftoa(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}

var fields = []field{
	{"name", func(f *HostFacts) string { return f.Name }, func(d, s *HostFacts) { d.Name = s.Name }},
	{"fqdn", func(f *HostFacts) string { return strings.ToLower(f.FQDN) }, func(d, s *HostFacts) { d.FQDN = strings.ToLower(s.FQDN) }},
	{"bios_uuid", func(f *HostFacts) string { return f.BIOSUUID }, func(d, s *HostFacts) { d.BIOSUUID = s.BIOSUUID }},
	{"instance_uuid", func(f *HostFacts) string { return f.InstanceUUID }, func(d, s *HostFacts) { d.InstanceUUID = s.InstanceUUID }},
	{"os", func(f *HostFacts) string { return f.OS }, func(d, s *HostFacts) { d.OS = s.OS }},
	{"os_family", func(f *HostFacts) string { return f.OSFamily }, func(d, s *HostFacts) { d.OSFamily = s.OSFamily }},
	{"arch", func(f *HostFacts) string { return f.Arch }, func(d, s *HostFacts) { d.Arch = s.Arch }},
	{"boot_mode", func(f *HostFacts) string { return f.BootMode }, func(d, s *HostFacts) { d.BootMode = s.BootMode }},
	{"cpus", func(f *HostFacts) string { return itoa(int64(f.CPUs)) }, func(d, s *HostFacts) { d.CPUs = s.CPUs }},
	{"memory_mib", func(f *HostFacts) string { return itoa(f.MemoryMiB) }, func(d, s *HostFacts) { d.MemoryMiB = s.MemoryMiB }},
	{"used_bytes", func(f *HostFacts) string { return itoa(f.UsedBytes) }, func(d, s *HostFacts) { d.UsedBytes = s.UsedBytes }},
	{"power_state", func(f *HostFacts) string { return f.PowerState }, func(d, s *HostFacts) { d.PowerState = s.PowerState }},
	{"esx_host", func(f *HostFacts) string { return f.ESXHost }, func(d, s *HostFacts) { d.ESXHost = s.ESXHost }},
	{"cluster", func(f *HostFacts) string { return f.Cluster }, func(d, s *HostFacts) { d.Cluster = s.Cluster }},
	{"datacenter", func(f *HostFacts) string { return f.Datacenter }, func(d, s *HostFacts) { d.Datacenter = s.Datacenter }},
	{"environment", func(f *HostFacts) string { return f.Environment }, func(d, s *HostFacts) { d.Environment = s.Environment }},
	{"criticality", func(f *HostFacts) string { return f.Criticality }, func(d, s *HostFacts) { d.Criticality = s.Criticality }},
	{"application", func(f *HostFacts) string { return f.Application }, func(d, s *HostFacts) { d.Application = s.Application }},
	{"owner", func(f *HostFacts) string { return f.Owner }, func(d, s *HostFacts) { d.Owner = s.Owner }},
	{"cpu_p95", func(f *HostFacts) string { return ftoa(f.CPUP95) }, func(d, s *HostFacts) { d.CPUP95 = s.CPUP95 }},
	{"memory_p95", func(f *HostFacts) string { return ftoa(f.MemoryP95) }, func(d, s *HostFacts) { d.MemoryP95 = s.MemoryP95 }},
	{"virtualization", func(f *HostFacts) string { return f.Virtualization }, func(d, s *HostFacts) { d.Virtualization = s.Virtualization }},
	{"pinned_wave", func(f *HostFacts) string { return itoa(int64(f.PinnedWave)) }, func(d, s *HostFacts) { d.PinnedWave = s.PinnedWave }},
}

// CanonicalUUID lower-cases a UUID and removes braces and dashes. VMware
// reports the SMBIOS UUID with the first three groups byte-swapped on
// older virtual hardware, so the key is the smaller of the two readings:
// the agent's /sys value and vCenter's config.uuid then meet.
func CanonicalUUID(u string) string {
	u = strings.ToLower(strings.Trim(strings.TrimSpace(u), "{}"))
	u = strings.ReplaceAll(u, "-", "")
	u = strings.ReplaceAll(u, " ", "")
	if len(u) != 32 || strings.Trim(u, "0") == "" || strings.Trim(u, "f") == "" {
		return ""
	}
	sw := swapHex(u[0:8]) + swapHex(u[8:12]) + swapHex(u[12:16]) + u[16:]
	if sw < u {
		return sw
	}
	return u
}

func swapHex(s string) string {
	b := make([]byte, 0, len(s))
	for i := len(s) - 2; i >= 0; i -= 2 {
		b = append(b, s[i], s[i+1])
	}
	return string(b)
}

// macSeparators is built once: a Replacer is expensive to construct.
var macSeparators = strings.NewReplacer("-", "", ":", "", ".", "")

// CanonicalMAC returns a MAC as lower-case colon-separated hex, or "" for
// something that is not a usable MAC (empty, all zeros).
func CanonicalMAC(m string) string {
	m = strings.ToLower(strings.TrimSpace(m))
	m = macSeparators.Replace(m)
	if len(m) != 12 || strings.Trim(m, "0") == "" {
		return ""
	}
	for _, c := range m {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ""
		}
	}
	return m[0:2] + ":" + m[2:4] + ":" + m[4:6] + ":" + m[6:8] + ":" + m[8:10] + ":" + m[10:12]
}

// ShortName is the identity key of a host name: lower case, up to the
// first dot.
func ShortName(n string) string {
	n = strings.ToLower(strings.TrimSpace(n))
	if i := strings.IndexByte(n, '.'); i > 0 {
		if _, err := netip.ParseAddr(n); err == nil {
			return ""
		}
		n = n[:i]
	}
	return n
}

// usableIP is an address worth identifying a host by.
func usableIP(s string) (string, bool) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return "", false
	}
	a = a.Unmap()
	if a.IsLoopback() || a.IsUnspecified() || a.IsLinkLocalUnicast() || a.IsMulticast() {
		return "", false
	}
	return a.String(), true
}

// OSFamily guesses the family of an OS description.
func OSFamily(os string) string {
	l := strings.ToLower(os)
	switch {
	case l == "":
		return ""
	case strings.Contains(l, "windows"):
		return "windows"
	case strings.Contains(l, "linux"), strings.Contains(l, "centos"), strings.Contains(l, "red hat"), strings.Contains(l, "rhel"),
		strings.Contains(l, "ubuntu"), strings.Contains(l, "debian"), strings.Contains(l, "suse"), strings.Contains(l, "sles"),
		strings.Contains(l, "oracle"), strings.Contains(l, "rocky"), strings.Contains(l, "alma"), strings.Contains(l, "fedora"),
		strings.Contains(l, "photon"), strings.Contains(l, "alpine"):
		return "linux"
	default:
		return "other"
	}
}

type unionFind struct {
	parent []int
	uuids  []map[string]bool // per root
	names  []map[string]bool
}

func (u *unionFind) find(i int) int {
	for u.parent[i] != i {
		u.parent[i] = u.parent[u.parent[i]]
		i = u.parent[i]
	}
	return i
}

// disjoint reports whether both sets are non-empty and share nothing:
// evidence that two groups are different machines.
func disjoint(a, b map[string]bool) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	for k := range a {
		if b[k] {
			return false
		}
	}
	return true
}

func (u *unionFind) union(a, b int, checkNames bool) {
	ra, rb := u.find(a), u.find(b)
	if ra == rb || disjoint(u.uuids[ra], u.uuids[rb]) || (checkNames && disjoint(u.names[ra], u.names[rb])) {
		return
	}
	if rb < ra {
		ra, rb = rb, ra
	}
	u.parent[rb] = ra
	for k := range u.uuids[rb] {
		u.uuids[ra][k] = true
	}
	for k := range u.names[rb] {
		u.names[ra][k] = true
	}
}

// Normalise merges records into hosts and resolves connections to them.
//
// Two records are the same host when they share, in order of strength, an
// anchor (see Record.Anchor), a BIOS UUID, a MAC, a host name or an IP
// address — unless stronger evidence says they are different machines (two
// different BIOS UUIDs never merge; an IP never merges two differently
// named hosts, because addresses get reused). For each field the most
// trusted source wins (agent, vCenter, RVTools, CSV, estate, capture), the
// most recent observation breaking ties; every value stays in Provenance
// and disagreements become Conflicts.
func Normalise(records []Record, conns []ObservedConnection) Result {
	n := len(records)
	uf := &unionFind{parent: make([]int, n), uuids: make([]map[string]bool, n), names: make([]map[string]bool, n)}
	for i := range records {
		uf.parent[i] = i
		uf.uuids[i] = map[string]bool{}
		uf.names[i] = map[string]bool{}
		if u := CanonicalUUID(records[i].BIOSUUID); u != "" {
			uf.uuids[i][u] = true
		}
		for _, nm := range []string{records[i].Name, records[i].FQDN} {
			if s := ShortName(nm); s != "" {
				uf.names[i][s] = true
			}
		}
	}
	keysOf := func(i, level int) []string {
		r := &records[i]
		var ks []string
		switch level {
		case 0:
			if u := CanonicalUUID(r.BIOSUUID); u != "" {
				ks = append(ks, u)
			}
		case 1:
			for _, m := range r.MACs {
				if c := CanonicalMAC(m); c != "" {
					ks = append(ks, c)
				}
			}
		case 2:
			for k := range uf.names[i] {
				ks = append(ks, k)
			}
			sort.Strings(ks)
		case 3:
			for _, ip := range r.IPs {
				if a, ok := usableIP(ip); ok {
					ks = append(ks, a)
				}
			}
		}
		return ks
	}
	// Anchors first: they are what the caller knows for certain.
	anchor := map[string]int{}
	for i := range records {
		if a := records[i].Anchor; a != "" {
			if j, ok := anchor[a]; ok {
				uf.union(j, i, false)
			} else {
				anchor[a] = i
			}
		}
	}
	for level := 0; level < 4; level++ {
		first := map[string]int{}
		for i := range records {
			for _, k := range keysOf(i, level) {
				if j, ok := first[k]; ok {
					uf.union(j, i, level == 3)
				} else {
					first[k] = i
				}
			}
		}
	}

	// Group records by root in order of first appearance.
	groupOf := map[int]int{}
	var groups [][]int
	for i := range records {
		r := uf.find(i)
		g, ok := groupOf[r]
		if !ok {
			g = len(groups)
			groupOf[r] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	res := Result{Hosts: make([]Host, 0, len(groups))}
	hostOfRecord := make([]int, n)
	for g, members := range groups {
		for _, i := range members {
			hostOfRecord[i] = g
		}
		res.Hosts = append(res.Hosts, mergeHost(fmt.Sprintf("h-%05d", g+1), records, members))
	}
	res.Connections = resolveConnections(records, res.Hosts, hostOfRecord, conns)
	return res
}

func trustLess(a, b *Record) bool {
	ra, rb := rankOf(a.Source.Kind), rankOf(b.Source.Kind)
	if ra != rb {
		return ra < rb
	}
	return a.Source.ObservedAt.After(b.Source.ObservedAt)
}

func rankOf(kind string) int {
	if r, ok := sourceRank[kind]; ok {
		return r
	}
	return len(sourceRank)
}

func mergeHost(id string, records []Record, members []int) Host {
	ordered := make([]*Record, len(members))
	for i, m := range members {
		ordered[i] = &records[m]
	}
	sort.SliceStable(ordered, func(i, j int) bool { return trustLess(ordered[i], ordered[j]) })

	h := Host{ID: id, Members: append([]int(nil), members...), Provenance: map[string][]Claim{}}
	seenSrc := map[string]bool{}
	for _, r := range ordered {
		if s := r.Source.String(); !seenSrc[s] {
			seenSrc[s] = true
			h.Sources = append(h.Sources, s)
		}
	}
	for _, f := range fields {
		chosen := ""
		distinct := map[string]bool{}
		for _, r := range ordered {
			v := f.get(&r.HostFacts)
			if v == "" {
				continue
			}
			h.Provenance[f.name] = append(h.Provenance[f.name], Claim{Value: v, Source: r.Source.String(), ObservedAt: r.Source.ObservedAt})
			if chosen == "" {
				chosen = v
				f.copy(&h.HostFacts, &r.HostFacts)
			}
			distinct[sameKey(f.name, v)] = true
		}
		if len(distinct) > 1 {
			h.Conflicts = append(h.Conflicts, Conflict{Field: f.name, Chosen: chosen, Claims: h.Provenance[f.name]})
		}
	}
	// Lists are unions: every source saw some of the addresses.
	h.IPs = unionList(ordered, func(f *HostFacts) []string { return f.IPs }, func(s string) string { a, _ := usableIP(s); return a })
	h.MACs = unionList(ordered, func(f *HostFacts) []string { return f.MACs }, CanonicalMAC)
	h.Tags = unionList(ordered, func(f *HostFacts) []string { return f.Tags }, strings.TrimSpace)
	h.Networks = unionList(ordered, func(f *HostFacts) []string { return f.Networks }, strings.TrimSpace)
	h.Software = unionList(ordered, func(f *HostFacts) []string { return f.Software }, strings.TrimSpace)
	for _, r := range ordered {
		if len(r.Disks) > 0 {
			h.Disks = append([]Disk(nil), r.Disks...)
			break
		}
	}
	if h.OSFamily == "" {
		h.OSFamily = OSFamily(h.OS)
	}
	return h
}

// sameKey decides when two claims agree: names compare case-insensitively
// and UUIDs in canonical form, everything else exactly.
func sameKey(field, v string) string {
	switch field {
	case "name", "os", "power_state":
		return strings.ToLower(v)
	case "bios_uuid":
		return CanonicalUUID(v)
	}
	return v
}

func unionList(rs []*Record, get func(*HostFacts) []string, canon func(string) string) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range rs {
		for _, v := range get(&r.HostFacts) {
			c := canon(v)
			if c != "" && !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}

func resolveConnections(records []Record, hosts []Host, hostOfRecord []int, conns []ObservedConnection) []HostConnection {
	byRef := map[string]int{}
	byName := map[string]int{}
	byIP := map[string]int{}
	for i := range records {
		for _, ref := range records[i].Refs {
			byRef[ref] = hostOfRecord[i]
		}
	}
	for hi := range hosts {
		h := &hosts[hi]
		for _, nm := range []string{h.Name, h.FQDN} {
			if s := ShortName(nm); s != "" {
				if _, dup := byName[s]; !dup {
					byName[s] = hi
				}
			}
		}
		for _, ip := range h.IPs {
			if _, dup := byIP[ip]; !dup {
				byIP[ip] = hi
			}
		}
	}
	resolve := func(e Endpoint) (int, string) {
		if e.Ref != "" {
			if h, ok := byRef[e.Ref]; ok {
				return h, ""
			}
		}
		if e.Name != "" {
			if h, ok := byName[ShortName(e.Name)]; ok {
				return h, ""
			}
		}
		addr := e.Address
		if addr == "" {
			addr = e.Name
		}
		host := addr
		if ap, err := netip.ParseAddrPort(addr); err == nil {
			host = ap.Addr().Unmap().String()
		}
		if ip, ok := usableIP(host); ok {
			if h, ok := byIP[ip]; ok {
				return h, ""
			}
		} else if h, ok := byName[ShortName(host)]; ok && host != "" {
			return h, ""
		}
		if addr == "" {
			addr = e.Ref
		}
		return -1, addr
	}
	type key struct {
		src, dst         int
		srcAddr, dstAddr string
		port             int
		proto, process   string
	}
	agg := map[key]*HostConnection{}
	var order []key
	for _, c := range conns {
		s, sAddr := resolve(c.Src)
		d, dAddr := resolve(c.Dst)
		if s == -1 && d == -1 {
			continue // neither end is in the estate
		}
		if s == d {
			continue // a host talking to itself is no dependency
		}
		proto := strings.ToLower(c.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		k := key{s, d, sAddr, dAddr, c.Port, proto, c.Process}
		hc := agg[k]
		if hc == nil {
			hc = &HostConnection{Port: c.Port, Protocol: proto, Process: c.Process, SrcAddress: sAddr, DstAddress: dAddr}
			if s >= 0 {
				hc.Src = hosts[s].ID
			}
			if d >= 0 {
				hc.Dst = hosts[d].ID
			}
			agg[k] = hc
			order = append(order, k)
		}
		hc.Count += c.Count
		hc.Bytes += c.Bytes
		src := c.Source.String()
		if len(hc.Sources) == 0 || hc.Sources[len(hc.Sources)-1] != src {
			if !contains(hc.Sources, src) {
				hc.Sources = append(hc.Sources, src)
			}
		}
	}
	out := make([]HostConnection, 0, len(order))
	for _, k := range order {
		out = append(out, *agg[k])
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
