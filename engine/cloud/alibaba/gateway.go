package alibaba

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud"
)

// gatewayRec is a migration's gateway: an ECS instance in the account's
// vSwitch running `ferry gateway`, its security group, and what the gateway
// told the control plane when it registered.
type gatewayRec struct {
	MigrationID   string            `json:"migration_id"`
	Nonce         string            `json:"nonce"`
	SecurityGroup string            `json:"security_group,omitempty"`
	Instance      string            `json:"instance,omitempty"`
	PrivateIP     string            `json:"private_ip,omitempty"`
	Disks         map[string]string `json:"disks"` // Ferry disk id → ECS disk id, attached
	CreatedAt     time.Time         `json:"created_at"`
}

// registration is what the gateway told the control plane. Only the
// callback handler writes it (its own key, so the driver's updates of the
// gateway's record cannot overwrite it).
type registration struct {
	Fingerprint   string    `json:"fingerprint"`
	CredentialKey []byte    `json:"credential_key"` // the gateway's, for issuing sync credentials
	Port          int       `json:"port"`
	BearerSum     string    `json:"bearer_sum"` // SHA-256 of the gateway's bearer for its later calls
	At            time.Time `json:"at"`
}

func registrationKey(mid, nonce string) string { return "registration/" + migKey(mid) + "/" + nonce }

func migKey(mid string) string {
	if mid == "" {
		return "_"
	}
	return mid
}

func gatewayKey(mid string) string { return "gateway/" + migKey(mid) }

// gatewayTicketKey is what the registration ticket is minted for: the
// gateway's incarnation, so a ticket of a gateway since deleted cannot
// register its successor.
func gatewayTicketKey(mid, nonce string) string { return gatewayKey(mid) + "/" + nonce }

func gatewayURL(ip string, port int) string { return fmt.Sprintf("https://%s:%d", ip, port) }

// ensureGateway makes (or finds) the migration's gateway: its security
// group admitting the source and control networks on the sync port only,
// and the instance, whose user data starts `ferry gateway` with a one-time
// registration ticket. It returns once the instance runs.
func (d *Driver) ensureGateway(ctx context.Context, mid string) (gatewayRec, error) {
	var g gatewayRec
	err := getJSON(ctx, d.st, gatewayKey(mid), &g)
	if errors.Is(err, cloud.ErrNotFound) {
		g = gatewayRec{MigrationID: mid, Nonce: newNonce(), Disks: map[string]string{}, CreatedAt: d.now()}
		err = putJSON(ctx, d.st, gatewayKey(mid), g)
	}
	if err != nil {
		return g, err
	}
	if g.Instance != "" && g.PrivateIP != "" {
		return g, nil
	}
	if len(d.set.sources) == 0 {
		return g, fmt.Errorf("cloud account %q has no source networks (setting %s): the gateway would admit no agent: %w",
			d.acct.Name, SettingSourceCIDRs, cloud.ErrInvalid)
	}
	if d.p.Tickets == nil || d.p.CallbackURL == "" {
		return g, fmt.Errorf("the control plane has no public URL for gateways to register at: %w", cloud.ErrUnsupported)
	}
	sw, err := d.vswitch(ctx)
	if err != nil {
		return g, err
	}
	name := "ferry-gateway-" + migKey(mid)
	if g.SecurityGroup == "" {
		g.SecurityGroup, err = d.c.CreateSecurityGroup(ctx, SecurityGroupSpec{Token: d.token("gateway-sg", mid, g.Nonce), Name: name,
			Description: "Ferry replication gateway: the sync port from the source networks only", VpcID: sw.VpcID,
			Tags: d.tags(mid, "gateway", name)})
		if err != nil {
			return g, err
		}
		if err := putJSON(ctx, d.st, gatewayKey(mid), g); err != nil {
			return g, err
		}
	}
	port := fmt.Sprintf("%d/%d", d.opt.SyncPort, d.opt.SyncPort)
	var rules []Rule
	for _, c := range d.set.sources {
		rules = append(rules, Rule{Protocol: "tcp", PortRange: port, SourceCIDR: c, Description: "agents of the source hosts"})
	}
	for _, c := range d.set.controls {
		rules = append(rules, Rule{Protocol: "tcp", PortRange: port, SourceCIDR: c, Description: "the Ferry control plane"})
	}
	if err := d.c.AuthorizeIngress(ctx, g.SecurityGroup, d.token("gateway-rules", mid, g.Nonce), rules); err != nil {
		return g, err
	}
	if g.Instance == "" {
		ticket, err := d.p.Tickets.Mint(ctx, d.acct.ID, gatewayTicketKey(mid, g.Nonce), 24*time.Hour)
		if err != nil {
			return g, err
		}
		ud, err := d.gatewayUserData(mid, ticket)
		if err != nil {
			return g, err
		}
		g.Instance, err = d.c.RunInstance(ctx, InstanceSpec{Token: d.token("gateway", mid, g.Nonce), Name: name, ImageID: d.set.gatewayImage,
			Type: d.set.gatewayType, VSwitchID: sw.ID, SecurityGroups: []string{g.SecurityGroup}, UserData: ud,
			DiskCategory: d.set.diskCategory, Tags: d.tags(mid, "gateway", name)})
		if err != nil {
			return g, err
		}
		if err := putJSON(ctx, d.st, gatewayKey(mid), g); err != nil {
			return g, err
		}
	}
	in, err := d.c.StartInstance(ctx, g.Instance)
	if err != nil {
		return g, err
	}
	g.PrivateIP = in.PrivateIP
	return g, putJSON(ctx, d.st, gatewayKey(mid), g)
}

