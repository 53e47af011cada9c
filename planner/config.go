package planner

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // plans name IANA zones; the server image may have no zoneinfo.

	"gopkg.in/yaml.v3"

	"github.com/ferry-migrate/ferry"
)

// Config is the constraints file (plan.yaml): the constraints plus the rules.
type Config struct {
	Constraints `yaml:",inline"`
	Rules       Rules `yaml:"rules" json:"rules"`
}

// Constraints bound the plan. Zero values mean "no limit" where that is
// meaningful; Defaults fills the rest.
type Constraints struct {
	// Start is when replication may begin (YYYY-MM-DD or RFC 3339), read in Timezone.
	Start    string `yaml:"start" json:"start"`
	Timezone string `yaml:"timezone" json:"timezone"`
	// MaxHostsPerWave and MaxBytesPerWave cap a wave (0 = no cap).
	MaxHostsPerWave int      `yaml:"max_hosts_per_wave" json:"max_hosts_per_wave"`
	MaxBytesPerWave ByteSize `yaml:"max_bytes_per_wave" json:"max_bytes_per_wave"`
	// Bandwidth is the link to the cloud, bits/s; also the rate of a transfer
	// window that gives none.
	Bandwidth BitRate `yaml:"bandwidth" json:"bandwidth"`
	// CompressionRatio is wire bytes / used bytes (0.6 = 40 % saved); default 1.
	CompressionRatio float64 `yaml:"compression_ratio" json:"compression_ratio"`
	// TransferWindows restrict replication to windows (ferry.ParseWindows),
	// each at its own rate (0 = paused) capped at Bandwidth; where windows
	// overlap, the one that opened last holds. Empty means around the clock
	// at Bandwidth.
	TransferWindows []TransferWindow `yaml:"transfer_windows" json:"transfer_windows"`
	// CutoverWindows are when waves may cut over, e.g. "Sat 22:00-04:00"
	// (ferry.ParseWindows, without rates; windows that touch or overlap
	// make one longer window). Empty means a cutover starts as soon as
	// replication ends.
	CutoverWindows []string `yaml:"cutover_windows" json:"cutover_windows"`
	// MaxDowntime is the longest a host may be down at cutover (0 = no cap);
	// hosts estimated over it are reported as warnings.
	MaxDowntime Duration `yaml:"max_downtime" json:"max_downtime"`
	// CutoverOverhead is the fixed per-host cutover time (stop, final sync
	// set-up, boot, checks); default 30m.
	CutoverOverhead Duration `yaml:"cutover_overhead" json:"cutover_overhead"`
	// FinalDeltaRatio is the share of used bytes still to send at cutover; default 0.005.
	FinalDeltaRatio float64 `yaml:"final_delta_ratio" json:"final_delta_ratio"`
	// ParallelMigrations is how many hosts cut over at once; default 10.
	ParallelMigrations int   `yaml:"parallel_migrations" json:"parallel_migrations"`
	Pilot              Pilot `yaml:"pilot" json:"pilot"`
	// CutoverHostsPerWindow is how many hosts one cutover stream finishes
	// inside one cutover window. A wave cuts over in one window, so it holds
	// at most CutoverHostsPerWindow × ParallelMigrations hosts: a packing
	// rule, not only a warning. 0 derives it from the shortest cutover
	// window and CutoverOverhead (no cutover windows: no such cap).
	CutoverHostsPerWindow int `yaml:"cutover_hosts_per_window" json:"cutover_hosts_per_window"`
	// WaveRules are the ordered wave-planning rules (Azure Migrate's), each
	// on or off; see WaveRules.
	WaveRules WaveRules `yaml:"wave_rules" json:"wave_rules"`
	// ImprovementPasses bounds the local-improvement pass; default 4, -1 = off.
	ImprovementPasses int `yaml:"improvement_passes" json:"improvement_passes"`
	// NotReady names hosts an assessment found not ready for the target
	// (host id -> why). It is not read from the constraints file: the
	// server fills it from stored assessments and the CLI from --target.
	// It feeds each wave's risk.
	NotReady map[string]string `yaml:"-" json:"-"`
}

