// Package assess owns per-host migration assessment for a target cloud:
// readiness from an OS support matrix, boot mode, architecture and disk
// limits; right-sizing from p95 utilisation to the cheapest fitting
// instance of a catalog; monthly cost as-is and right-sized; and transfer
// time inside transfer windows with an offline-seeding recommendation. The
// matrix and catalog are data files embedded in the binary.
package assess

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ferry-migrate/ferry/i18n"
	"github.com/ferry-migrate/ferry/planner"
)

//go:embed data/os_support.yaml
var osSupportYAML []byte

//go:embed data/catalog.yaml
var catalogYAML []byte

//go:embed data/eol.yaml
var eolYAML []byte

// Status is a host's readiness for a target.
type Status string

// Readiness values, from best to worst; Unknown means data is missing.
const (
	Ready            Status = "ready"
	ReadyWithActions Status = "ready_with_actions"
	NotReady         Status = "not_ready"
	Unknown          Status = "unknown"
)

// Options tune an assessment. Zero values take the defaults noted.
type Options struct {
	Target string // alibaba (default) or openstack
	Region string // catalog region; default cn-hangzhou
	// Headroom is added on top of p95 utilisation; default 0.2 (20 %).
	Headroom float64
	// Families restricts the catalog (e.g. g7, c7, r7); empty = all.
	Families []string
	// Link describes bandwidth, transfer windows and compression; a zero
	// Bandwidth means 100 Mbit/s around the clock.
	Link planner.Constraints
	// OfflineSeedingAfter is the transfer time past which shipping disks
	// beats the network; default 14 days.
	OfflineSeedingAfter time.Duration
	// Catalog prices the instances; nil is the catalog built in
	// (data/catalog.yaml). A user's price list comes from ParseCatalogCSV.
	Catalog *Catalog
	// Now dates the end-of-life check; default time.Now.
	Now func() time.Time
}

// Result is the assessment of one host.
type Result struct {
	HostID  string   `json:"host_id"`
	Name    string   `json:"name"`
	OS      string   `json:"os"`
	Status  Status   `json:"status"`
	Reasons []string `json:"reasons"` // why not ready (English)
	Actions []string `json:"actions"` // what to do before or during migration (English)
	Missing []string `json:"missing"` // data needed to decide (English)
	// Findings are the reasons, actions, missing data and notes as codes
	// with parameters (i18n), which the UI and reports translate.
	Findings []i18n.Finding `json:"findings"`
	// Sizing: the instance matching today's allocation, and the cheapest
	// one covering p95 + headroom.
	NeedVCPUs          int     `json:"need_vcpus"`
	NeedMemoryGiB      float64 `json:"need_memory_gib"`
	InstanceAsIs       string  `json:"instance_as_is"`
	InstanceRightSized string  `json:"instance_right_sized"`
	SizingNote         string  `json:"sizing_note,omitempty"`
	MonthlyAsIs        float64 `json:"monthly_as_is"`
	MonthlyRightSized  float64 `json:"monthly_right_sized"`
	StorageMonthly     float64 `json:"storage_monthly"`
	// Transfer: used bytes after compression over the average window rate.
	UsedBytes      int64   `json:"used_bytes"`
	TransferHours  float64 `json:"transfer_hours"`
	OfflineSeeding bool    `json:"offline_seeding"`
	SeedingNote    string  `json:"seeding_note,omitempty"`
}

// Totals summarise a Report.
type Totals struct {
	Hosts             int            `json:"hosts"`
	ByStatus          map[Status]int `json:"by_status"`
	MonthlyAsIs       float64        `json:"monthly_as_is"`
	MonthlyRightSized float64        `json:"monthly_right_sized"`
	StorageMonthly    float64        `json:"storage_monthly"`
	Savings           float64        `json:"savings_percent"`
	UsedBytes         int64          `json:"used_bytes"`
	// TransferHours is the whole estate over the shared link, one after another.
	TransferHours       float64 `json:"transfer_hours"`
	OfflineSeedingHosts int     `json:"offline_seeding_hosts"`
	OfflineSeedingBytes int64   `json:"offline_seeding_bytes"`
	Currency            string  `json:"currency"`
	PriceSource         string  `json:"price_source"`
	PriceDate           string  `json:"price_date"`
	// Priced is false for targets without a price list (OpenStack): costs
	// are then absent, not zero.
	Priced bool `json:"priced"`
}