func shellQuote(s string) (string, error) {
	if strings.ContainsAny(s, "'\n\x00") {
		return "", fmt.Errorf("%q cannot be quoted for the instance's script: %w", s, cloud.ErrInvalid)
	}
	return "'" + s + "'", nil
}

// installFerry is the part of an instance's script that makes sure the
// ferry binary is there.
func (d *Driver) installFerry() (string, error) {
	if d.opt.FerryURL == "" {
		return `if ! command -v ferry >/dev/null 2>&1; then
  echo "ferry is not installed on this image: use an image with it (setting gateway_image) or set the provider's FerryURL" >&2
  exit 1
fi
`, nil
	}
	u, err := shellQuote(d.opt.FerryURL)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`if ! command -v ferry >/dev/null 2>&1; then
  curl -fsSL --retry 20 -o /usr/local/bin/ferry %s
  chmod 0755 /usr/local/bin/ferry
fi
`, u), nil
}

// scriptBasics are what every instance script of the provider starts
// from: the callback URL and the one-time ticket, shell-quoted, and the
// lines that install the ferry binary.
func (d *Driver) scriptBasics(ticket string) (callback, tk, install string, err error) {
	if callback, err = shellQuote(d.p.CallbackURL); err != nil {
		return "", "", "", err
	}
	if tk, err = shellQuote(ticket); err != nil {
		return "", "", "", err
	}
	install, err = d.installFerry()
	return callback, tk, install, err
}

// gatewayUserData is the gateway instance's script. On ECS cloud-init runs
// it; in the emulator ECSEMU_* say where the instance's devices are and
// which address it listens on.
func (d *Driver) gatewayUserData(mid, ticket string) (string, error) {
	cb, tk, inst, err := d.scriptBasics(ticket)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`#!/bin/sh
# The replication gateway of Ferry migration %s, written by Ferry's Alibaba
# provider. The instance holds no AccessKey: it registers itself upward with
# a one-time ticket and receives the source's disks on port %d.
set -eu
root="${ECSEMU_DEVICE_ROOT:-}"
data="$root/var/lib/ferry-gateway"
mkdir -p "$data"
%sexec ferry gateway --listen "${ECSEMU_BIND_IP:-0.0.0.0}:%d" --data "$data" --device-root "$root" \
  --register %s --registration-token %s --create=false --grow=false
`, migKey(mid), d.opt.SyncPort, inst, d.opt.SyncPort, cb, tk), nil
}

// PrepareGateway implements cloud.Gateways: the disk is attached to its
// migration's gateway instance (made on the first call) and the endpoint
// is returned once the gateway has registered its certificate's
// fingerprint. Idempotent.
func (d *Driver) PrepareGateway(ctx context.Context, id string) (cloud.GatewayEndpoint, error) {
	r, err := d.diskRec(ctx, id)
	if err != nil {
		return cloud.GatewayEndpoint{}, err
	}
	g, err := d.ensureGateway(ctx, r.MigrationID)
	if err != nil {
		return cloud.GatewayEndpoint{}, fmt.Errorf("gateway of migration %s: %w", migKey(r.MigrationID), err)
	}
	if g.Disks[id] != r.ECS || r.Gateway != g.Instance {
		if _, err := d.c.AttachDisk(ctx, r.ECS, g.Instance); err != nil {
			return cloud.GatewayEndpoint{}, fmt.Errorf("attach disk %s to gateway %s: %w", id, g.Instance, err)
		}
		if err := d.updateGateway(ctx, r.MigrationID, func(g *gatewayRec) { g.Disks[id] = r.ECS }); err != nil {
			return cloud.GatewayEndpoint{}, err
		}
		r.Gateway = g.Instance
		if err := putJSON(ctx, d.st, diskKey(id), r); err != nil {
			return cloud.GatewayEndpoint{}, err
		}
	}
	reg, err := d.waitRegistered(ctx, g)
	if err != nil {
		return cloud.GatewayEndpoint{}, err
	}
	return cloud.GatewayEndpoint{DiskID: id, SizeBytes: r.SizeBytes, URL: gatewayURL(g.PrivateIP, reg.Port), Fingerprint: reg.Fingerprint}, nil
}