// WaveRules are the rules consultants plan waves by, in priority order:
// when two conflict for a group, the earlier one holds and the later one is
// waived for that group, and the plan says so. Each is on unless set to
// false.
type WaveRules struct {
	// StrongDependenciesTogether: hosts that depend on each other both ways
	// (a dependency cycle) share a wave.
	StrongDependenciesTogether *bool `yaml:"strong_dependencies_together" json:"strong_dependencies_together"`
	// ApplicationsWhole: an application (labelled or inferred from traffic)
	// moves in one wave.
	ApplicationsWhole *bool `yaml:"applications_whole" json:"applications_whole"`
	// DependenciesFirst: a host moves in the same wave as what it depends
	// on, or later.
	DependenciesFirst *bool `yaml:"dependencies_first" json:"dependencies_first"`
	// DevTestFirst: development, test and staging move before production.
	DevTestFirst *bool `yaml:"dev_test_first" json:"dev_test_first"`
	// SeparateProduction: a wave holds production or non-production, never both.
	SeparateProduction *bool `yaml:"separate_production" json:"separate_production"`
	// CriticalNotEarly: critical and complex applications stay out of the
	// first EarlyWaves waves.
	CriticalNotEarly *bool `yaml:"critical_not_early" json:"critical_not_early"`
	// EarlyWaves is how many first waves count as early (default 2).
	EarlyWaves int `yaml:"early_waves" json:"early_waves"`
	// ComplexHosts makes a group complex from this many hosts (default 10).
	ComplexHosts int `yaml:"complex_hosts" json:"complex_hosts"`
	// WorkloadRange bounds the hosts of a wave: Max caps it (with
	// max_hosts_per_wave, the lower wins), a wave under Min is reported.
	WorkloadRange WorkloadRange `yaml:"workload_range" json:"workload_range"`
}

// WorkloadRange is a minimum and maximum number of hosts per wave (0 = none).
type WorkloadRange struct {
	Min int `yaml:"min" json:"min"`
	Max int `yaml:"max" json:"max"`
}

func on(b *bool) bool { return b == nil || *b }

// Pilot describes the first, low-risk wave.
type Pilot struct {
	// Hosts is the pilot wave size; 0 = no pilot wave.
	Hosts int `yaml:"hosts" json:"hosts"`
	// MaxDependants is the most hosts outside a group that may depend on a
	// pilot group; unset = 2, and 0 means none may.
	MaxDependants *int `yaml:"max_dependants" json:"max_dependants"`
	// Environments a pilot host may belong to; default non-production ones.
	Environments []string `yaml:"environments" json:"environments"`
	// Criticality a pilot host may have; default low, medium and unset.
	Criticality []string `yaml:"criticality" json:"criticality"`
}

// TransferWindow is a replication window with its rate.
type TransferWindow struct {
	// When is a window, or a list of them, in the shared grammar; it may
	// carry its own rate ("Mon-Fri 19:00-07:00=800Mbps") instead of Rate.
	When string `yaml:"when" json:"when"`
	// Rate in bits/s; nil = the window's own, else Bandwidth; 0 = paused.
	Rate *BitRate `yaml:"rate" json:"rate"`
}

