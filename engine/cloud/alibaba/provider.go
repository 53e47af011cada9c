package alibaba

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

// Options are the provider's defaults; an account's Settings override the
// ones named there.
type Options struct {
	// GatewayImage and GatewayType: the gateway instance (a public Linux
	// image with ferry installed, or one the script can download it onto;
	// see FerryURL). Defaults debian_12_6_x64_20G_alibase_20240819.vhd,
	// ecs.g7.large.
	GatewayImage, GatewayType string
	// RepairImage and RepairType: the instance that adapts launched disks
	// (defaults: the gateway's).
	RepairImage, RepairType string
	// LaunchType is the instance type of a launch whose Shape names none
	// (default ecs.g7.large).
	LaunchType string
	// DiskCategory of target and launched disks (default cloud_essd).
	DiskCategory string
	// SyncPort is where gateways listen (default 8443).
	SyncPort int
	// GatewayTimeout bounds waiting for a gateway to register, RepairTimeout
	// for a repair instance's report (defaults 10 and 30 minutes).
	GatewayTimeout, RepairTimeout time.Duration
	// BootCheck makes a launch wait for the launched instance's serial
	// console to reach a login prompt (GetInstanceConsoleOutput) within
	// BootTimeout (default 10 minutes); off, the boot check is Skipped.
	// `ferry serve` turns it on; an account's boot_check and boot_timeout
	// settings override both.
	BootCheck   bool
	BootTimeout time.Duration
	// FerryURL is where an instance's script downloads the ferry binary
	// when its image lacks it; empty: the image must have it.
	FerryURL string
	// Poll and Retry of the call layer (defaults 1 s, Retry's).
	Poll  time.Duration
	Retry Retry
	// Timeout of one request (default 30 s).
	Timeout time.Duration
	// Now is the clock of the records (default time.Now).
	Now func() time.Time
}

// Provider is the Alibaba Cloud provider as cloud.Registry sees it.
type Provider struct {
	// Stores opens the record store of one cloud account (by its row id).
	Stores func(ctx context.Context, accountID string) (Store, error)
	// Tickets mints the one-time tokens of gateway registrations and
	// repair reports.
	Tickets Tickets
	// CallbackURL is where instances call back: the control plane's public
	// URL followed by the prefix Handler is mounted at
	// ("https://ferry.example.com/cloud/v1/alibaba").
	CallbackURL string
	// RevocationsURL is the control plane's revocation feed
	// (engine.RevocationsPath under the public URL), handed to a gateway
	// when it registers: it long-polls it with its bearer and refuses the
	// sync credentials of revoked agents.
	RevocationsURL string
	Options        Options

	mu      sync.Mutex
	drivers map[string]*Driver
}

var _ cloud.Provider = (*Provider)(nil)

// Name implements cloud.Provider.
func (p *Provider) Name() string { return "alibaba" }

// Account settings (cloud.Account.Settings) the provider reads.
const (
	// SettingEndpoint replaces the region's ECS endpoint: "host:port", or
	// "http://host:port" for an emulator without TLS.
	SettingEndpoint = "endpoint"
	// SettingVSwitch is the vSwitch (in the customer's VPC) the gateway,
	// repair and launched instances go in.
	SettingVSwitch = "vswitch_id"
	// SettingSourceCIDRs lists (comma-separated) the networks the source
	// hosts' agents connect from: the gateway's security group admits only
	// them, on the sync port.
	SettingSourceCIDRs = "source_cidrs"
	// SettingControlCIDRs lists the networks the control plane reads the
	// gateway from (also admitted on the sync port).
	SettingControlCIDRs = "control_cidrs"
	// SettingRoleARN makes every call with a session of that RAM role.
	SettingRoleARN = "role_arn"
	// SettingGatewayImage, SettingGatewayType, SettingLaunchType,
	// SettingDiskCategory override the Options of the same names.
	SettingGatewayImage = "gateway_image"
	SettingGatewayType  = "gateway_type"
	SettingLaunchType   = "launch_type"
	SettingDiskCategory = "disk_category"
	// SettingLaunchFamilies lists (comma-separated, "ecs." optional) the
	// instance families a launch is sized from when the host's assessment
	// names no ECS type (default DefaultLaunchFamilies).
	SettingLaunchFamilies = "launch_families"
	// SettingBootCheck "off" (or "on") overrides Options.BootCheck for the
	// account: off, a launch is not watched to its login prompt and its
	// boot check says it was skipped by this setting.
	SettingBootCheck = "boot_check"
	// SettingBootTimeout overrides Options.BootTimeout ("4m", "90s").
	SettingBootTimeout = "boot_timeout"
)

