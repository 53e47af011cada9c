package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/engine/adapt"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/health"
	"github.com/ferry-migrate/ferry/engine/vm"
)

// VMOptions make the local cloud's launches real boots (issue 16): each
// machine is a qemu VM (engine/vm) whose virtio disks are qcow2 overlays of
// the machine's materialised disks — so neither the recovery point nor the
// materialised copy is ever written — adapted to virtio and DHCP
// (engine/adapt) before the first boot, and checked by the serial console,
// the source's listening ports and the agent phoning home (engine/health).
// Test launches run on an isolated network, cutovers on the target network.
type VMOptions struct {
	// Qemu and QemuImg are the programs (default from PATH).
	Qemu, QemuImg string
	// Probe is the kernel the KVM probe boots; zero: always TCG.
	Probe vm.Probe
	// AccelCache is where the probe's verdict is kept (default under the
	// VM state directory).
	AccelCache string
	// BootTimeout bounds a boot until every check passed; default 4
	// minutes (a TCG boot takes 15 s idle and a minute on a loaded machine).
	BootTimeout time.Duration
	// MaxVCPUs and MaxMemoryMiB cap the assessment's size: the local cloud
	// is one machine. Defaults 2 and 2048; the cap is recorded on the
	// machine's "shape" check.
	MaxVCPUs     int
	MaxMemoryMiB int64
	// AgentForwards let the agent inside the copy reach the control plane
	// (an address in the launch network relayed to the agent endpoint),
	// even on the isolated network.
	AgentForwards []vm.GuestForward
	// AgentPhoned is the agent check: evidence and true once the agent in
	// machine m phoned home since the boot started. Nil: the check is
	// reported skipped (no agent endpoint is wired for launches).
	AgentPhoned func(ctx context.Context, m cloud.Machine, since time.Time) (string, bool, error)
	// NetworkCIDR is the launch network (default 10.0.2.0/24); the
	// adaptation makes the guest's network DHCP on it.
	NetworkCIDR string
}

func newVMHost(dir string, o VMOptions) (*vm.Host, error) {
	h, err := vm.NewHost(dir, vm.Options{Qemu: o.Qemu, QemuImg: o.QemuImg, Probe: o.Probe, AccelCache: o.AccelCache})
	if err != nil {
		return nil, fmt.Errorf("local cloud: %w", err)
	}
	return h, nil
}

// Launch stages recorded in Machine.Stage while the machine is starting.
const (
	stageAdapted = "adapted" // the VM exists with adapted overlays; next: boot
)

// VMHost is the qemu host the machines run on (nil without VMOptions), for
// tests that check nothing is left running.
func (d *Driver) VMHost() *vm.Host { return d.vms }

var _ cloud.LaunchStages = (*Driver)(nil)

// AdaptMachine implements cloud.LaunchStages. Without VMOptions nothing is
// adapted (nothing boots) and the machine is returned as it is.
func (d *Driver) AdaptMachine(ctx context.Context, id string) (cloud.Machine, error) {
	m, unlock, err := d.createdMachine(ctx, "adapt", id)
	if err != nil {
		return cloud.Machine{}, err
	}
	defer unlock()
	if m.State.Settled() || d.vms == nil || m.Stage == stageAdapted {
		return m, nil
	}
	return d.adaptMachine(ctx, m)
}

// BootMachine implements cloud.LaunchStages; without VMOptions it is Wait.
func (d *Driver) BootMachine(ctx context.Context, id string) (cloud.Machine, error) {
	return d.Wait(ctx, id)
}