// Rules say what the dependency graph should ignore and what must hold.
// Host references are host ids or names; "application:NAME" names every
// host of an application.
type Rules struct {
	// NoisePorts replace the default list when set; ExtraNoisePorts add to it.
	NoisePorts          []int    `yaml:"noise_ports" json:"noise_ports"`
	ExtraNoisePorts     []int    `yaml:"extra_noise_ports" json:"extra_noise_ports"`
	NoiseProcesses      []string `yaml:"noise_processes" json:"noise_processes"`
	ExtraNoiseProcesses []string `yaml:"extra_noise_processes" json:"extra_noise_processes"`
	// IgnoreApplications stops hosts sharing an application from being
	// forced into one group.
	IgnoreApplications bool           `yaml:"ignore_applications" json:"ignore_applications"`
	KeepTogether       []KeepTogether `yaml:"keep_together" json:"keep_together"`
	KeepApart          [][2]string    `yaml:"keep_apart" json:"keep_apart"`
	Before             []Before       `yaml:"before" json:"before"`
	// Pins put hosts in a wave (1 = first wave); they add to pinned_wave in the estate.
	Pins map[string]int `yaml:"pins" json:"pins"`
	// InferApplications groups hosts without an application label by
	// community detection on their traffic (default on); the suggestions
	// then move as applications.
	InferApplications *bool `yaml:"infer_applications" json:"infer_applications"`
	// Resolution tunes inference: higher finds smaller applications
	// (default 1; see docs/planner.md).
	Resolution float64 `yaml:"resolution" json:"resolution"`
	// SharedServices says how hosts that a large part of the estate calls
	// are found and placed.
	SharedServices SharedServiceRules `yaml:"shared_services" json:"shared_services"`
}

// SharedServiceRules find shared services (hosts called by many others:
// NFS, SMTP relays, proxies, a shared database) and place them by policy.
// They are kept out of application grouping and out of the affinity that
// fills waves.
type SharedServiceRules struct {
	// Detect finds them from traffic (default on).
	Detect *bool `yaml:"detect" json:"detect"`
	// CallerShare: a host called by at least this share of the estate's
	// hosts is shared (default 0.05).
	CallerShare float64 `yaml:"caller_share" json:"caller_share"`
	// PortCallers: a host called on one port by at least this many hosts is
	// shared (default 25).
	PortCallers int `yaml:"port_callers" json:"port_callers"`
	// MinCallers: never shared with fewer callers than this (default 10).
	MinCallers int `yaml:"min_callers" json:"min_callers"`
	// Policy: early (before their callers; the default), last (after every
	// caller, with a latency warning) or on_premises (not migrated).
	Policy string `yaml:"policy" json:"policy"`
	// Hosts are shared whatever their traffic; Not are never shared.
	Hosts []string `yaml:"hosts" json:"hosts"`
	Not   []string `yaml:"not" json:"not"`
}

// Shared-service placement policies.
const (
	PolicyEarly      = "early"
	PolicyLast       = "last"
	PolicyOnPremises = "on_premises"
)

// KeepTogether is a named set of hosts that must share a wave.
type KeepTogether struct {
	Name  string   `yaml:"name" json:"name"`
	Hosts []string `yaml:"hosts" json:"hosts"`
}

// Before says First must be in an earlier wave than Then.
type Before struct {
	First string `yaml:"first" json:"first"`
	Then  string `yaml:"then" json:"then"`
}

// DefaultNoisePorts are infrastructure flows every host has and no move
// order depends on: administrator access (SSH, RDP from jump hosts), DNS, NTP, Kerberos, LDAP/AD, SNMP, syslog, monitoring
// agents (NRPE, Zabbix, node_exporter, SCOM), backup agents (NetBackup,
// Commvault, Veeam, NDMP) and WSUS.
var DefaultNoisePorts = []int{22, 3389, 53, 88, 123, 161, 162, 389, 464, 514, 636, 3268, 3269, 5666, 10050, 10051, 9100, 5723, 1556, 13724, 13782, 8400, 8403, 10000, 9392, 8530, 8531}

// DefaultNoiseProcesses are the same kinds of flows recognised by process.
var DefaultNoiseProcesses = []string{"named", "dnsmasq", "systemd-resolve", "ntpd", "chronyd", "w32time", "sssd", "nslcd", "lsass.exe", "snmpd", "rsyslogd", "syslog-ng", "nrpe", "zabbix_agentd", "zabbix_agent2", "node_exporter", "splunkd", "healthservice.exe", "bpcd", "vnetd", "cvd", "veeamagent", "beremote.exe"}

// ReadConfig decodes and validates a constraints file. Unknown keys are
// errors (a typo must not silently drop a constraint).
func ReadConfig(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read constraints: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("constraints YAML: %w", err)
	}
	if err := c.Constraints.Validate(); err != nil {
		return nil, err
	}
	if err := c.Rules.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// withDefaults returns a copy with defaults applied.