// Report is an assessment of an estate.
type Report struct {
	Target  string   `json:"target"`
	Region  string   `json:"region"`
	Results []Result `json:"results"`
	Totals  Totals   `json:"totals"`
}

type rule struct {
	Status  Status   `yaml:"status"`
	Actions []string `yaml:"actions"`
	Why     string   `yaml:"why"`
}

type targetLimits struct {
	Arch             map[string]rule `yaml:"arch"`
	BootMode         map[string]rule `yaml:"boot_mode"`
	MaxSystemDiskGiB int64           `yaml:"max_system_disk_gib"`
	MaxDataDiskGiB   int64           `yaml:"max_data_disk_gib"`
	MaxDataDisks     int             `yaml:"max_data_disks"`
}

type osEntry struct {
	Match     string `yaml:"match"`
	Alibaba   rule   `yaml:"alibaba"`
	OpenStack rule   `yaml:"openstack"`
	re        *regexp.Regexp
}

type matrix struct {
	Source  string                  `yaml:"source"`
	Targets map[string]targetLimits `yaml:"targets"`
	OS      []osEntry               `yaml:"os"`
}

type instanceType struct {
	Name      string             `yaml:"name" json:"name"`
	VCPUs     int                `yaml:"vcpus" json:"vcpus"`
	MemoryGiB float64            `yaml:"memory_gib" json:"memory_gib"`
	Monthly   map[string]float64 `yaml:"monthly" json:"monthly"`
	family    string
	arch      string
	uefi      bool
}

// Family is one instance family of a catalog.
type Family struct {
	Family string         `yaml:"family" json:"family"`
	Arch   string         `yaml:"arch" json:"arch"`
	UEFI   bool           `yaml:"uefi" json:"uefi"`
	Types  []instanceType `yaml:"types" json:"types"`
}

// Catalog is a price list: instance types with monthly prices per region
// and block storage per GiB-month, with where the prices come from and the
// day they were taken (the UI shows their age).
type Catalog struct {
	// Target is the cloud the prices are for (alibaba).
	Target       string             `yaml:"target" json:"target"`
	Source       string             `yaml:"source" json:"source"`
	Date         string             `yaml:"date" json:"date"`
	Currency     string             `yaml:"currency" json:"currency"`
	DiskGiBMonth map[string]float64 `yaml:"disk_gib_month" json:"disk_gib_month"`
	Families     []Family           `yaml:"families" json:"families"`
}

// Types counts the instance types.
func (c *Catalog) Types() int {
	n := 0
	for _, f := range c.Families {
		n += len(f.Types)
	}
	return n
}

