// Package estate owns synthetic estates: realistic, seeded, reproducible
// inventories and connection graphs for tests, demos and benchmarks, written
// in the same JSON and CSV shapes the importers read.
package estate

import (
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/ferry-migrate/ferry/planner"

	"github.com/ferry-migrate/ferry"
)

// Options control Generate.
type Options struct {
	Hosts int
	Seed  uint64
	// Labels is the share of applications whose hosts carry their
	// application label (default 0.7; -1 = none). Within a labelled
	// application about one host in eight is left unlabelled, and about
	// one host in a hundred of the estate carries the wrong label.
	Labels float64
}

// Planted says what Generate put in, so tests can check the planner finds it.
type Planted struct {
	Applications []string // application names
	// App is every application host's true application (host id -> name),
	// whatever its label says.
	App map[string]string
	// Cycles are pairs of host ids that call each other.
	Cycles      [][2]string
	Shared      []string // shared-service host ids on noise ports (DNS, NTP, monitoring, ...)
	SharedApp   []string // shared services on ordinary ports (NFS, SMTP, proxy, message queue)
	CrossAppDep int      // dependencies between applications
	Mislabelled []string // hosts labelled with an application they do not belong to
}

type gen struct {
	r       *rand.Rand
	e       *planner.Estate
	planted Planted
	shared  map[string][]int // kind -> host indexes
}

var appNames = []string{"core-banking", "crm", "erp", "shop", "billing", "hr-portal", "payments", "warehouse", "reporting",
	"intranet", "ticketing", "loyalty", "claims", "gis", "cards", "treasury", "kyc", "mail-gw", "esb", "dms", "lms", "pos", "mes", "scada-hist"}

type weighted struct {
	v string
	w int
}

var linuxOS = []weighted{{"CentOS Linux 7.9", 25}, {"Red Hat Enterprise Linux 8.6", 15}, {"Red Hat Enterprise Linux 7.9", 10},
	{"Ubuntu 20.04 LTS", 10}, {"Ubuntu 22.04 LTS", 6}, {"Ubuntu 18.04 LTS", 5}, {"CentOS Linux 6.10", 6},
	{"SUSE Linux Enterprise Server 12 SP5", 5}, {"SUSE Linux Enterprise Server 11 SP4", 3}, {"SUSE Linux Enterprise Server 15 SP4", 3},
	{"Debian GNU/Linux 11", 4}, {"Red Hat Enterprise Linux 9.2", 3}, {"Oracle Linux Server 7.9", 3}, {"CentOS Linux 5.11", 1}, {"Rocky Linux 8.8", 1}}

var windowsOS = []weighted{{"Microsoft Windows Server 2016 Standard", 30}, {"Microsoft Windows Server 2019 Standard", 30},
	{"Microsoft Windows Server 2012 R2 Standard", 20}, {"Microsoft Windows Server 2022 Standard", 8},
	{"Microsoft Windows Server 2008 R2 Enterprise", 8}, {"Microsoft Windows Server 2003 R2 Standard", 4}}

func (g *gen) pick(ws []weighted) string {
	total := 0
	for _, x := range ws {
		total += x.w
	}
	n := g.r.IntN(total)
	for _, x := range ws {
		if n < x.w {
			return x.v
		}
		n -= x.w
	}
	return ws[0].v
}

const gib = int64(1) << 30