// adaptMachine checks the materialised disks, makes the VM (its overlays)
// afresh and adapts the overlays. A failure settles the machine as failed
// with the check that says which step and file; the VM is deleted then.
// Caller holds the machine's lock.
func (d *Driver) adaptMachine(ctx context.Context, m cloud.Machine) (cloud.Machine, error) {
	checks, paths, err := d.materialChecks(m)
	if err != nil {
		return cloud.Machine{}, fmt.Errorf("adapt machine %s: %w", m.ID, err)
	}
	m.Checks = checks
	if !m.Passed() {
		return d.settle(ctx, m)
	}
	// An earlier try (a crash) may have left the VM half-made or adapted:
	// start again from fresh overlays; the adaptation is deterministic.
	if err := d.deleteVM(ctx, m.ID); err != nil {
		return cloud.Machine{}, fmt.Errorf("adapt machine %s: %w", m.ID, err)
	}
	spec, shapeCheck := d.vmSpec(m, paths)
	in, err := d.vms.Create(ctx, spec)
	if err != nil {
		return cloud.Machine{}, fmt.Errorf("adapt machine %s: %w", m.ID, err)
	}
	var overlays []string
	for _, disk := range in.Spec.Disks {
		overlays = append(overlays, disk.Overlay)
	}
	start := time.Now()
	res, aerr := adapt.Linux(ctx, overlays, adapt.Options{Network: adapt.Network{CIDR: spec.Network.CIDR}})
	if ctx.Err() != nil {
		d.deleteVM(context.WithoutCancel(ctx), m.ID)
		return cloud.Machine{}, ctx.Err() // interrupted, not failed: call again
	}
	m.Checks = append(m.Checks, shapeCheck, adaptCheck(res, aerr, time.Since(start)))
	if aerr != nil {
		if err := d.deleteVM(ctx, m.ID); err != nil {
			return cloud.Machine{}, fmt.Errorf("adapt machine %s: %w", m.ID, err)
		}
		return d.settle(ctx, m)
	}
	m.Stage = stageAdapted
	if err := d.saveMachine(m); err != nil {
		return cloud.Machine{}, fmt.Errorf("adapt machine %s: %w", m.ID, err)
	}
	return m, nil
}

// vmSpec is the VM of machine m over the materialised disk files, sized by
// its shape within the caps, on the network its kind calls for.
func (d *Driver) vmSpec(m cloud.Machine, paths []string) (vm.Spec, cloud.Check) {
	maxCPU, maxMem := d.vmOpts.MaxVCPUs, d.vmOpts.MaxMemoryMiB
	if maxCPU <= 0 {
		maxCPU = 2
	}
	if maxMem <= 0 {
		maxMem = 2048
	}
	cpus, mem := m.Shape.VCPUs, m.Shape.MemoryMiB
	asked := fmt.Sprintf("%d vCPU / %d MiB", cpus, mem)
	if cpus <= 0 || mem <= 0 {
		asked = "no size from the assessment or the inventory"
	}
	if cpus <= 0 {
		cpus = 1
	}
	if mem <= 0 {
		mem = 1024
	}
	mem = max(mem, 512) // a Debian kernel with its initramfs needs that much
	var capped []string
	if cpus > maxCPU {
		cpus = maxCPU
		capped = append(capped, fmt.Sprintf("vCPUs capped at %d", maxCPU))
	}
	if mem > maxMem {
		mem = maxMem
		capped = append(capped, fmt.Sprintf("memory capped at %d MiB", maxMem))
	}
	msg := fmt.Sprintf("%d vCPU / %d MiB (asked: %s)", cpus, mem, asked)
	if len(capped) > 0 {
		msg += "; " + strings.Join(capped, ", ") + ": the local cloud is this one machine"
	}
	mode := vm.NetIsolated
	if m.Kind == cloud.LaunchCutover {
		mode = vm.NetTarget
	}
	spec := vm.Spec{Name: m.ID, CPUs: cpus, MemoryMiB: int(mem),
		Network: vm.Network{Mode: mode, CIDR: d.vmOpts.NetworkCIDR, Ports: m.Ports, GuestForwards: d.vmOpts.AgentForwards},
		Labels:  map[string]string{"migration": m.MigrationID, "kind": string(m.Kind), "token": m.Token}}
	if spec.Network.CIDR == "" {
		spec.Network.CIDR = "10.0.2.0/24"
	}
	for _, p := range paths {
		spec.Disks = append(spec.Disks, vm.Disk{Image: p, Format: "raw"})
	}
	return spec, cloud.Check{Name: "shape", Passed: true, Message: msg}
}

