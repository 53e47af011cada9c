package alibaba

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/health"
)

// A launch on ECS, which cannot boot a data disk (DESIGN §4): the points'
// snapshots become disks attached to a repair instance, which inspects them
// and adapts the guest (the same engine/adapt as the local provider) and
// reports upward; the repaired disks are snapshotted, an image is made of
// the snapshots, and RunInstances boots it. Each phase is recorded before
// the next begins, every create carries a ClientToken derived from the
// machine and its phase, so CreateMachine and Wait called again — in this
// process or another — carry on where the last call stopped.
const (
	phaseDisks    = "disks"    // CreateDisk from each point
	phaseRepair   = "repair"   // the repair instance, the disks attached to it
	phaseAdapting = "adapting" // waiting for the repair's report (CreateMachine returns here)
	phaseImage    = "image"    // detach, snapshot the repaired disks, CreateImage
	phaseBoot     = "boot"     // RunInstances of the image, until Running
	phaseChecks   = "checks"   // the launched instance's checks
	phaseDone     = "done"
)

type machineRec struct {
	cloud.Machine
	Seq           int64    `json:"seq"`
	Nonce         string   `json:"nonce"`
	Phase         string   `json:"phase"`
	SecurityGroup string   `json:"security_group,omitempty"`
	LaunchDisks   []string `json:"launch_disks,omitempty"` // ECS disks made from the points, in order
	Repair        string   `json:"repair,omitempty"`       // the repair instance
	Repaired      []string `json:"repaired,omitempty"`     // snapshots of the repaired disks
	Image         string   `json:"image,omitempty"`
	Instance      string   `json:"instance,omitempty"` // the launched instance
}

func machineKey(id string) string { return "machine/" + id }

func reportKey(id, nonce string) string { return "report/" + id + "/" + nonce }

// machineID is a machine's id, fixed by its token.
func (d *Driver) machineID(token string) string {
	h := sha256.Sum256([]byte(d.acct.ID + "\x00" + token))
	return "fm-" + hex.EncodeToString(h[:10])
}

// usedBy is the first active machine with a disk that matches.
func (d *Driver) usedBy(ctx context.Context, match func(cloud.MachineDisk) bool) (machineRec, bool, error) {
	ms, err := d.machines(ctx)
	if err != nil {
		return machineRec{}, false, err
	}
	for _, m := range ms {
		if m.Uses(match) {
			return m, true, nil
		}
	}
	return machineRec{}, false, nil
}

func (d *Driver) machines(ctx context.Context) ([]machineRec, error) {
	ms, err := listJSON[machineRec](ctx, d.st, "machine/")
	if err != nil {
		return nil, err
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Seq < ms[j].Seq })
	return ms, nil
}

func (d *Driver) put(ctx context.Context, m *machineRec) error {
	return putJSON(ctx, d.st, machineKey(m.ID), m)
}