func (r Rules) withDefaults() Rules {
	if r.Resolution == 0 {
		r.Resolution = 1
	}
	ss := &r.SharedServices
	if ss.CallerShare == 0 {
		ss.CallerShare = 0.05
	}
	if ss.PortCallers == 0 {
		ss.PortCallers = 25
	}
	if ss.MinCallers == 0 {
		ss.MinCallers = 10
	}
	if ss.Policy == "" {
		ss.Policy = PolicyEarly
	}
	return r
}

// withDefaults returns a copy with defaults applied.
func (c Constraints) withDefaults() Constraints {
	if c.CompressionRatio == 0 {
		c.CompressionRatio = 1
	}
	if c.CutoverOverhead == 0 {
		c.CutoverOverhead = Duration(30 * time.Minute)
	}
	if c.FinalDeltaRatio == 0 {
		c.FinalDeltaRatio = 0.005
	}
	if c.ParallelMigrations == 0 {
		c.ParallelMigrations = 10
	}
	if c.Pilot.MaxDependants == nil {
		two := 2
		c.Pilot.MaxDependants = &two
	}
	if c.WaveRules.EarlyWaves == 0 {
		c.WaveRules.EarlyWaves = 2
	}
	if c.WaveRules.ComplexHosts == 0 {
		c.WaveRules.ComplexHosts = 10
	}
	if len(c.Pilot.Environments) == 0 {
		c.Pilot.Environments = []string{"development", "test", "staging"}
	}
	if len(c.Pilot.Criticality) == 0 {
		c.Pilot.Criticality = []string{"", "low", "medium"}
	}
	if c.ImprovementPasses == 0 {
		c.ImprovementPasses = 4
	}
	if c.Timezone == "" {
		c.Timezone = "UTC"
	}
	return c
}

// Validate reports every problem in c, each naming its field.
func (c Constraints) Validate() error {
	var p Problems
	loc, err := time.LoadLocation(orStr(c.Timezone, "UTC"))
	if err != nil {
		p.addf("timezone: %q is not an IANA time zone", c.Timezone)
		loc = time.UTC
	}
	if c.Start != "" {
		if _, err := parseStart(c.Start, loc); err != nil {
			p.addf("start: %v", err)
		}
	}
	if c.MaxHostsPerWave < 0 {
		p.addf("max_hosts_per_wave: %d is negative", c.MaxHostsPerWave)
	}
	if c.MaxBytesPerWave < 0 {
		p.addf("max_bytes_per_wave: %d is negative", c.MaxBytesPerWave)
	}
	if c.Bandwidth <= 0 {
		p.addf("bandwidth: must be above zero (e.g. 100Mbps); nothing could ever replicate")
	}
	if math.IsInf(float64(c.Bandwidth), 0) {
		p.addf("bandwidth: unlimited is not a link; give its rate (e.g. 1Gbps)")
	}
	if c.CompressionRatio < 0 || c.CompressionRatio > 1 {
		p.addf("compression_ratio: %g is not in (0, 1]", c.CompressionRatio)
	}
	if c.FinalDeltaRatio < 0 || c.FinalDeltaRatio > 1 {
		p.addf("final_delta_ratio: %g is not in [0, 1]", c.FinalDeltaRatio)
	}
	if c.MaxDowntime < 0 {
		p.addf("max_downtime: is negative")
	}
	if c.CutoverOverhead < 0 {
		p.addf("cutover_overhead: is negative")
	}
	if c.ParallelMigrations < 0 {
		p.addf("parallel_migrations: %d is negative", c.ParallelMigrations)
	}
	if c.Pilot.Hosts < 0 {
		p.addf("pilot.hosts: %d is negative", c.Pilot.Hosts)
	}
	if c.Pilot.MaxDependants != nil && *c.Pilot.MaxDependants < 0 {
		p.addf("pilot.max_dependants: %d is negative", *c.Pilot.MaxDependants)
	}
	if c.CutoverHostsPerWindow < 0 {
		p.addf("cutover_hosts_per_window: %d is negative", c.CutoverHostsPerWindow)
	}
	if c.WaveRules.EarlyWaves < 0 {
		p.addf("wave_rules.early_waves: %d is negative", c.WaveRules.EarlyWaves)
	}
	if c.WaveRules.ComplexHosts < 0 {
		p.addf("wave_rules.complex_hosts: %d is negative", c.WaveRules.ComplexHosts)
	}
	if wr := c.WaveRules.WorkloadRange; wr.Min < 0 || wr.Max < 0 || wr.Max > 0 && wr.Min > wr.Max {
		p.addf("wave_rules.workload_range: min %d and max %d must be ≥ 0 with min ≤ max", wr.Min, wr.Max)
	}
	for i, e := range c.Pilot.Environments {
		if !validEnvironments[e] {
			p.addf("pilot.environments[%d]: %q is not an environment", i, e)
		}
	}
	for i, e := range c.Pilot.Criticality {
		if !validCriticality[e] {
			p.addf("pilot.criticality[%d]: %q is not a criticality", i, e)
		}
	}
	if c.ImprovementPasses < -1 {
		p.addf("improvement_passes: %d (use -1 to turn the pass off)", c.ImprovementPasses)
	}
	if c.Bandwidth > 0 && !math.IsInf(float64(c.Bandwidth), 0) {
		_, err := c.transferSchedule()
		problemsOf(err, &p)
	}
	_, err = c.cutoverSchedule()
	problemsOf(err, &p)
	return p.err()
}