// adaptCheck is the "adapt" check: the OS found and every change made, or
// the step and file that failed.
func adaptCheck(res adapt.Result, err error, took time.Duration) cloud.Check {
	c := cloud.Check{Name: "adapt", Duration: took}
	var b strings.Builder
	for _, ch := range res.Changes {
		fmt.Fprintf(&b, "%s %s %s", ch.Step, ch.Action, ch.File)
		if ch.Why != "" {
			fmt.Fprintf(&b, ": %s", ch.Why)
		}
		b.WriteByte('\n')
		for _, l := range strings.Split(strings.TrimSpace(ch.Before), "\n") {
			if l != "" {
				fmt.Fprintf(&b, "  - %s\n", l)
			}
		}
		for _, l := range strings.Split(strings.TrimSpace(ch.After), "\n") {
			if l != "" {
				fmt.Fprintf(&b, "  + %s\n", l)
			}
		}
	}
	c.Evidence = strings.TrimSpace(b.String())
	var se *adapt.StepError
	switch {
	case err == nil:
		c.Passed = true
		c.Message = fmt.Sprintf("%s adapted for virtio and DHCP: %d changes (root %s)", or(res.OS.PrettyName, res.OS.ID), len(res.Changes), res.Root)
	case errors.Is(err, adapt.ErrUnsupported):
		c.Message = fmt.Sprintf("not adapted: %v", err)
	case errors.As(err, &se):
		c.Message = fmt.Sprintf("adaptation failed at step %s", se.Step)
		if se.File != "" {
			c.Message += fmt.Sprintf(" (%s)", se.File)
		}
		c.Message += fmt.Sprintf(": %v", se.Err)
	default:
		c.Message = fmt.Sprintf("adaptation failed: %v", err)
	}
	return c
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// bootMachine boots an adapted machine (adapting it first when not yet),
// runs the health checks under the boot timeout and settles it: running or
// live with the VM up, or failed with the VM deleted and the console
// excerpt kept. Caller holds the machine's lock.
func (d *Driver) bootMachine(ctx context.Context, m cloud.Machine) (cloud.Machine, error) {
	if m.Stage != stageAdapted {
		var err error
		if m, err = d.adaptMachine(ctx, m); err != nil || m.State.Settled() {
			return m, err
		}
	}
	in, err := d.vms.Get(m.ID)
	if errors.Is(err, vm.ErrNotFound) {
		// Adapted, but the VM went (deleted by hand): adapt again.
		m.Stage = ""
		return d.bootMachine(ctx, m)
	}
	if err != nil {
		return cloud.Machine{}, fmt.Errorf("boot machine %s: %w", m.ID, err)
	}
	if in.State == vm.StateRunning {
		// A boot a crash interrupted: its checks were never recorded.
		if _, err := d.vms.Stop(ctx, m.ID, 0); err != nil {
			return cloud.Machine{}, fmt.Errorf("boot machine %s: %w", m.ID, err)
		}
	}
	timeout := d.vmOpts.BootTimeout
	if timeout <= 0 {
		timeout = 4 * time.Minute
	}
	started := d.clock()
	var rep health.Report
	in, berr := d.vms.Boot(ctx, m.ID, timeout, func(ctx context.Context, in *vm.Instance) error {
		checkers := []health.Checker{health.Console{Path: in.ConsolePath(), Also: []string{in.FirmwarePath()}}}
		if len(m.Ports) > 0 {
			var ps []health.Port
			for _, p := range m.Ports {
				ps = append(ps, health.Port{Port: p, Addr: in.HostAddr(p)})
			}
			checkers = append(checkers, health.Ports{Ports: ps})
		}
		if d.vmOpts.AgentPhoned != nil {
			checkers = append(checkers, health.Agent{Phoned: func(ctx context.Context) (string, bool, error) {
				return d.vmOpts.AgentPhoned(ctx, m, started)
			}})
		}
		rep = health.Run(ctx, checkers...)
		return rep.Err()
	})
	if in != nil {
		m.Accel = string(in.Accel)
		if in.AccelReason != "" {
			m.Accel += ": " + in.AccelReason
		}
		if tail, err := in.ConsoleTail(consoleExcerpt); err == nil {
			m.Console = strings.ToValidUTF8(ansiRE.ReplaceAllString(tail, ""), "?")
		}
	}
	if berr != nil && ctx.Err() != nil {
		d.deleteVM(context.WithoutCancel(ctx), m.ID)
		m.Stage = "" // the next call adapts and boots from fresh overlays
		d.saveMachine(m)
		return cloud.Machine{}, ctx.Err()
	}
	for _, c := range rep.Checks {
		m.Checks = append(m.Checks, cloud.Check{Name: c.Name, Passed: c.Passed, Message: c.Message, Duration: c.Duration, Evidence: c.Evidence})
	}
	if len(m.Ports) == 0 {
		m.Checks = append(m.Checks, cloud.Check{Name: "ports", Passed: true, Skipped: true, Message: "the inventory knows no listening TCP ports of the source"})
	}
	if d.vmOpts.AgentPhoned == nil {
		m.Checks = append(m.Checks, cloud.Check{Name: "agent", Passed: true, Skipped: true, Message: "no agent endpoint is wired for launches of this cloud"})
	}
	if berr != nil && len(rep.Checks) == 0 {
		// qemu did not start or the boot ended before any check ran.
		m.Checks = append(m.Checks, cloud.Check{Name: "boot", Message: berr.Error(), Duration: d.clock().Sub(started), Evidence: m.Console})
	} else if berr != nil && rep.Passed {
		m.Checks = append(m.Checks, cloud.Check{Name: "boot", Message: berr.Error(), Duration: d.clock().Sub(started)})
	}
	if berr == nil && m.Passed() {
		m.HealthyAt = d.clock().UTC()
	} else if err := d.deleteVM(ctx, m.ID); err != nil {
		return cloud.Machine{}, fmt.Errorf("boot machine %s: %w", m.ID, err)
	}
	return d.settle(ctx, m)
}

// ansiRE matches the terminal escapes systemd colours its console with.
var ansiRE = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][A-Z0-9]|[0-9=>@-~])?|\r`)

// consoleExcerpt is how much of the console's tail a machine keeps.
const consoleExcerpt = 6000

// settle records the machine's verdict: failed, live (cutover) or running.
func (d *Driver) settle(ctx context.Context, m cloud.Machine) (cloud.Machine, error) {
	switch {
	case !m.Passed():
		m.State = cloud.MachineFailed
	case m.Kind == cloud.LaunchCutover:
		m.State = cloud.MachineLive
	default:
		m.State = cloud.MachineRunning
	}
	m.Stage = ""
	if err := d.saveMachine(m); err != nil {
		return cloud.Machine{}, fmt.Errorf("machine %s: %w", m.ID, err)
	}
	return m, nil
}

// deleteVM stops and removes machine id's VM (overlays, logs, sockets);
// there being none is fine.
func (d *Driver) deleteVM(ctx context.Context, id string) error {
	if d.vms == nil {
		return nil
	}
	if _, err := d.vms.Get(id); errors.Is(err, vm.ErrNotFound) {
		return nil
	}
	if err := d.vms.Delete(ctx, id); err != nil && !errors.Is(err, vm.ErrNotFound) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete VM %s: %w", id, err)
	}
	return nil
}

// reapVMs deletes the VMs no active machine owns (a crash between deleting
// a machine's disks and its VM, or a VM made for a machine since torn
// down): nothing of a launch outlives its machine.
func (d *Driver) reapVMs(ctx context.Context) error {
	if d.vms == nil {
		return nil
	}
	ins, err := d.vms.List()
	if err != nil {
		return fmt.Errorf("local cloud: list VMs: %w", err)
	}
	var errs []error
	for _, in := range ins {
		d.mu.Lock()
		m, ok := d.machines[in.Name()]
		d.mu.Unlock()
		if ok && m.State.Active() {
			continue
		}
		errs = append(errs, d.deleteVM(ctx, in.Name()))
	}
	return errors.Join(errs...)
}