// Regions lists the regions with a storage price, sorted.
func (c *Catalog) Regions() []string {
	var out []string
	for r := range c.DiskGiBMonth {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

type eolEntry struct {
	Match string `yaml:"match"`
	Name  string `yaml:"name"`
	End   string `yaml:"end"`
	re    *regexp.Regexp
	end   time.Time
}

type eolList struct {
	Source   string     `yaml:"source"`
	SoonDays int        `yaml:"soon_days"`
	Entries  []eolEntry `yaml:"entries"`
}

var (
	loadOnce   sync.Once
	theMatrix  *matrix
	theCatalog *Catalog
	theEOL     *eolList
	loadErr    error
)

// DefaultCatalog is the price list built into the binary (data/catalog.yaml).
func DefaultCatalog() (*Catalog, error) {
	_, c, _, err := load()
	return c, err
}

func load() (*matrix, *Catalog, *eolList, error) {
	loadOnce.Do(func() {
		var m matrix
		if err := yaml.Unmarshal(osSupportYAML, &m); err != nil {
			loadErr = fmt.Errorf("os_support.yaml: %w", err)
			return
		}
		for i := range m.OS {
			re, err := regexp.Compile("(?i)" + m.OS[i].Match)
			if err != nil {
				loadErr = fmt.Errorf("os_support.yaml os[%d].match: %w", i, err)
				return
			}
			m.OS[i].re = re
		}
		var c Catalog
		if err := yaml.Unmarshal(catalogYAML, &c); err != nil {
			loadErr = fmt.Errorf("catalog.yaml: %w", err)
			return
		}
		var e eolList
		if err := yaml.Unmarshal(eolYAML, &e); err != nil {
			loadErr = fmt.Errorf("eol.yaml: %w", err)
			return
		}
		for i := range e.Entries {
			re, err := regexp.Compile("(?i)" + e.Entries[i].Match)
			if err != nil {
				loadErr = fmt.Errorf("eol.yaml entries[%d].match: %w", i, err)
				return
			}
			end, err := time.Parse("2006-01-02", e.Entries[i].End)
			if err != nil {
				loadErr = fmt.Errorf("eol.yaml entries[%d].end: %w", i, err)
				return
			}
			e.Entries[i].re, e.Entries[i].end = re, end
		}
		theMatrix, theCatalog, theEOL = &m, &c, &e
	})
	return theMatrix, theCatalog, theEOL, loadErr
}

// Assessor assesses hosts against one target and region. It is safe for
// concurrent use.
type Assessor struct {
	opt      Options
	limits   targetLimits
	m        *matrix
	types    []instanceType // allowed, sorted by price then size then name
	diskRate float64
	avgRate  float64 // bits/s
	cat      *Catalog
	eol      *eolList
	priced   bool

	mu    sync.Mutex
	osHit map[string]*osEntry // an estate has few distinct OS strings
}

func (a *Assessor) matchOS(os string) *osEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.osHit[os]; ok {
		return e
	}
	var found *osEntry
	for i := range a.m.OS {
		if a.m.OS[i].re.MatchString(os) {
			found = &a.m.OS[i]
			break
		}
	}
	if a.osHit == nil {
		a.osHit = map[string]*osEntry{}
	}
	a.osHit[os] = found
	return found
}

// New checks the options and prepares an Assessor.
func New(opt Options) (*Assessor, error) {
	m, c, eol, err := load()
	if err != nil {
		return nil, err
	}
	if opt.Catalog != nil {
		c = opt.Catalog
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Target == "" {
		opt.Target = "alibaba"
	}
	// Only Alibaba has a price list and regions; OpenStack flavors and
	// prices are the site's own.
	priced := opt.Target == "alibaba"
	if opt.Region == "" && priced {
		opt.Region = "cn-hangzhou"
	}
	if !priced {
		opt.Region = ""
	}
	if opt.Headroom == 0 {
		opt.Headroom = 0.2
	}
	if opt.OfflineSeedingAfter == 0 {
		opt.OfflineSeedingAfter = 14 * 24 * time.Hour
	}
	if opt.Link.Bandwidth == 0 {
		opt.Link.Bandwidth = 100e6
	}
	if opt.Link.CompressionRatio == 0 {
		opt.Link.CompressionRatio = 1
	}
	var p planner.Problems
	lim, ok := m.Targets[opt.Target]
	if !ok {
		p = append(p, fmt.Sprintf("target: %q is not alibaba or openstack", opt.Target))
	}
	if opt.Headroom < 0 || opt.Headroom > 5 {
		p = append(p, fmt.Sprintf("headroom: %g is not between 0 and 5", opt.Headroom))
	}
	a := &Assessor{opt: opt, limits: lim, m: m, cat: c, eol: eol, priced: priced}
	fam := map[string]bool{}
	for _, f := range opt.Families {
		fam[f] = true
	}
	known := map[string]bool{}
	for _, f := range c.Families {
		known[f.Family] = true
		if len(fam) > 0 && !fam[f.Family] {
			continue
		}
		for _, t := range f.Types {
			if _, ok := t.Monthly[opt.Region]; !ok && priced {
				continue
			}
			t.family, t.arch, t.uefi = f.Family, f.Arch, f.UEFI
			a.types = append(a.types, t)
		}
	}
	for _, f := range opt.Families {
		if !known[f] {
			p = append(p, fmt.Sprintf("families: %q is not in the catalog", f))
		}
	}
	if _, ok := c.DiskGiBMonth[opt.Region]; !ok && len(p) == 0 && priced {
		p = append(p, fmt.Sprintf("region: %q is not in the catalog (have %s)", opt.Region, strings.Join(c.Regions(), ", ")))
	}
	a.diskRate = c.DiskGiBMonth[opt.Region]
	slices.SortFunc(a.types, func(x, y instanceType) int {
		px, py := x.Monthly[opt.Region], y.Monthly[opt.Region]
		switch {
		case px != py:
			return cmpFloat(px, py)
		case x.VCPUs != y.VCPUs:
			return x.VCPUs - y.VCPUs
		}
		return strings.Compare(x.Name, y.Name)
	})
	if rate, err := opt.Link.AverageRate(); err != nil {
		var pp planner.Problems
		if errors.As(err, &pp) {
			for _, s := range pp {
				p = append(p, "link."+s)
			}
		}
	} else {
		a.avgRate = rate
	}
	if len(p) > 0 {
		return nil, p
	}
	return a, nil
}

func cmpFloat(a, b float64) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// Assess assesses one host for a target with default options otherwise.
func Assess(h *planner.Host, target string, opt Options) (Result, error) {
	opt.Target = target
	a, err := New(opt)
	if err != nil {
		return Result{}, err
	}
	return a.Host(h), nil
}

// Host assesses one host.
func (a *Assessor) Host(h *planner.Host) Result {
	r := Result{HostID: h.ID, Name: h.Label(), OS: h.OS, Findings: []i18n.Finding{}, UsedBytes: h.UsedBytes()}
	worst := Ready
	add := func(kind, code string, kv ...any) {
		m := i18n.M(code, kv...)
		r.Findings = append(r.Findings, i18n.Finding{Kind: kind, Code: m.Code, Params: m.Params})
	}
	apply := func(ru rule, what string) {
		switch ru.Status {
		case NotReady:
			worst = NotReady
			if ru.Why != "" {
				add(i18n.Reason, ru.Why)
			} else {
				add(i18n.Reason, "assess.reason.not_supported", "what", what, "target", a.opt.Target)
			}
		case "actions", ReadyWithActions:
			if worst == Ready {
				worst = ReadyWithActions
			}
			for _, code := range ru.Actions {
				add(i18n.Action, code)
			}
		}
	}
	// Operating system.
	if strings.TrimSpace(h.OS) == "" {
		add(i18n.Missing, "assess.missing.os")
	} else {
		found := a.matchOS(h.OS)
		if found == nil {
			add(i18n.Missing, "assess.missing.os_matrix", "os", h.OS)
		} else if a.opt.Target == "openstack" {
			apply(found.OpenStack, h.OS)
		} else {
			apply(found.Alibaba, h.OS)
		}
		// End of life: one list for every OS and target (data/eol.yaml).
		if e := a.matchEOL(h.OS); e != nil {
			now := a.opt.Now()
			switch {
			case !now.Before(e.end):
				apply(rule{Status: ReadyWithActions}, "")
				add(i18n.Action, "assess.action.eol", "os", e.Name, "date", e.End)
			case now.AddDate(0, 0, a.eol.SoonDays).After(e.end):
				apply(rule{Status: ReadyWithActions}, "")
				add(i18n.Action, "assess.action.eol_soon", "os", e.Name, "date", e.End)
			}
		}
	}
	// Architecture and boot mode.
	if h.Arch == "" {
		add(i18n.Missing, "assess.missing.arch")
	} else if ru, ok := a.limits.Arch[normArch(h.Arch)]; ok {
		apply(ru, "architecture "+h.Arch)
	} else {
		worst = NotReady
		add(i18n.Reason, "assess.reason.arch", "arch", h.Arch, "target", a.opt.Target)
	}
	if h.BootMode == "" {
		add(i18n.Missing, "assess.missing.boot_mode")
	} else if ru, ok := a.limits.BootMode[h.BootMode]; ok {
		apply(ru, "boot mode "+h.BootMode)
	}
	// Disks: the first is the system disk.
	if len(h.Disks) == 0 {
		add(i18n.Missing, "assess.missing.disks")
	} else {
		if lim := a.limits.MaxSystemDiskGiB; lim > 0 && h.Disks[0].ProvisionedBytes > lim<<30 {
			worst = NotReady
			add(i18n.Reason, "assess.reason.system_disk", "disk", h.Disks[0].Name, "gib", h.Disks[0].ProvisionedBytes>>30, "target", a.opt.Target, "limit", lim)
		}
		if lim := a.limits.MaxDataDisks; lim > 0 && len(h.Disks)-1 > lim {
			worst = NotReady
			add(i18n.Reason, "assess.reason.data_disks", "n", len(h.Disks)-1, "target", a.opt.Target, "limit", lim)
		}
		for _, d := range h.Disks[1:] {
			if lim := a.limits.MaxDataDiskGiB; lim > 0 && d.ProvisionedBytes > lim<<30 {
				apply(rule{Status: ReadyWithActions}, "")
				add(i18n.Action, "assess.action.split_disk", "disk", d.Name, "gib", d.ProvisionedBytes>>30, "limit", lim)
			}
		}
	}
	r.Status = worst
	a.size(h, &r, add)
	a.transfer(h, &r, add)
	if r.Status != NotReady && hasKind(r.Findings, i18n.Missing) {
		r.Status = Unknown
	}
	r.Reasons = i18n.Texts("en", i18n.Of(r.Findings, i18n.Reason))
	r.Actions = i18n.Texts("en", i18n.Of(r.Findings, i18n.Action))
	r.Missing = i18n.Texts("en", i18n.Of(r.Findings, i18n.Missing))
	if r.Reasons == nil {
		r.Reasons = []string{}
	}
	if r.Actions == nil {
		r.Actions = []string{}
	}
	if r.Missing == nil {
		r.Missing = []string{}
	}
	var sizing, seeding []string
	for _, f := range r.Findings {
		if f.Kind != i18n.Note {
			continue
		}
		if f.Code == "assess.note.offline_seeding" {
			seeding = append(seeding, f.Msg().String())
		} else {
			sizing = append(sizing, f.Msg().String())
		}
	}
	r.SizingNote, r.SeedingNote = strings.Join(sizing, "; "), strings.Join(seeding, "; ")
	return r
}

func hasKind(fs []i18n.Finding, kind string) bool {
	for _, f := range fs {
		if f.Kind == kind {
			return true
		}
	}
	return false
}

func (a *Assessor) matchEOL(os string) *eolEntry {
	for i := range a.eol.Entries {
		if a.eol.Entries[i].re.MatchString(os) {
			return &a.eol.Entries[i]
		}
	}
	return nil
}

func normArch(s string) string {
	switch strings.ToLower(s) {
	case "x86_64", "amd64", "x64", "x86-64":
		return "x86_64"
	case "aarch64", "arm64":
		return "aarch64"
	}
	return strings.ToLower(s)
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// size picks the as-is and right-sized instances. Right-sizing needs both
// p95 figures; without them the host keeps its allocation and says so.
// Prices are Linux list prices: a Windows host's licence comes on top.
func (a *Assessor) size(h *planner.Host, r *Result, add func(kind, code string, kv ...any)) {
	arch := normArch(h.Arch)
	if arch != "aarch64" {
		arch = "x86_64"
	}
	memGiB := float64(h.MemoryMiB) / 1024
	if h.CPUs == 0 || h.MemoryMiB == 0 {
		add(i18n.Missing, "assess.missing.sizing")
		return
	}
	asIs, ok := a.cheapest(h.CPUs, memGiB, arch, h.BootMode)
	if ok && a.priced {
		r.InstanceAsIs, r.MonthlyAsIs = asIs.Name, asIs.Monthly[a.opt.Region]
	}
	needC, needM := float64(h.CPUs), memGiB
	if h.CPUP95 > 0 && h.MemoryP95 > 0 {
		needC = float64(h.CPUs) * h.CPUP95 / 100 * (1 + a.opt.Headroom)
		needM = memGiB * h.MemoryP95 / 100 * (1 + a.opt.Headroom)
	} else {
		add(i18n.Note, "assess.note.no_p95")
	}
	r.NeedVCPUs = max(1, int(math.Ceil(needC-1e-9)))
	r.NeedMemoryGiB = math.Round(needM*10) / 10
	rs, ok := a.cheapest(r.NeedVCPUs, needM, arch, h.BootMode)
	switch {
	case !a.priced:
		add(i18n.Note, "assess.note.openstack_flavors")
		return
	case ok:
		r.InstanceRightSized, r.MonthlyRightSized = rs.Name, rs.Monthly[a.opt.Region]
	default:
		add(i18n.Note, "assess.note.no_type")
	}
	if strings.Contains(strings.ToLower(h.OS), "windows") {
		add(i18n.Note, "assess.note.windows_licence")
	}
	r.StorageMonthly = math.Round(float64(h.ProvisionedBytes())/(1<<30)*a.diskRate*100) / 100
}

func (a *Assessor) cheapest(vcpus int, memGiB float64, arch, boot string) (instanceType, bool) {
	for _, t := range a.types {
		if boot == "uefi" && !t.uefi {
			continue
		}
		if t.arch == arch && t.VCPUs >= vcpus && t.MemoryGiB >= memGiB-1e-9 {
			return t, true
		}
	}
	return instanceType{}, false
}

// transfer estimates the initial copy of this host alone over the link, at
// the week-averaged window rate, after compression.
func (a *Assessor) transfer(h *planner.Host, r *Result, add func(kind, code string, kv ...any)) {
	if a.avgRate <= 0 {
		return
	}
	bits := float64(h.UsedBytes()) * a.opt.Link.CompressionRatio * 8
	secs := bits / a.avgRate
	r.TransferHours = math.Round(secs/3600*100) / 100
	if d := time.Duration(secs * float64(time.Second)); d > a.opt.OfflineSeedingAfter {
		r.OfflineSeeding = true
		add(i18n.Note, "assess.note.offline_seeding", "bytes", humanBytes(h.UsedBytes()), "rate", humanRate(a.avgRate),
			"time", humanDuration(d), "limit", humanDuration(a.opt.OfflineSeedingAfter))
	}
}

// Estate assesses every host and totals the results.
func (a *Assessor) Estate(e *planner.Estate) *Report {
	rep := &Report{Target: a.opt.Target, Region: a.opt.Region, Results: make([]Result, 0, len(e.Hosts))}
	t := &rep.Totals
	t.ByStatus = map[Status]int{Ready: 0, ReadyWithActions: 0, NotReady: 0, Unknown: 0}
	t.Currency, t.PriceSource, t.PriceDate, t.Priced = a.cat.Currency, strings.TrimSpace(a.cat.Source), a.cat.Date, a.priced
	for i := range e.Hosts {
		r := a.Host(&e.Hosts[i])
		rep.Results = append(rep.Results, r)
		t.Hosts++
		t.ByStatus[r.Status]++
		t.MonthlyAsIs += r.MonthlyAsIs
		t.MonthlyRightSized += r.MonthlyRightSized
		t.StorageMonthly += r.StorageMonthly
		t.UsedBytes += r.UsedBytes
		if r.OfflineSeeding {
			t.OfflineSeedingHosts++
			t.OfflineSeedingBytes += r.UsedBytes
		}
	}
	t.MonthlyAsIs = math.Round(t.MonthlyAsIs*100) / 100
	t.MonthlyRightSized = math.Round(t.MonthlyRightSized*100) / 100
	t.StorageMonthly = math.Round(t.StorageMonthly*100) / 100
	if t.MonthlyAsIs > 0 {
		t.Savings = math.Round((1-t.MonthlyRightSized/t.MonthlyAsIs)*1000) / 10
	}
	if a.avgRate > 0 {
		t.TransferHours = math.Round(float64(t.UsedBytes)*a.opt.Link.CompressionRatio*8/a.avgRate/3600*10) / 10
	}
	return rep
}

func humanBytes(b int64) string {
	const tb = 1e12
	if float64(b) >= tb {
		return fmt.Sprintf("%.1f TB", float64(b)/tb)
	}
	return fmt.Sprintf("%.0f GB", float64(b)/1e9)
}

func humanRate(bps float64) string {
	if bps >= 1e9 {
		return fmt.Sprintf("%.1f Gbit/s", bps/1e9)
	}
	return fmt.Sprintf("%.1f Mbit/s", bps/1e6)
}

func humanDuration(d time.Duration) string {
	days := d.Hours() / 24
	switch {
	case days >= 365:
		return fmt.Sprintf("%.1f years", days/365)
	case days >= 2:
		return fmt.Sprintf("%.0f days", days)
	}
	return fmt.Sprintf("%.0f hours", d.Hours())
}