func (r Rules) validate() error {
	var p Problems
	if r.Resolution < 0 {
		p.addf("rules.resolution: %g is negative", r.Resolution)
	}
	ss := r.SharedServices
	if ss.CallerShare < 0 || ss.CallerShare > 1 {
		p.addf("rules.shared_services.caller_share: %g is not in [0, 1]", ss.CallerShare)
	}
	if ss.PortCallers < 0 || ss.MinCallers < 0 {
		p.addf("rules.shared_services: port_callers and min_callers must be ≥ 0")
	}
	switch ss.Policy {
	case "", PolicyEarly, PolicyLast, PolicyOnPremises:
	default:
		p.addf("rules.shared_services.policy: %q is not early, last or on_premises", ss.Policy)
	}
	for i, port := range append(append([]int{}, r.NoisePorts...), r.ExtraNoisePorts...) {
		if port < 0 || port > 65535 {
			p.addf("rules.noise_ports[%d]: %d is not a port", i, port)
		}
	}
	for i, k := range r.KeepTogether {
		if len(k.Hosts) < 2 {
			p.addf("rules.keep_together[%d] (%s): needs at least two hosts", i, k.Name)
		}
	}
	for i, k := range r.KeepApart {
		if k[0] == "" || k[1] == "" || k[0] == k[1] {
			p.addf("rules.keep_apart[%d]: needs two different hosts, got %q and %q", i, k[0], k[1])
		}
	}
	for i, b := range r.Before {
		if b.First == "" || b.Then == "" {
			p.addf("rules.before[%d]: first and then are both required", i)
		} else if b.First == b.Then {
			p.addf("rules.before[%d]: %q cannot come before itself", i, b.First)
		}
	}
	for _, k := range sortedKeys(r.Pins) {
		if r.Pins[k] < 1 {
			p.addf("rules.pins[%s]: wave %d; waves start at 1", k, r.Pins[k])
		}
	}
	return p.err()
}

func parseStart(s string, loc *time.Location) (time.Time, error) {
	for _, layout := range []string{"2006-01-02", "2006-01-02 15:04", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.In(loc), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date (YYYY-MM-DD, YYYY-MM-DD HH:MM or RFC 3339)", s)
}

// ByteSize is a byte count that YAML may give as 1099511627776, "1TiB" or "1.5 TB".
type ByteSize int64

// UnmarshalYAML accepts a number or a number with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseUnit(n.Value, byteUnits)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a size (e.g. 500GiB, 2TB): %v", n.Line, n.Value, err)
	}
	*b = ByteSize(v)
	return nil
}