// CreateMachine implements cloud.Machines: it makes the disks from the
// points and starts the repair instance with them attached, and returns the
// machine in state starting; Wait carries the launch on.
func (d *Driver) CreateMachine(ctx context.Context, spec cloud.MachineSpec) (cloud.Machine, error) {
	if spec.Kind != cloud.LaunchTest && spec.Kind != cloud.LaunchCutover {
		return cloud.Machine{}, fmt.Errorf("launch kind %q: want test or cutover: %w", spec.Kind, cloud.ErrInvalid)
	}
	if err := checkID("machine token", spec.Token); err != nil {
		return cloud.Machine{}, err
	}
	if len(spec.Points) == 0 {
		return cloud.Machine{}, fmt.Errorf("a machine needs the recovery points of its disks: %w", cloud.ErrInvalid)
	}
	if max := d.Capabilities().MaxDisksPerMachine; len(spec.Points) > max {
		return cloud.Machine{}, fmt.Errorf("%d disks: an ECS instance takes %d: %w", len(spec.Points), max, cloud.ErrUnsupported)
	}
	switch spec.BootMode {
	case "", cloud.BootBIOS, cloud.BootUEFI:
	default:
		return cloud.Machine{}, fmt.Errorf("boot mode %q: %w", spec.BootMode, cloud.ErrUnsupported)
	}
	var disks []cloud.MachineDisk
	seen := map[string]bool{}
	mid := spec.MigrationID
	for _, pid := range spec.Points {
		p, err := d.pointRec(ctx, pid)
		if err != nil {
			return cloud.Machine{}, err
		}
		if seen[p.DiskID] {
			return cloud.Machine{}, fmt.Errorf("two points of disk %s: a machine takes one per disk: %w", p.DiskID, cloud.ErrInvalid)
		}
		seen[p.DiskID] = true
		disks = append(disks, cloud.MachineDisk{PointID: pid, SourceDiskID: p.DiskID})
		if mid == "" {
			mid = p.MigrationID
		}
	}
	id := d.machineID(spec.Token)
	var m machineRec
	err := getJSON(ctx, d.st, machineKey(id), &m)
	switch {
	case err == nil:
		if !slices.Equal(pointsOf(m.Disks), spec.Points) {
			return cloud.Machine{}, fmt.Errorf("machine token %q was used with other points: %w", spec.Token, cloud.ErrConflict)
		}
	case errors.Is(err, cloud.ErrNotFound):
		if spec.Kind == cloud.LaunchCutover {
			if err := d.checkCutover(ctx, id, disks); err != nil {
				return cloud.Machine{}, err
			}
		}
		shape, err := d.launchShape(ctx, spec.Shape)
		if err != nil {
			return cloud.Machine{}, err
		}
		m = machineRec{Machine: cloud.Machine{ID: id, Token: spec.Token, Kind: spec.Kind, MigrationID: mid, State: cloud.MachineCreating,
			Disks: disks, Shape: shape, BootMode: spec.BootMode, CreatedAt: d.now(), Stage: phaseDisks},
			Seq: time.Now().UnixNano(), Nonce: newNonce(), Phase: phaseDisks}
		if m.BootMode == "" {
			m.BootMode = cloud.BootBIOS
		}
		if err := d.put(ctx, &m); err != nil {
			return cloud.Machine{}, err
		}
	default:
		return cloud.Machine{}, err
	}
	if err := d.createPhases(ctx, &m); err != nil {
		return m.Machine, err
	}
	return m.Machine, nil
}

func pointsOf(ds []cloud.MachineDisk) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.PointID
	}
	return out
}

// checkCutover holds the cutover rules: each disk's newest point, and no
// other live or launching cutover machine of the same disks.
func (d *Driver) checkCutover(ctx context.Context, id string, disks []cloud.MachineDisk) error {
	for _, md := range disks {
		ps, err := d.ListRecoveryPoints(ctx, md.SourceDiskID)
		if err != nil {
			return err
		}
		if len(ps) == 0 || ps[len(ps)-1].ID != md.PointID {
			return fmt.Errorf("cutover from point %s of disk %s, which is not the disk's newest: %w", md.PointID, md.SourceDiskID, cloud.ErrConflict)
		}
	}
	ms, err := d.machines(ctx)
	if err != nil {
		return err
	}
	for _, o := range ms {
		if o.ID == id || o.Kind != cloud.LaunchCutover || !(o.State == cloud.MachineLive || !o.State.Settled()) {
			continue
		}
		for _, od := range o.Disks {
			for _, md := range disks {
				if od.SourceDiskID == md.SourceDiskID {
					return fmt.Errorf("disk %s already has cutover machine %s (%s): roll it back first: %w", md.SourceDiskID, o.ID, o.State, cloud.ErrConflict)
				}
			}
		}
	}
	return nil
}