// Generate returns a deterministic estate of o.Hosts hosts: shared services
// (AD/DNS, NTP, monitoring, backup, syslog, jump hosts) that every host talks
// to on noise ports; applications of web → app → db tiers in several
// environments, some with replicating database pairs (cycles), some calling
// other applications, a few calling each other (cycles between groups);
// standalone servers; a realistic OS, boot-mode, architecture and disk mix.
// It averages about ten connections per host.
func Generate(o Options) (*planner.Estate, Planted) {
	g := &gen{r: rand.New(rand.NewPCG(o.Seed, 0x5eed_f0e5)), e: &planner.Estate{}, shared: map[string][]int{}}
	g.planted.App = map[string]string{}
	labels := o.Labels
	if labels == 0 {
		labels = 0.7
	}
	n := o.Hosts
	if n <= 0 {
		return &planner.Estate{Hosts: []planner.Host{}, Connections: []planner.Connection{}}, g.planted
	}
	nShared := max(6, n/150)
	if nShared > n {
		nShared = n
	}
	kinds := []string{"dc", "ntp", "mon", "bkp", "log", "jump"}
	for i := 0; i < nShared; i++ {
		k := kinds[i%len(kinds)]
		idx := g.host(fmt.Sprintf("%s%02d", k, len(g.shared[k])+1), "", "production", "critical", "infra", "linux")
		if k == "dc" {
			g.setOS(idx, "windows")
		}
		g.shared[k] = append(g.shared[k], idx)
		g.planted.Shared = append(g.planted.Shared, g.e.Hosts[idx].ID)
	}
	// Shared services on ordinary ports, which no noise list removes: NFS
	// filers, SMTP relays, web proxies and message brokers that many
	// applications call.
	appKinds := []string{"nfs", "smtp", "proxy", "mq"}
	nApp := max(1, n/2500)
	if n >= 200 {
		for _, k := range appKinds {
			for i := 0; i < nApp; i++ {
				idx := g.host(fmt.Sprintf("%s%02d", k, i+1), "", "production", "high", "infra", "linux")
				g.shared[k] = append(g.shared[k], idx)
				g.planted.SharedApp = append(g.planted.SharedApp, g.e.Hosts[idx].ID)
			}
		}
	}
	type app struct {
		name             string
		env              string
		web, mid, db     []int
		dbPort           int
		dbProc, platform string
	}
	var apps []*app
	standaloneTarget := n / 12
	for len(g.e.Hosts) < n-standaloneTarget {
		a := &app{name: fmt.Sprintf("%s-%d", appNames[len(apps)%len(appNames)], len(apps)/len(appNames)+1)}
		a.env = g.pick([]weighted{{"production", 55}, {"staging", 10}, {"test", 15}, {"development", 15}, {"dr", 5}})
		crit := g.pick([]weighted{{"medium", 40}, {"high", 35}, {"critical", 15}, {"low", 10}})
		if a.env != "production" && a.env != "dr" {
			crit = g.pick([]weighted{{"low", 70}, {"medium", 30}})
		}
		a.platform = "linux"
		if g.r.IntN(100) < 35 {
			a.platform = "windows"
		}
		switch {
		case a.platform == "windows":
			a.dbPort, a.dbProc = 1433, "sqlservr.exe"
		default:
			db := g.pick([]weighted{{"oracle", 35}, {"mysql", 30}, {"postgres", 35}})
			a.dbPort, a.dbProc = map[string]int{"oracle": 1521, "mysql": 3306, "postgres": 5432}[db], map[string]string{"oracle": "oracle", "mysql": "mysqld", "postgres": "postgres"}[db]
		}
		owner := fmt.Sprintf("team-%c", 'a'+rune(len(apps)%12))
		room := n - standaloneTarget - len(g.e.Hosts)
		nw, na, nd := 1+g.r.IntN(4), 1+g.r.IntN(4), 1+g.r.IntN(2)
		if nw+na+nd > room {
			nd = min(nd, room)
			na = min(na, room-nd)
			nw = min(nw, room-nd-na)
		}
		mk := func(tier string, k int) []int {
			var out []int
			for i := 1; i <= k; i++ {
				out = append(out, g.host(fmt.Sprintf("%s-%s%02d", a.name, tier, i), a.name, a.env, crit, owner, a.platform))
			}
			return out
		}
		a.web, a.mid, a.db = mk("web", nw), mk("app", na), mk("db", nd)
		for _, d := range a.db {
			g.bigDisks(d)
		}
		apps = append(apps, a)
		g.planted.Applications = append(g.planted.Applications, a.name)
		// The first application of each name is always labelled, so rules
		// and examples can name it (application:core-banking-1).
		labelled := labels > 0 && (len(apps) <= len(appNames) || g.r.Float64() < labels)
		for _, h := range append(append(append([]int{}, a.web...), a.mid...), a.db...) {
			g.planted.App[g.e.Hosts[h].ID] = a.name
			if !labelled || g.r.IntN(8) == 0 {
				g.e.Hosts[h].Application = ""
			}
		}
		// Shared services on ordinary ports.
		ai := len(apps)
		if len(g.shared["nfs"]) > 0 && g.r.IntN(100) < 40 {
			for _, m := range a.mid {
				g.conn(m, g.shared["nfs"][ai%len(g.shared["nfs"])], 2049, "tcp", "kernel", 200+g.r.Int64N(4000))
			}
		}
		if len(g.shared["smtp"]) > 0 && len(a.mid) > 0 && g.r.IntN(100) < 30 {
			g.conn(a.mid[0], g.shared["smtp"][ai%len(g.shared["smtp"])], 25, "tcp", "postfix", 20+g.r.Int64N(400))
		}
		if len(g.shared["proxy"]) > 0 && g.r.IntN(100) < 50 {
			for _, w := range a.web {
				g.conn(w, g.shared["proxy"][ai%len(g.shared["proxy"])], 3128, "tcp", "java", 100+g.r.Int64N(2000))
			}
		}
		if len(g.shared["mq"]) > 0 && len(a.mid) > 0 && g.r.IntN(100) < 25 {
			g.conn(a.mid[0], g.shared["mq"][ai%len(g.shared["mq"])], 9092, "tcp", "java", 500+g.r.Int64N(8000))
		}
		for _, w := range a.web {
			for _, m := range a.mid {
				g.conn(w, m, 8080, "tcp", "nginx", 300+g.r.Int64N(5000))
			}
		}
		for _, m := range a.mid {
			for _, d := range a.db {
				g.conn(m, d, a.dbPort, "tcp", "java", 1000+g.r.Int64N(20000))
			}
		}
		if len(a.db) == 2 {
			// Database replication both ways: a cycle inside the application.
			g.conn(a.db[0], a.db[1], a.dbPort, "tcp", a.dbProc, 50+g.r.Int64N(500))
			g.conn(a.db[1], a.db[0], a.dbPort, "tcp", a.dbProc, 50+g.r.Int64N(500))
			g.planted.Cycles = append(g.planted.Cycles, [2]string{g.e.Hosts[a.db[0]].ID, g.e.Hosts[a.db[1]].ID})
		}
		// Calls to another application of the same environment, mostly to
		// older ones (a DAG), now and then both ways (a cycle between groups).
		if len(apps) > 1 && len(a.mid) > 0 && g.r.IntN(100) < 35 {
			for try := 0; try < 4; try++ {
				o := apps[g.r.IntN(len(apps)-1)]
				if o.env != a.env || len(o.mid) == 0 {
					continue
				}
				dst := o.mid[0]
				if len(o.db) > 0 && g.r.IntN(2) == 0 {
					dst = o.db[0]
				}
				port := 8443
				if dst == firstOr(o.db, -1) {
					port = o.dbPort
				}
				g.conn(a.mid[0], dst, port, "tcp", "java", 100+g.r.Int64N(3000))
				g.planted.CrossAppDep++
				if g.r.IntN(100) < 4 {
					g.conn(o.mid[0], a.mid[0], 8443, "tcp", "java", 50+g.r.Int64N(500))
					g.planted.Cycles = append(g.planted.Cycles, [2]string{g.e.Hosts[o.mid[0]].ID, g.e.Hosts[a.mid[0]].ID})
				}
				break
			}
		}
		if len(a.mid) > 0 && g.r.IntN(100) < 20 {
			g.ext(a.mid[0], "api.partner.example:443", 443, "java")
		}
	}
	// Hosts in the wrong labelled application: about one in a hundred
	// application hosts carries the label of another application.
	if labels > 0 {
		for _, a := range apps {
			for _, h := range append(append([]int{}, a.web...), a.mid...) {
				if g.r.IntN(100) != 0 || len(apps) < 2 {
					continue
				}
				o := apps[g.r.IntN(len(apps))]
				if o == a {
					continue
				}
				g.e.Hosts[h].Application = o.name
				g.planted.Mislabelled = append(g.planted.Mislabelled, g.e.Hosts[h].ID)
			}
		}
	}
	for len(g.e.Hosts) < n {
		kind := g.pick([]weighted{{"file", 40}, {"print", 10}, {"build", 20}, {"legacy", 20}, {"batch", 10}})
		platform := "linux"
		if kind == "file" || kind == "print" || g.r.IntN(3) == 0 {
			platform = "windows"
		}
		env := g.pick([]weighted{{"production", 50}, {"test", 25}, {"development", 25}})
		crit := "low"
		if env == "production" {
			crit = "medium"
		}
		idx := g.host(fmt.Sprintf("%s%04d", kind, len(g.e.Hosts)), "", env, crit, "ops", platform)
		if kind == "file" && g.r.IntN(40) == 0 {
			// The field case: a site file server with tens of terabytes.
			g.e.Hosts[idx].Disks = append(g.e.Hosts[idx].Disks, planner.Disk{Name: "data1", ProvisionedBytes: 48 << 40, UsedBytes: (30 + g.r.Int64N(15)) << 40})
		}
	}
	// Noise: every host talks to DNS/AD, NTP, syslog; monitoring and backup
	// call every host; jump hosts reach a share of them.
	for i := range g.e.Hosts {
		if g.e.Hosts[i].Application == "" && i < nShared {
			continue
		}
		g.toShared(i, "dc", 53, "udp", "systemd-resolve")
		g.toShared(i, "dc", 389, "tcp", "sssd")
		if g.e.Hosts[i].OSFamily == "windows" {
			g.toShared(i, "dc", 88, "tcp", "lsass.exe")
		}
		g.toShared(i, "ntp", 123, "udp", "chronyd")
		g.toShared(i, "log", 514, "udp", "rsyslogd")
		g.fromShared(i, "mon", 10050, "zabbix_server")
		g.toShared(i, "mon", 10051, "tcp", "zabbix_agentd")
		if i%2 == 0 {
			g.toShared(i, "dc", 636, "tcp", "sssd")
		}
		g.fromShared(i, "bkp", 13724, "bpbkar")
		if g.r.IntN(3) == 0 {
			port := 22
			if g.e.Hosts[i].OSFamily == "windows" {
				port = 3389
			}
			g.fromShared(i, "jump", port, "ssh")
		}
	}
	return g.e, g.planted
}