// BitRate is bits per second. YAML gives it as a rate in the shared
// vocabulary (ferry.ParseRate): "100Mbps", "1 Gbit/s", "12MB/s", 0 or
// unlimited. A number without a unit is refused (it used to be bits/s here
// and bytes/s in the engine); plans stored before keep their reading (see
// UpgradeStoredRates).
type BitRate float64

// UnmarshalYAML reads a rate.
func (r *BitRate) UnmarshalYAML(n *yaml.Node) error {
	v, err := ferry.ParseRate(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a bit rate (e.g. 100Mbps, 1Gbps): %v", n.Line, n.Value, err)
	}
	*r = BitRate(v.Bits())
	return nil
}

// Rate returns r in the shared vocabulary's bytes per second.
func (r BitRate) Rate() ferry.Rate { return ferry.RateFromBits(float64(r)) }

// UpgradeStoredRates returns a copy of a constraints document stored by
// an earlier Ferry with its rates (bandwidth, transfer_windows[].rate) in
// today's spelling, read as the planner then read them: all bits, a bare
// number too, "100MB/s" 100 Mbit/s. Rates it cannot read are left for
// ReadConfig to report. Documents stored now hold CanonicalRates' spelling,
// which reads the same either way.
func UpgradeStoredRates(doc map[string]any) map[string]any {
	return rewriteRates(doc, func(s string) (ferry.Rate, error) { return ferry.ParseStoredRate(s, ferry.PlannerRates) })
}

// CanonicalRates returns a copy of a constraints document a person wrote
// with its rates in ferry.Rate.String's spelling (what a plan stores).
// Rates ParseRate refuses are left for ReadConfig to report.
func CanonicalRates(doc map[string]any) map[string]any {
	return rewriteRates(doc, ferry.ParseRate)
}

func rewriteRates(doc map[string]any, read func(string) (ferry.Rate, error)) map[string]any {
	rewrite := func(v any) any {
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case float64:
			s = strconv.FormatFloat(x, 'f', -1, 64)
		case int:
			s = strconv.Itoa(x)
		default:
			return v
		}
		r, err := read(s)
		if err != nil {
			return v
		}
		return r.String()
	}
	out := make(map[string]any, len(doc))
	for k, v := range doc {
		out[k] = v
	}
	if v, ok := out["bandwidth"]; ok {
		out["bandwidth"] = rewrite(v)
	}
	if ws, ok := out["transfer_windows"].([]any); ok {
		cp := make([]any, len(ws))
		for i, w := range ws {
			cp[i] = w
			if m, ok := w.(map[string]any); ok {
				if v, ok := m["rate"]; ok {
					mc := make(map[string]any, len(m))
					for k, x := range m {
						mc[k] = x
					}
					mc["rate"] = rewrite(v)
					cp[i] = mc
				}
			}
		}
		out["transfer_windows"] = cp
	}
	return out
}

// Duration is a time.Duration that YAML gives as "4h" or "90m".
type Duration time.Duration

// UnmarshalYAML parses Go duration syntax plus a "d" (day) unit.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	if strings.HasSuffix(s, "d") {
		days, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err == nil {
			*d = Duration(days * 24 * float64(time.Hour))
			return nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 4h, 90m, 2d)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}

var byteUnits = map[string]float64{
	"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12, "p": 1e15, "pb": 1e15,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50,
}

func parseUnit(s string, units map[string]float64) (float64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == '-' || s[i] == '+' || s[i] == 'e' && i > 0 && i+1 < len(s) && (s[i+1] >= '0' && s[i+1] <= '9' || s[i+1] == '-')) {
		i++
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, errors.New("no number")
	}
	m, ok := units[unit]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q", unit)
	}
	v *= m
	if math.IsNaN(v) || math.IsInf(v, 0) || v > math.MaxInt64/2 {
		return 0, errors.New("out of range")
	}
	return v, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