// createPhases runs the phases CreateMachine owns.
func (d *Driver) createPhases(ctx context.Context, m *machineRec) error {
	if m.Phase == phaseDisks {
		sw, err := d.vswitch(ctx)
		if err != nil {
			return err
		}
		for len(m.LaunchDisks) < len(m.Disks) {
			i := len(m.LaunchDisks)
			md := m.Disks[i]
			id, err := d.c.CreateDisk(ctx, DiskSpec{Token: d.token("launch-disk", m.ID, m.Nonce, fmt.Sprint(i)),
				Name: fmt.Sprintf("ferry-%s-%d", m.ID, i), ZoneID: sw.ZoneID, SnapshotID: md.PointID, Category: d.set.diskCategory,
				Tags: d.tags(m.MigrationID, "launch", m.ID)})
			if err != nil {
				return fmt.Errorf("machine %s: disk from point %s: %w", m.ID, md.PointID, err)
			}
			m.LaunchDisks = append(m.LaunchDisks, id)
			if err := d.put(ctx, m); err != nil {
				return err
			}
		}
		m.Phase, m.Stage = phaseRepair, phaseRepair
		if err := d.put(ctx, m); err != nil {
			return err
		}
	}
	if m.Phase == phaseRepair {
		if err := d.startRepair(ctx, m); err != nil {
			return fmt.Errorf("machine %s: repair instance: %w", m.ID, err)
		}
		m.Phase, m.State = phaseAdapting, cloud.MachineStarting
		m.Stage = "adapting the disks on repair instance " + m.Repair
		if err := d.put(ctx, m); err != nil {
			return err
		}
	}
	if m.State == cloud.MachineCreating {
		m.State = cloud.MachineStarting
	}
	return nil
}

// startRepair runs the repair instance and attaches the launch disks to it,
// boot disk first.
func (d *Driver) startRepair(ctx context.Context, m *machineRec) error {
	sw, err := d.vswitch(ctx)
	if err != nil {
		return err
	}
	if m.SecurityGroup == "" {
		// The launch's own group, with no ingress rule: a test copy answers
		// nobody while the source still runs.
		m.SecurityGroup, err = d.c.CreateSecurityGroup(ctx, SecurityGroupSpec{Token: d.token("launch-sg", m.ID, m.Nonce),
			Name: "ferry-launch-" + m.ID, Description: "Ferry launch " + m.ID + ": no ingress", VpcID: sw.VpcID,
			Tags: d.tags(m.MigrationID, "launch", m.ID)})
		if err != nil {
			return err
		}
		if err := d.put(ctx, m); err != nil {
			return err
		}
	}
	if m.Repair == "" {
		if d.p.Tickets == nil || d.p.CallbackURL == "" {
			return fmt.Errorf("the control plane has no public URL for repair instances to report to: %w", cloud.ErrUnsupported)
		}
		ticket, err := d.p.Tickets.Mint(ctx, d.acct.ID, machineKey(m.ID)+"/repair/"+m.Nonce, d.opt.RepairTimeout+time.Hour)
		if err != nil {
			return err
		}
		ud, err := d.repairUserData(m, ticket)
		if err != nil {
			return err
		}
		m.Repair, err = d.c.RunInstance(ctx, InstanceSpec{Token: d.token("repair", m.ID, m.Nonce), Name: "ferry-repair-" + m.ID,
			ImageID: d.set.repairImage, Type: d.set.repairType, VSwitchID: sw.ID, SecurityGroups: []string{m.SecurityGroup}, UserData: ud,
			DiskCategory: d.set.diskCategory, Tags: d.tags(m.MigrationID, "repair", m.ID)})
		if err != nil {
			return err
		}
		if err := d.put(ctx, m); err != nil {
			return err
		}
	}
	if _, err := d.c.StartInstance(ctx, m.Repair); err != nil {
		return err
	}
	for _, disk := range m.LaunchDisks {
		if _, err := d.c.AttachDisk(ctx, disk, m.Repair); err != nil {
			return err
		}
	}
	return nil
}

func (d *Driver) repairUserData(m *machineRec, ticket string) (string, error) {
	cb, tk, inst, err := d.scriptBasics(ticket)
	if err != nil {
		return "", err
	}
	var args strings.Builder
	for _, disk := range m.LaunchDisks {
		fmt.Fprintf(&args, " --disk %s", ECSSerial(disk))
	}
	return fmt.Sprintf(`#!/bin/sh
# The repair instance of Ferry launch %s (migration %s): it inspects the
# disks made from the recovery points, adapts the guest to ECS (virtio,
# fstab and boot loader by UUID, DHCP) and reports upward with a one-time
# ticket. It holds no AccessKey.
set -eu
root="${ECSEMU_DEVICE_ROOT:-}"
%sexec ferry repair --device-root "$root" --report %s --token %s --boot-mode %s%s
`, m.ID, migKey(m.MigrationID), inst, cb, tk, m.BootMode, args.String()), nil
}