// settings is an account's Settings, checked.
type settings struct {
	endpoint, scheme, vswitch, roleARN string
	sources, controls                  []string
	gatewayImage, gatewayType          string
	repairImage, repairType            string
	launchType, diskCategory           string
	launchTypeSet                      bool // launch_type is the account's, not the default
	launchFamilies                     []string
	bootCheck                          bool
	bootCheckWhy                       string // why the boot check is off, for the skipped check
	bootTimeout                        time.Duration
}

func (p *Provider) options() Options {
	o := p.Options
	if o.GatewayImage == "" {
		o.GatewayImage = "debian_12_6_x64_20G_alibase_20240819.vhd"
	}
	if o.GatewayType == "" {
		o.GatewayType = "ecs.g7.large"
	}
	if o.RepairImage == "" {
		o.RepairImage = o.GatewayImage
	}
	if o.RepairType == "" {
		o.RepairType = o.GatewayType
	}
	if o.LaunchType == "" {
		o.LaunchType = "ecs.g7.large"
	}
	if o.DiskCategory == "" {
		o.DiskCategory = "cloud_essd"
	}
	if o.SyncPort == 0 {
		o.SyncPort = 8443
	}
	if o.GatewayTimeout == 0 {
		o.GatewayTimeout = 10 * time.Minute
	}
	if o.RepairTimeout == 0 {
		o.RepairTimeout = 30 * time.Minute
	}
	if o.BootTimeout == 0 {
		o.BootTimeout = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func splitCIDRs(v, name string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, err := netip.ParsePrefix(s); err != nil {
			return nil, fmt.Errorf("setting %s: %q is not a CIDR (like 10.1.0.0/16): %w", name, s, cloud.ErrInvalid)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSettings(a cloud.Account, o Options) (settings, error) {
	st := settings{scheme: "https", vswitch: a.Settings[SettingVSwitch], roleARN: a.Settings[SettingRoleARN],
		gatewayImage: o.GatewayImage, gatewayType: o.GatewayType, repairImage: o.RepairImage, repairType: o.RepairType,
		launchType: o.LaunchType, diskCategory: o.DiskCategory, launchTypeSet: a.Settings[SettingLaunchType] != "",
		launchFamilies: DefaultLaunchFamilies, bootCheck: o.BootCheck, bootTimeout: o.BootTimeout}
	if !o.BootCheck {
		st.bootCheckWhy = "the provider's BootCheck option is off"
	}
	for k, dst := range map[string]*string{SettingGatewayImage: &st.gatewayImage, SettingGatewayType: &st.gatewayType,
		SettingLaunchType: &st.launchType, SettingDiskCategory: &st.diskCategory} {
		if v := a.Settings[k]; v != "" {
			*dst = v
		}
	}
	if ep := a.Settings[SettingEndpoint]; ep != "" {
		switch {
		case strings.HasPrefix(ep, "http://"):
			st.endpoint, st.scheme = strings.TrimPrefix(ep, "http://"), "http"
		case strings.HasPrefix(ep, "https://"):
			st.endpoint = strings.TrimPrefix(ep, "https://")
		default:
			st.endpoint = ep
		}
		st.endpoint = strings.TrimRight(st.endpoint, "/")
	}
	var err error
	if v := a.Settings[SettingLaunchFamilies]; strings.TrimSpace(v) != "" {
		if st.launchFamilies, err = parseFamilies(v); err != nil {
			return st, err
		}
	}
	switch v := strings.ToLower(strings.TrimSpace(a.Settings[SettingBootCheck])); v {
	case "":
	case "on", "true", "yes", "1":
		st.bootCheck, st.bootCheckWhy = true, ""
	case "off", "false", "no", "0":
		st.bootCheck, st.bootCheckWhy = false, "the account's setting "+SettingBootCheck+"=off"
	default:
		return st, fmt.Errorf("setting %s: %q: want on or off: %w", SettingBootCheck, a.Settings[SettingBootCheck], cloud.ErrInvalid)
	}
	if v := strings.TrimSpace(a.Settings[SettingBootTimeout]); v != "" {
		t, err := time.ParseDuration(v)
		if err != nil || t < 10*time.Second || t > 2*time.Hour {
			return st, fmt.Errorf("setting %s: %q: want a duration from 10s to 2h (like 10m): %w", SettingBootTimeout, v, cloud.ErrInvalid)
		}
		st.bootTimeout = t
	}
	if st.sources, err = splitCIDRs(a.Settings[SettingSourceCIDRs], SettingSourceCIDRs); err != nil {
		return st, err
	}
	if st.controls, err = splitCIDRs(a.Settings[SettingControlCIDRs], SettingControlCIDRs); err != nil {
		return st, err
	}
	if st.vswitch != "" && !strings.HasPrefix(st.vswitch, "vsw-") {
		return st, fmt.Errorf("setting %s: %q is not a vSwitch id (vsw-…): %w", SettingVSwitch, st.vswitch, cloud.ErrInvalid)
	}
	return st, nil
}

func (p *Provider) client(a cloud.Account, st settings, o Options) (*Client, error) {
	if a.Region == "" {
		return nil, fmt.Errorf("cloud account %q: a region is required (cn-hangzhou, …): %w", a.Name, cloud.ErrInvalid)
	}
	return New(Config{Region: a.Region, Endpoint: st.endpoint, Scheme: st.scheme, Poll: o.Poll, Retry: o.Retry, Timeout: o.Timeout,
		Credentials: Credentials{AccessKeyID: a.AccessKeyID, AccessKeySecret: string(a.Secret), RoleARN: st.roleARN}})
}

// Open implements cloud.Provider. The Driver keeps no state of its own:
// its records are in the account's Store and its resources in ECS, so a
// Driver opened in any process carries on where another left off.
func (p *Provider) Open(ctx context.Context, a cloud.Account) (cloud.Driver, error) {
	return p.Driver(ctx, a)
}

// Driver is Open with the concrete type.
func (p *Provider) Driver(ctx context.Context, a cloud.Account) (*Driver, error) {
	o := p.options()
	st, err := parseSettings(a, o)
	if err != nil {
		return nil, err
	}
	if p.Stores == nil {
		return nil, fmt.Errorf("alibaba provider: no record store is wired: %w", cloud.ErrUnsupported)
	}
	// One Driver per account and credentials, so the SDK clients' pool is
	// shared by the migrations of the account.
	sum := sha256.New()
	fmt.Fprintf(sum, "%s\x00%s\x00%s\x00%s\x00", a.ID, a.Region, a.AccessKeyID, a.Secret)
	keys := make([]string, 0, len(a.Settings))
	for k := range a.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(sum, "%s=%s\x00", k, a.Settings[k])
	}
	cacheKey := hex.EncodeToString(sum.Sum(nil))
	p.mu.Lock()
	defer p.mu.Unlock()
	if d, ok := p.drivers[cacheKey]; ok {
		return d, nil
	}
	c, err := p.client(a, st, o)
	if err != nil {
		return nil, err
	}
	store, err := p.Stores(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	d := &Driver{p: p, acct: a, c: c, st: store, set: st, opt: o}
	if p.drivers == nil {
		p.drivers = map[string]*Driver{}
	}
	p.drivers[cacheKey] = d
	return d, nil
}

// Check implements cloud.Provider: the settings, then the key's
// permissions (CheckPermissions: every action the driver calls, asked
// harmlessly), then that the vSwitch exists. It makes nothing.
func (p *Provider) Check(ctx context.Context, a cloud.Account) []cloud.Check {
	o := p.options()
	st, err := parseSettings(a, o)
	if err != nil {
		return []cloud.Check{{Name: "settings", Message: err.Error()}}
	}
	c, err := p.client(a, st, o)
	if err != nil {
		return []cloud.Check{{Name: "settings", Message: err.Error()}}
	}
	res := c.CheckPermissions(ctx)
	out := res.Checks()
	if res.Credentials != nil {
		return out
	}
	sw := cloud.Check{Name: "network"}
	switch {
	case st.vswitch == "":
		sw.Message = "no vSwitch is set (" + SettingVSwitch + "): the gateway and launches need one in the target VPC"
	default:
		v, err := c.VSwitch(ctx, st.vswitch)
		if err != nil {
			sw.Message = fmt.Sprintf("vSwitch %s: %v", st.vswitch, err)
		} else {
			sw.Passed, sw.Message = true, fmt.Sprintf("vSwitch %s in VPC %s, zone %s (%s)", v.ID, v.VpcID, v.ZoneID, v.CIDR)
		}
	}
	src := cloud.Check{Name: "source networks"}
	if len(st.sources) == 0 {
		src.Message = "no source networks are set (" + SettingSourceCIDRs + "): the gateway's security group would admit no agent"
	} else {
		src.Passed, src.Message = true, "the gateway admits "+strings.Join(st.sources, ", ")+fmt.Sprintf(" on port %d", o.SyncPort)
	}
	cb := cloud.Check{Name: "callbacks"}
	if p.CallbackURL == "" || p.Tickets == nil {
		cb.Message = "the control plane has no public URL for instances to register at (FERRY_PUBLIC_URL)"
	} else {
		cb.Passed, cb.Message = true, "gateways register at "+p.CallbackURL
	}
	boot := cloud.Check{Name: "launch boot check", Passed: true}
	if st.bootCheck {
		boot.Message = fmt.Sprintf("a launched instance must reach a login prompt on its serial console within %s (%s)", st.bootTimeout, SettingBootTimeout)
	} else {
		boot.Skipped = true
		boot.Message = "off (" + st.bootCheckWhy + "): a launch is reported healthy without its boot being watched"
	}
	return append(out, sw, src, cb, boot)
}

// Driver is one Alibaba Cloud account as engine/cloud sees it.
type Driver struct {
	p    *Provider
	acct cloud.Account
	c    *Client
	st   Store
	set  settings
	opt  Options
}

var _ cloud.Driver = (*Driver)(nil)

// Name implements cloud.Driver.
func (d *Driver) Name() string { return "alibaba" }

// Client is the driver's call layer (for tests and tools).
func (d *Driver) Client() *Client { return d.c }

// Capabilities implements cloud.Driver.
func (d *Driver) Capabilities() cloud.Capabilities {
	return cloud.Capabilities{MaxDisksPerMachine: 17, BootModes: []cloud.BootMode{cloud.BootBIOS, cloud.BootUEFI},
		Boots: true, GatewayInProcess: false, PointMethod: "snapshot"}
}

var (
	idRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	familyRE = regexp.MustCompile(`^ecs\.[a-z0-9][a-z0-9-]{0,30}$`)
)

func checkID(kind, id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("%s id %q: use 1–128 letters, digits, '.', '_' and '-': %w", kind, id, cloud.ErrInvalid)
	}
	return nil
}

// token is a ClientToken for one step on one object: the account, and
// parts naming the object's incarnation and the step.
func (d *Driver) token(parts ...string) string {
	h := sha256.New()
	h.Write([]byte(d.acct.ID))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return "ferry-" + hex.EncodeToString(h.Sum(nil))[:40]
}

// Tags Ferry puts on every resource it makes, so that Teardown finds what a
// lost record would hide, and people see what is whose in the console.
const (
	tagMigration = "ferry:migration"
	tagRole      = "ferry:role"
	tagObject    = "ferry:object"
)

func (d *Driver) tags(migration, role, object string) map[string]string {
	t := map[string]string{tagRole: role, tagObject: object}
	if migration != "" {
		t[tagMigration] = migration
	} else {
		t[tagMigration] = "none"
	}
	return t
}

func (d *Driver) now() time.Time { return d.opt.Now().UTC() }

// vswitch returns the account's vSwitch. Errors: ErrInvalid when none is
// set.
func (d *Driver) vswitch(ctx context.Context) (VSwitch, error) {
	if d.set.vswitch == "" {
		return VSwitch{}, fmt.Errorf("cloud account %q has no vSwitch (setting %s): %w", d.acct.Name, SettingVSwitch, cloud.ErrInvalid)
	}
	return d.c.VSwitch(ctx, d.set.vswitch)
}