// updateGateway re-reads the gateway's record, changes it and writes it
// back (the registration handler writes it too).
func (d *Driver) updateGateway(ctx context.Context, mid string, f func(*gatewayRec)) error {
	var g gatewayRec
	if err := getJSON(ctx, d.st, gatewayKey(mid), &g); err != nil {
		return err
	}
	if g.Disks == nil {
		g.Disks = map[string]string{}
	}
	f(&g)
	return putJSON(ctx, d.st, gatewayKey(mid), g)
}

// waitRegistered polls until the gateway's registration came.
func (d *Driver) waitRegistered(ctx context.Context, g gatewayRec) (registration, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, d.opt.GatewayTimeout,
		fmt.Errorf("the gateway of migration %s (%s) did not register within %s: see its console (GetInstanceConsoleOutput): %w",
			migKey(g.MigrationID), g.Instance, d.opt.GatewayTimeout, ErrThrottled))
	defer cancel()
	var reg registration
	err := d.c.poll(ctx, func() (bool, error) {
		err := getJSON(ctx, d.st, registrationKey(g.MigrationID, g.Nonce), &reg)
		if errors.Is(err, cloud.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil && ctx.Err() != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
	}
	return reg, err
}

// ReleaseGateway implements cloud.Gateways: the disk is detached from the
// gateway; the last disk's release deletes the gateway instance and its
// security group. Idempotent.
func (d *Driver) ReleaseGateway(ctx context.Context, id string) error {
	r, err := d.diskRec(ctx, id)
	if errors.Is(err, cloud.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.Gateway != "" {
		if err := d.c.DetachDisk(ctx, r.ECS, r.Gateway); err != nil {
			return fmt.Errorf("detach disk %s from its gateway: %w", id, err)
		}
	}
	return d.detachFromGateway(ctx, r)
}

// detachFromGateway forgets that r is attached to its migration's gateway
// and deletes the gateway when no disk is left on it.
func (d *Driver) detachFromGateway(ctx context.Context, r diskRec) error {
	var g gatewayRec
	err := getJSON(ctx, d.st, gatewayKey(r.MigrationID), &g)
	if errors.Is(err, cloud.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, ok := g.Disks[r.ID]; ok {
		if err := d.updateGateway(ctx, r.MigrationID, func(g *gatewayRec) { delete(g.Disks, r.ID) }); err != nil {
			return err
		}
		delete(g.Disks, r.ID)
	}
	if r.Gateway != "" {
		r.Gateway = ""
		if _, err := d.diskRec(ctx, r.ID); err == nil {
			if err := putJSON(ctx, d.st, diskKey(r.ID), r); err != nil {
				return err
			}
		}
	}
	if len(g.Disks) == 0 {
		return d.deleteGateway(ctx, g)
	}
	return nil
}

// deleteGateway removes the gateway instance, its security group and its
// record. Idempotent.
func (d *Driver) deleteGateway(ctx context.Context, g gatewayRec) error {
	if g.Instance != "" {
		if err := d.c.DeleteInstance(ctx, g.Instance); err != nil {
			return fmt.Errorf("delete gateway %s: %w", g.Instance, err)
		}
	}
	if g.SecurityGroup != "" {
		if err := d.c.DeleteSecurityGroup(ctx, g.SecurityGroup); err != nil {
			return fmt.Errorf("delete the gateway's security group %s: %w", g.SecurityGroup, err)
		}
	}
	d.st.Delete(ctx, registrationKey(g.MigrationID, g.Nonce))
	return d.st.Delete(ctx, gatewayKey(g.MigrationID))
}

// GatewayClient returns the control plane's client of the gateway at url
// (the endpoint PrepareGateway returned), with the credential key it
// registered: the migration steps issue sync credentials and read sessions
// through it. Errors: cloud.ErrNotFound (no registered gateway there).
func (d *Driver) GatewayClient(ctx context.Context, url, fingerprint string) (*engine.RemoteGateway, error) {
	return GatewayClient(ctx, d.st, url, fingerprint)
}

// GatewayClient is Driver.GatewayClient over an account's store (no
// credentials needed: the control plane talks to the gateway, not to ECS).
func GatewayClient(ctx context.Context, st Store, url, fingerprint string) (*engine.RemoteGateway, error) {
	gws, err := listJSON[gatewayRec](ctx, st, "gateway/")
	if err != nil {
		return nil, err
	}
	for _, g := range gws {
		var reg registration
		if err := getJSON(ctx, st, registrationKey(g.MigrationID, g.Nonce), &reg); err != nil {
			continue
		}
		if gatewayURL(g.PrivateIP, reg.Port) == url && reg.Fingerprint == fingerprint {
			return engine.NewRemoteGateway(url, fingerprint, engine.CredentialKey(reg.CredentialKey))
		}
	}
	return nil, fmt.Errorf("gateway %s: %w", url, cloud.ErrNotFound)
}