// Wait implements cloud.Machines: it follows the repair's report, images
// the repaired disks, boots the image and runs the checks.
func (d *Driver) Wait(ctx context.Context, id string) (cloud.Machine, error) {
	m, err := d.machineRec(ctx, id)
	if err != nil {
		return cloud.Machine{}, err
	}
	switch m.Phase {
	case phaseDisks, phaseRepair:
		return m.Machine, fmt.Errorf("machine %s is still being created (%s): call CreateMachine again: %w", id, m.Phase, cloud.ErrConflict)
	case phaseDone:
		return m.Machine, nil
	}
	if m.State.Settled() {
		return m.Machine, nil
	}
	for m.Phase != phaseDone {
		var err error
		switch m.Phase {
		case phaseAdapting:
			err = d.awaitRepair(ctx, &m)
		case phaseImage:
			err = d.makeImage(ctx, &m)
		case phaseBoot:
			err = d.boot(ctx, &m)
		case phaseChecks:
			err = d.runChecks(ctx, &m)
		default:
			return m.Machine, fmt.Errorf("machine %s: unknown phase %q", id, m.Phase)
		}
		if err != nil {
			return m.Machine, fmt.Errorf("machine %s (%s): %w", id, m.Phase, err)
		}
	}
	return m.Machine, nil
}