func firstOr(s []int, def int) int {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

func (g *gen) toShared(i int, kind string, port int, proto, proc string) {
	s := g.shared[kind]
	if len(s) == 0 {
		return
	}
	g.conn(i, s[i%len(s)], port, proto, proc, 10+g.r.Int64N(5000))
}

func (g *gen) fromShared(i int, kind string, port int, proc string) {
	s := g.shared[kind]
	if len(s) == 0 || s[i%len(s)] == i {
		return
	}
	g.conn(s[i%len(s)], i, port, "tcp", proc, 10+g.r.Int64N(2000))
}

func (g *gen) conn(src, dst, port int, proto, proc string, count int64) {
	if src == dst {
		return
	}
	g.e.Connections = append(g.e.Connections, planner.Connection{Src: g.e.Hosts[src].ID, Dst: g.e.Hosts[dst].ID, Port: port, Protocol: proto, Process: proc, Count: count, Bytes: count * (512 + g.r.Int64N(64<<10))})
}

func (g *gen) ext(src int, addr string, port int, proc string) {
	g.e.Connections = append(g.e.Connections, planner.Connection{Src: g.e.Hosts[src].ID, DstAddress: addr, Port: port, Protocol: "tcp", Process: proc, Count: 10 + g.r.Int64N(1000), Bytes: 1 << 20})
}

func (g *gen) host(name, app, env, crit, owner, platform string) int {
	i := len(g.e.Hosts)
	h := planner.Host{
		ID: fmt.Sprintf("h-%05d", i+1), Name: name, FQDN: name + ".corp.local", Application: app, Environment: env,
		Criticality: crit, Owner: owner, Tags: []string{}, CPUs: []int{2, 2, 4, 4, 4, 8, 8, 16}[g.r.IntN(8)],
		IPs:            []string{fmt.Sprintf("10.%d.%d.%d", 1+i>>16&0xff, i>>8&0xff, i&0xff)},
		MACs:           []string{fmt.Sprintf("00:50:56:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)},
		BIOSUUID:       fmt.Sprintf("4211%04x-%04x-%04x-%04x-%012x", g.r.IntN(1<<16), g.r.IntN(1<<16), g.r.IntN(1<<16), g.r.IntN(1<<16), g.r.Int64N(1<<48)),
		Virtualization: g.pick([]weighted{{"vmware", 85}, {"kvm", 5}, {"physical", 5}, {"hyperv", 5}}),
	}
	h.MemoryMiB = int64(h.CPUs) * 1024 * int64([]int{2, 4, 4, 8}[g.r.IntN(4)])
	if g.r.IntN(100) >= 3 {
		h.CPUP95 = float64(5+g.r.IntN(750)) / 10
		h.MemoryP95 = float64(200+g.r.IntN(750)) / 10
	}
	if env == "production" && g.r.IntN(10) == 0 {
		h.Tags = append(h.Tags, "pci")
	}
	osDisk := int64(40+g.r.IntN(3)*30) * gib
	h.Disks = []planner.Disk{{Name: "disk0", ProvisionedBytes: osDisk, UsedBytes: osDisk * int64(30+g.r.IntN(50)) / 100}}
	for d := 0; d < g.r.IntN(3); d++ {
		p := int64(50+g.r.IntN(450)) * gib
		h.Disks = append(h.Disks, planner.Disk{Name: fmt.Sprintf("disk%d", d+1), ProvisionedBytes: p, UsedBytes: p * int64(20+g.r.IntN(60)) / 100})
	}
	g.e.Hosts = append(g.e.Hosts, h)
	g.setOS(i, platform)
	return i
}

func (g *gen) setOS(i int, platform string) {
	h := &g.e.Hosts[i]
	h.Arch, h.BootMode = "x86_64", "bios"
	if platform == "windows" {
		h.OS, h.OSFamily = g.pick(windowsOS), "windows"
		if (strings.Contains(h.OS, "2016") || strings.Contains(h.OS, "2019") || strings.Contains(h.OS, "2022")) && g.r.IntN(2) == 0 {
			h.BootMode = "uefi"
		}
		return
	}
	h.OS, h.OSFamily = g.pick(linuxOS), "linux"
	if (strings.Contains(h.OS, " 8.") || strings.Contains(h.OS, " 9.") || strings.Contains(h.OS, "22.04") || strings.Contains(h.OS, "20.04")) && g.r.IntN(4) == 0 {
		h.BootMode = "uefi"
	}
	if x := g.r.IntN(1000); x < 5 {
		h.Arch = "aarch64"
	} else if x < 8 {
		h.Arch = "ppc64le"
	}
}

func (g *gen) bigDisks(i int) {
	h := &g.e.Hosts[i]
	p := int64(200+g.r.IntN(1800)) * gib
	h.Disks = append(h.Disks, planner.Disk{Name: fmt.Sprintf("disk%d", len(h.Disks)), ProvisionedBytes: p, UsedBytes: p * int64(40+g.r.IntN(50)) / 100})
	h.CPUs = max(h.CPUs, 8)
	h.MemoryMiB = max(h.MemoryMiB, 32768)
}

// HostsCSVHeader and ConnectionsCSVHeader are the Ferry CSV template headers.
var (
	HostsCSVHeader       = []string{"id", "name", "fqdn", "ip", "mac", "bios_uuid", "os", "os_family", "arch", "boot_mode", "cpus", "memory_mib", "disk_count", "disk_provisioned_gib", "disk_used_gib", "environment", "criticality", "application", "owner", "tags", "cpu_p95", "memory_p95", "virtualization"}
	ConnectionsCSVHeader = []string{"src", "dst", "dst_address", "port", "protocol", "process", "count", "bytes"}
)

// WriteCSV writes the two files of the Ferry CSV template.
func WriteCSV(e *planner.Estate, hosts, conns io.Writer) error {
	hw := csv.NewWriter(hosts)
	if err := hw.Write(HostsCSVHeader); err != nil {
		return err
	}
	gibs := func(b int64) string { return strconv.FormatFloat(float64(b)/float64(gib), 'f', 1, 64) }
	for i := range e.Hosts {
		h := &e.Hosts[i]
		rec := []string{h.ID, h.Name, h.FQDN, strings.Join(h.IPs, ";"), strings.Join(h.MACs, ";"), h.BIOSUUID, h.OS, h.OSFamily, h.Arch, h.BootMode,
			strconv.Itoa(h.CPUs), strconv.FormatInt(h.MemoryMiB, 10), strconv.Itoa(len(h.Disks)), gibs(h.ProvisionedBytes()), gibs(h.UsedBytes()),
			h.Environment, h.Criticality, h.Application, h.Owner, strings.Join(h.Tags, ";"),
			strconv.FormatFloat(h.CPUP95, 'f', -1, 64), strconv.FormatFloat(h.MemoryP95, 'f', -1, 64), h.Virtualization}
		if err := hw.Write(ferry.CSVSafeRecord(rec)); err != nil {
			return err
		}
	}
	hw.Flush()
	if err := hw.Error(); err != nil {
		return err
	}
	cw := csv.NewWriter(conns)
	if err := cw.Write(ConnectionsCSVHeader); err != nil {
		return err
	}
	for _, c := range e.Connections {
		if err := cw.Write(ferry.CSVSafeRecord([]string{c.Src, c.Dst, c.DstAddress, strconv.Itoa(c.Port), c.Protocol, c.Process, strconv.FormatInt(c.Count, 10), strconv.FormatInt(c.Bytes, 10)})); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