func (d *Driver) awaitRepair(ctx context.Context, m *machineRec) error {
	wctx, cancel := context.WithTimeout(ctx, d.opt.RepairTimeout)
	defer cancel()
	var rep RepairReport
	err := d.c.poll(wctx, func() (bool, error) {
		err := getJSON(wctx, d.st, reportKey(m.ID, m.Nonce), &rep)
		if errors.Is(err, cloud.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		// The repair never reported: a failed launch, not a retry.
		console, _ := d.c.ConsoleOutput(ctx, m.Repair)
		rep = RepairReport{Error: fmt.Sprintf("the repair instance %s did not report within %s; its console ends:\n%s", m.Repair, d.opt.RepairTimeout, tailLines(console, 20))}
	} else if err != nil {
		return err
	}
	bySerial := map[string]string{}
	for i, disk := range m.LaunchDisks {
		bySerial[ECSSerial(disk)] = m.Disks[i].SourceDiskID
	}
	m.Checks = nil
	for _, c := range rep.Checks {
		if c.Disk != "" {
			c.Disk = bySerial[c.Disk]
		}
		m.Checks = append(m.Checks, c)
	}
	if rep.Error != "" {
		m.Checks = append(m.Checks, cloud.Check{Name: "adaptation", Message: rep.Error})
	}
	if !m.Passed() {
		m.State, m.Phase, m.Stage = cloud.MachineFailed, phaseDone, "the repair found the disks unfit to boot"
		if err := d.put(ctx, m); err != nil {
			return err
		}
		return d.releaseFailed(ctx, m)
	}
	m.Phase, m.Stage = phaseImage, "imaging the repaired disks"
	return d.put(ctx, m)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// makeImage detaches the repaired disks, deletes the repair instance,
// snapshots the disks and makes an image of the snapshots, then deletes
// the disks (the snapshots hold their bytes).
func (d *Driver) makeImage(ctx context.Context, m *machineRec) error {
	for _, disk := range m.LaunchDisks {
		if err := d.c.DetachDisk(ctx, disk, m.Repair); err != nil {
			return err
		}
	}
	if err := d.c.DeleteInstance(ctx, m.Repair); err != nil {
		return err
	}
	for len(m.Repaired) < len(m.LaunchDisks) {
		i := len(m.Repaired)
		id, err := d.c.CreateSnapshot(ctx, SnapshotSpec{Token: d.token("repaired", m.ID, m.Nonce, fmt.Sprint(i)), DiskID: m.LaunchDisks[i],
			Name: fmt.Sprintf("ferry-%s-%d", m.ID, i), Description: "Ferry launch " + m.ID + ": a repaired disk",
			Tags: d.tags(m.MigrationID, "launch", m.ID)})
		if err != nil {
			return err
		}
		if _, err := d.c.WaitSnapshot(ctx, id, nil); err != nil {
			return err
		}
		m.Repaired = append(m.Repaired, id)
		if err := d.put(ctx, m); err != nil {
			return err
		}
	}
	if m.Image == "" {
		mode := "BIOS"
		if m.BootMode == cloud.BootUEFI {
			mode = "UEFI"
		}
		id, err := d.c.CreateImage(ctx, ImageSpec{Token: d.token("image", m.ID, m.Nonce), Name: "ferry-" + m.ID, Snapshots: m.Repaired,
			Platform: "Others Linux", BootMode: mode, Tags: d.tags(m.MigrationID, "launch", m.ID)})
		if err != nil {
			return err
		}
		m.Image = id
		if err := d.put(ctx, m); err != nil {
			return err
		}
	}
	if _, err := d.c.WaitImage(ctx, m.Image); err != nil {
		return err
	}
	for _, disk := range m.LaunchDisks {
		if err := d.deleteECSDisk(ctx, disk); err != nil {
			return err
		}
	}
	m.Phase, m.Stage = phaseBoot, "RunInstances of image "+m.Image
	return d.put(ctx, m)
}

func (d *Driver) boot(ctx context.Context, m *machineRec) error {
	sw, err := d.vswitch(ctx)
	if err != nil {
		return err
	}
	typ := m.Shape.InstanceType
	if typ == "" {
		typ = d.set.launchType
	}
	if m.Instance == "" {
		id, err := d.c.RunInstance(ctx, InstanceSpec{Token: d.token("launch", m.ID, m.Nonce), Name: fmt.Sprintf("ferry-%s-%s", m.Kind, migKey(m.MigrationID)),
			ImageID: m.Image, Type: typ, VSwitchID: sw.ID, SecurityGroups: []string{m.SecurityGroup}, DiskCategory: d.set.diskCategory,
			Tags: d.tags(m.MigrationID, "launched", m.ID)})
		if err != nil {
			return err
		}
		m.Instance = id
		if err := d.put(ctx, m); err != nil {
			return err
		}
	}
	if _, err := d.c.StartInstance(ctx, m.Instance); err != nil {
		return err
	}
	eds, err := d.c.Disks(ctx, Filter{InstanceID: m.Instance})
	if err != nil {
		return err
	}
	sort.Slice(eds, func(i, j int) bool {
		if (eds[i].Type == "system") != (eds[j].Type == "system") {
			return eds[i].Type == "system"
		}
		return eds[i].Device < eds[j].Device
	})
	if len(eds) != len(m.Disks) {
		return fmt.Errorf("instance %s has %d disks, the launch %d", m.Instance, len(eds), len(m.Disks))
	}
	for i, ed := range eds {
		p, err := d.pointRec(ctx, m.Disks[i].PointID)
		if err != nil {
			return err
		}
		m.Disks[i].DiskID = ed.ID
		if err := putJSON(ctx, d.st, diskKey(ed.ID), diskRec{ID: ed.ID, ECS: ed.ID, SizeBytes: p.SizeBytes, MigrationID: m.MigrationID,
			CreatedAt: d.now(), LaunchedBy: m.ID}); err != nil {
			return err
		}
	}
	// The image and the repaired disks' snapshots were only the way to an
	// instance: it runs on disks of its own now.
	if err := d.dropImage(ctx, m); err != nil {
		return err
	}
	m.Phase, m.Stage = phaseChecks, "checking instance "+m.Instance
	return d.put(ctx, m)
}

// dropImage deletes the machine's image and the snapshots of its repaired
// disks it was made from: they are only the way to an instance, which runs
// on disks of its own.
func (d *Driver) dropImage(ctx context.Context, m *machineRec) error {
	if m.Image != "" {
		if err := d.c.DeleteImage(ctx, m.Image); err != nil {
			return err
		}
		m.Image = ""
	}
	for _, s := range m.Repaired {
		if err := d.c.DeleteSnapshot(ctx, s); err != nil {
			return err
		}
	}
	m.Repaired = nil
	return nil
}

func (d *Driver) runChecks(ctx context.Context, m *machineRec) error {
	in, err := d.c.Instance(ctx, m.Instance)
	if err != nil {
		return err
	}
	inst := cloud.Check{Name: "instance", Passed: in.Status == "Running",
		Message: fmt.Sprintf("%s (%s, image %s) is %s at %s", in.ID, in.Type, in.ImageID, in.Status, in.PrivateIP)}
	if want := m.Shape.InstanceType; want != "" && !strings.EqualFold(in.Type, want) {
		inst.Passed = false
		inst.Message += fmt.Sprintf("; the launch asked for %s", want)
	}
	checks := []cloud.Check{inst}
	if d.set.bootCheck {
		c, console := d.bootCheck(ctx, in.ID)
		checks = append(checks, c)
		m.Console = tailBytes(console, maxConsole)
	} else {
		checks = append(checks, cloud.Check{Name: "boot", Passed: true, Skipped: true,
			Message: "the instance's console was not watched for a login prompt (" + d.set.bootCheckWhy + ")"})
	}
	m.Checks = append(m.Checks, checks...)
	m.State = cloud.MachineRunning
	if m.Kind == cloud.LaunchCutover {
		m.State = cloud.MachineLive
	}
	if !m.Passed() {
		m.State = cloud.MachineFailed
	}
	m.Phase, m.Stage = phaseDone, ""
	if err := d.put(ctx, m); err != nil {
		return err
	}
	if m.State == cloud.MachineFailed {
		return d.releaseFailed(ctx, m)
	}
	return nil
}

// releaseFailed deletes what a failed machine runs on: as on the local
// cloud, a failed launch keeps its verdict and its console, not its
// instances and disks, which ECS would bill for nothing. The verdict is
// recorded before: a release that fails here is done by Terminate,
// Rollback or the migration's Teardown.
func (d *Driver) releaseFailed(ctx context.Context, m *machineRec) error {
	why := m.Stage
	if why == "" {
		why = "failed"
	}
	if err := d.cleanup(ctx, m); err != nil {
		m.Stage = why + "; releasing its resources failed (Terminate or Teardown releases them): " + err.Error()
		return d.put(ctx, m)
	}
	for i := range m.Disks {
		m.Disks[i].DiskID = ""
	}
	m.Stage = why + "; its instances and disks were released"
	return d.put(ctx, m)
}

// maxConsole bounds the console excerpt kept on the machine.
const maxConsole = 6000

func tailBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	for len(s) > 0 && !utf8.RuneStart(s[0]) {
		s = s[1:]
	}
	return s
}

// bootCheck reads the instance's serial console (GetInstanceConsoleOutput)
// until the patterns of the local launches' console check (engine/health:
// a login prompt or the multi-user target; a firmware, GRUB, kernel,
// initramfs or emergency-mode failure) show, within BootTimeout.
func (d *Driver) bootCheck(ctx context.Context, id string) (cloud.Check, string) {
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, d.set.bootTimeout)
	defer cancel()
	var out, ready, why string
	err := d.c.poll(wctx, func() (bool, error) {
		s, err := d.c.ConsoleOutput(wctx, id)
		if err != nil {
			return false, err
		}
		out = s
		if loc := health.DefaultReady.FindStringIndex(s); loc != nil {
			ready = strings.TrimSpace(s[loc[0]:loc[1]])
			return true, nil
		}
		for _, f := range health.DefaultFailures {
			if loc := f.Pattern.FindStringIndex(s); loc != nil {
				why = fmt.Sprintf("%s: %q", f.Why, strings.TrimSpace(s[loc[0]:loc[1]]))
				return true, nil
			}
		}
		return false, nil
	})
	took := time.Since(start).Round(time.Second)
	switch {
	case ready != "":
		return cloud.Check{Name: "boot", Passed: true, Duration: took, Message: fmt.Sprintf("the serial console reached %q after %s", ready, took)}, out
	case why != "":
		return cloud.Check{Name: "boot", Duration: took, Message: fmt.Sprintf("%s (after %s); the console ends:\n%s", why, took, tailLines(out, 15))}, out
	}
	if strings.TrimSpace(out) == "" {
		return cloud.Check{Name: "boot", Duration: took, Message: fmt.Sprintf("no login prompt on the console within %s (%v): the serial console stayed empty — "+
			"the disk has no boot loader the firmware could start, or the guest does not write to ttyS0 (console=ttyS0 on its kernel command line)", d.set.bootTimeout, err)}, out
	}
	return cloud.Check{Name: "boot", Duration: took, Message: fmt.Sprintf("no login prompt on the console within %s (%v); it ends:\n%s", d.set.bootTimeout, err, tailLines(out, 15))}, out
}

func (d *Driver) machineRec(ctx context.Context, id string) (machineRec, error) {
	if err := checkID("machine", id); err != nil {
		return machineRec{}, err
	}
	var m machineRec
	if err := getJSON(ctx, d.st, machineKey(id), &m); err != nil {
		if errors.Is(err, cloud.ErrNotFound) {
			return m, fmt.Errorf("machine %q: %w", id, cloud.ErrNotFound)
		}
		return m, err
	}
	return m, nil
}

// Machine implements cloud.Machines.
func (d *Driver) Machine(ctx context.Context, id string) (cloud.Machine, error) {
	m, err := d.machineRec(ctx, id)
	return m.Machine, err
}

// ListMachines implements cloud.Machines.
func (d *Driver) ListMachines(ctx context.Context, migrationID string) ([]cloud.Machine, error) {
	ms, err := d.machines(ctx)
	if err != nil {
		return nil, err
	}
	var out []cloud.Machine
	for _, m := range ms {
		if m.MigrationID == migrationID {
			out = append(out, m.Machine)
		}
	}
	return out, nil
}

// Terminate implements cloud.Machines. Errors: ErrConflict for a live
// machine (Rollback it).
func (d *Driver) Terminate(ctx context.Context, id string) error {
	m, err := d.machineRec(ctx, id)
	if err != nil {
		return err
	}
	if m.State == cloud.MachineLive {
		return fmt.Errorf("machine %s is live: roll it back instead: %w", id, cloud.ErrConflict)
	}
	return d.discard(ctx, &m, cloud.MachineTerminated)
}

// Rollback implements cloud.Machines.
func (d *Driver) Rollback(ctx context.Context, id string) error {
	m, err := d.machineRec(ctx, id)
	if err != nil {
		return err
	}
	return d.discard(ctx, &m, cloud.MachineRolledBack)
}

// discard removes everything the machine made and records it as state
// (a machine already discarded keeps its state).
func (d *Driver) discard(ctx context.Context, m *machineRec, state cloud.MachineState) error {
	if !m.State.Active() && m.Phase == phaseDone && m.Instance == "" && m.Repair == "" && len(m.LaunchDisks) == 0 {
		return nil
	}
	if err := d.cleanup(ctx, m); err != nil {
		return err
	}
	if m.State.Active() {
		m.State = state
	}
	m.Phase, m.Stage = phaseDone, ""
	for i := range m.Disks {
		m.Disks[i].DiskID = ""
	}
	return d.put(ctx, m)
}

// cleanup deletes the machine's instances, disks, image, snapshots and
// security group, and forgets them. Idempotent.
func (d *Driver) cleanup(ctx context.Context, m *machineRec) error {
	for _, inst := range []*string{&m.Instance, &m.Repair} {
		if *inst != "" {
			if err := d.c.DeleteInstance(ctx, *inst); err != nil {
				return err
			}
			*inst = ""
			if err := d.put(ctx, m); err != nil {
				return err
			}
		}
	}
	for _, md := range m.Disks {
		if md.DiskID != "" {
			if err := d.deleteECSDisk(ctx, md.DiskID); err != nil {
				return err
			}
			d.st.Delete(ctx, diskKey(md.DiskID))
		}
	}
	for _, disk := range m.LaunchDisks {
		if err := d.deleteECSDisk(ctx, disk); err != nil {
			return err
		}
	}
	m.LaunchDisks = nil
	if err := d.dropImage(ctx, m); err != nil {
		return err
	}
	if m.SecurityGroup != "" {
		if err := d.c.DeleteSecurityGroup(ctx, m.SecurityGroup); err != nil {
			return err
		}
		m.SecurityGroup = ""
	}
	d.st.Delete(ctx, reportKey(m.ID, m.Nonce))
	return d.put(ctx, m)
}
