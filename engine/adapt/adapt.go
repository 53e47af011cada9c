// Package adapt owns "driver repair": preparing a copy of a migrated
// server's disks to boot on the target's hardware (virtio disks and NICs,
// DHCP, a serial console) before its first boot, and recording every
// change. It works on the launch's own copy (qcow2 overlays exported
// through qemu-storage-daemon's FUSE export, or raw copies), never on a
// recovery point: the disks are attached to loop devices, the guest's root
// (and /boot, /usr, /var when separate) mounted, and the guest's own tools
// (update-initramfs, dracut, mkinitrd, dpkg, rpm) run in a chroot with /dev,
// /proc and /sys bound.
//
// Linux guests are adapted; Windows guests are recognised and refused with
// ErrUnsupported (the plan for them is in docs/launch.md). A step that
// cannot be done fails with a *StepError naming the step and the file.
package adapt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Steps, in the order they run.
const (
	StepAttach       = "attach"
	StepDetect       = "detect"
	StepFstab        = "fstab"
	StepNetwork      = "network"
	StepNetRules     = "net-rules"
	StepVMwareTools  = "vmware-tools"
	StepBootloader   = "bootloader"
	StepInitramfs    = "initramfs"
	StepDetach       = "detach"
	defaultTimeout   = 10 * time.Minute
	defaultConsole   = "console=ttyS0,115200"
	chrootPath       = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
	policyRcD        = "/usr/sbin/policy-rc.d"
	policyRcDContent = "#!/bin/sh\n# written by ferry adapt while it runs the guest's package tools\nexit 101\n"
)

// ErrUnsupported is returned for guests this package does not adapt
// (Windows today).
var ErrUnsupported = errors.New("guest OS not supported for adaptation")

// StepError is a step that failed, with the guest file it was working on.
type StepError struct {
	Step string
	File string // path inside the guest, or the host device
	Err  error
}

func (e *StepError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("adapt step %s: %v", e.Step, e.Err)
	}
	return fmt.Sprintf("adapt step %s (%s): %v", e.Step, e.File, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

func stepErr(step, file string, err error) error { return &StepError{Step: step, File: file, Err: err} }

// Options say what the target looks like.
type Options struct {
	// Network is what the target network allows (static addresses kept or
	// not).
	Network Network
	// Drivers the initramfs must carry; default virtio_blk, virtio_scsi,
	// virtio_net, virtio_pci.
	Drivers []string
	// Console is the serial console argument ensured on every kernel
	// command line; default console=ttyS0,115200.
	Console string
	// Timeout bounds the whole adaptation; default 10 minutes.
	Timeout time.Duration
}

// Change is one thing done to the guest.
type Change struct {
	Step string `json:"step"`
	// File is the path inside the guest.
	File string `json:"file"`
	// Action: edited, created, removed, regenerated, purged, kept.
	Action string `json:"action"`
	// Before and After summarise the change: the lines removed and added
	// for an edit, the command's last output lines for a regeneration.
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	Why    string `json:"why,omitempty"`
}

// OS is the guest's identity from os-release.
type OS struct {
	ID, VersionID, PrettyName string
	Family                    string // "linux" or "windows"
}

// Result is what an adaptation did.
type Result struct {
	OS       OS            `json:"os"`
	Root     string        `json:"root"`   // "disk 0 partition 1 (ext4 UUID=…)"
	Attach   string        `json:"attach"` // how the disks were reached
	Changes  []Change      `json:"changes"`
	Duration time.Duration `json:"duration"`
}

// Linux adapts the guest on disks (the launch's writable copies, boot disk
// first, in the order the target attaches them) for virtio and the target
// network. Everything attached and mounted is released before it returns,
// whatever happened; a failure to release is itself an error.
func Linux(ctx context.Context, disks []string, opts Options) (res Result, err error) {
	start := time.Now()
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if len(opts.Drivers) == 0 {
		opts.Drivers = []string{"virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net"}
	}
	if opts.Console == "" {
		opts.Console = defaultConsole
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	tmp, err := os.MkdirTemp("", "ferry-adapt-")
	if err != nil {
		return res, stepErr(StepAttach, "", err)
	}
	s := &session{ctx: ctx, tmp: tmp}
	s.push(func() error { return os.RemoveAll(tmp) })
	defer func() {
		if cerr := s.close(); cerr != nil {
			err = errors.Join(err, stepErr(StepDetach, "", cerr))
		}
		res.Duration = time.Since(start)
	}()
	if len(disks) == 0 {
		return res, stepErr(StepAttach, "", errors.New("no disks"))
	}
	if err := s.attach(disks); err != nil {
		return res, stepErr(StepAttach, "", err)
	}
	res.Attach = "loop devices over the disks (qcow2 through qemu-storage-daemon FUSE exports, so changes land in the overlays)"
	a := &adapter{s: s, opts: opts, res: &res}
	var all []part
	for _, d := range s.disks {
		all = append(all, d.parts...)
	}
	a.r = resolver{parts: all}
	if err := a.mountRoot(); err != nil {
		return res, err
	}
	for _, step := range []func() error{a.fstab, a.mountRest, a.binds, a.network, a.netRules, a.vmwareTools, a.bootloader, a.initramfs} {
		if err := ctx.Err(); err != nil {
			return res, stepErr("timeout", "", fmt.Errorf("adaptation did not finish within %s", opts.Timeout))
		}
		if err := step(); err != nil {
			return res, err
		}
	}
	return res, nil
}

type adapter struct {
	s    *session
	opts Options
	res  *Result
	r    resolver
	root part
	// fstab entries that must be mounted for the guest's tools
	extra []fstabEntry
	// ethNames: the network config names ethN interfaces
	ethNames bool
}

type fstabEntry struct{ spec, dir, fstype string }

func (a *adapter) guest(p string) string { return filepath.Join(a.s.root, p) }

func (a *adapter) record(c Change) { a.res.Changes = append(a.res.Changes, c) }

// mountRoot finds the partition holding the guest's root (etc/fstab and an
// os-release) and mounts it read-write. A disk set with NTFS and no Linux
// root is a Windows guest: ErrUnsupported.
func (a *adapter) mountRoot() error {
	probeDir := filepath.Join(a.s.tmp, "probe")
	var ntfs []string
	var seen []string
	for _, p := range a.r.parts {
		seen = append(seen, fmt.Sprintf("%s=%s", p.dev, or(p.fstype, "unknown")))
		switch p.fstype {
		case "ntfs":
			ntfs = append(ntfs, p.dev)
			continue
		case "LVM2_member":
			return stepErr(StepDetect, p.dev, errors.New("the disk holds an LVM physical volume; adapting LVM guests needs device-mapper, which this host lacks"))
		case "ext2", "ext3", "ext4", "btrfs", "xfs":
		default:
			continue
		}
		if err := os.MkdirAll(probeDir, 0o755); err != nil {
			return stepErr(StepDetect, "", err)
		}
		if err := syscall.Mount(p.dev, probeDir, p.fstype, syscall.MS_RDONLY, ""); err != nil {
			seen[len(seen)-1] += fmt.Sprintf(" (mount: %v)", err)
			continue
		}
		_, ferr := os.Stat(filepath.Join(probeDir, "etc/fstab"))
		osr, oerr := readOSRelease(probeDir)
		syscall.Unmount(probeDir, 0)
		if ferr != nil || oerr != nil {
			continue
		}
		a.root = p
		a.res.OS = osr
		a.s.root = filepath.Join(a.s.tmp, "root")
		if err := a.s.mount(p.dev, a.s.root, p.fstype, 0, ""); err != nil {
			return stepErr(StepDetect, p.dev, err)
		}
		a.res.Root = fmt.Sprintf("disk %d partition %d (%s UUID=%s)", p.disk, p.num, p.fstype, p.uuid)
		return nil
	}
	if len(ntfs) > 0 {
		a.res.OS = OS{Family: "windows", PrettyName: "Windows (NTFS on " + strings.Join(ntfs, ", ") + ")"}
		return stepErr(StepDetect, ntfs[0], fmt.Errorf("%w: Windows guests need virtio-win drivers injected and registered (CriticalDeviceDatabase), which Ferry does not do yet (docs/launch.md)", ErrUnsupported))
	}
	return stepErr(StepDetect, "", fmt.Errorf("no Linux root filesystem (etc/fstab and os-release) on the disks; partitions: %s", strings.Join(seen, ", ")))
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func readOSRelease(root string) (OS, error) {
	var b []byte
	var err error
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		if b, err = os.ReadFile(filepath.Join(root, p)); err == nil {
			break
		}
	}
	if err != nil {
		return OS{}, err
	}
	o := OS{Family: "linux"}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, "=")
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			o.ID = v
		case "VERSION_ID":
			o.VersionID = v
		case "PRETTY_NAME":
			o.PrettyName = v
		}
	}
	return o, nil
}

// writeGuest replaces a guest file's content keeping its mode, and records
// the change with its line diff.
func (a *adapter) writeGuest(step, file, before, after, why string) error {
	if before == after {
		return nil
	}
	p := a.guest(file)
	mode := os.FileMode(0o644)
	action := "created"
	if fi, err := os.Stat(p); err == nil {
		mode = fi.Mode().Perm()
		action = "edited"
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return stepErr(step, file, err)
	}
	if err := os.WriteFile(p, []byte(after), mode); err != nil {
		return stepErr(step, file, err)
	}
	rm, add := lineDiff(before, after)
	a.record(Change{Step: step, File: file, Action: action, Before: rm, After: add, Why: why})
	return nil
}

func (a *adapter) fstab() error {
	const file = "/etc/fstab"
	b, err := os.ReadFile(a.guest(file))
	if err != nil {
		return stepErr(StepFstab, file, err)
	}
	out, notes, err := rewriteFstab(string(b), a.r)
	if err != nil {
		return stepErr(StepFstab, file, err)
	}
	why := "devices by UUID: kernel names (/dev/sdX) change with the disk controller (virtio disks are /dev/vdX)"
	if len(notes) > 0 {
		why += "; " + strings.Join(notes, "; ")
	}
	if out == string(b) {
		a.record(Change{Step: StepFstab, File: file, Action: "kept", Why: "every entry already names its device by a stable id"})
	} else if err := a.writeGuest(StepFstab, file, string(b), out, why); err != nil {
		return err
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && !strings.HasPrefix(f[0], "#") && slices.Contains([]string{"/boot", "/boot/efi", "/usr", "/var"}, f[1]) {
			a.extra = append(a.extra, fstabEntry{f[0], f[1], f[2]})
		}
	}
	return nil
}

// mountRest mounts /boot, /boot/efi, /usr and /var when they are separate
// filesystems on the launched disks (the initramfs lands in /boot).
func (a *adapter) mountRest() error {
	sort.Slice(a.extra, func(i, j int) bool { return len(a.extra[i].dir) < len(a.extra[j].dir) })
	for _, e := range a.extra {
		p, ok := a.r.find(e.spec)
		if !ok {
			if e.dir == "/boot" {
				return stepErr(StepFstab, "/etc/fstab", fmt.Errorf("/boot (%s) is not on the launched disks", e.spec))
			}
			continue
		}
		fstype := e.fstype
		if fstype == "auto" || fstype == "" {
			fstype = p.fstype
		}
		if err := a.s.mount(p.dev, a.guest(e.dir), fstype, 0, ""); err != nil {
			return stepErr(StepFstab, e.dir, err)
		}
	}
	return nil
}

func (a *adapter) binds() error {
	for _, d := range []string{"/dev", "/proc", "/sys"} {
		if err := a.s.bind(d, a.guest(d)); err != nil {
			return stepErr(StepAttach, d, err)
		}
	}
	if _, err := os.Lstat(a.guest(policyRcD)); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(a.guest(policyRcD), []byte(policyRcDContent), 0o755); err == nil {
			a.s.push(func() error { return os.Remove(a.guest(policyRcD)) })
		}
	}
	return nil
}

// chroot runs a command of the guest in its root.
func (a *adapter) chroot(args ...string) (string, error) {
	cmd := exec.CommandContext(a.s.ctx, "chroot", append([]string{a.s.root, "/usr/bin/env", "-i", chrootPath, "LANG=C", "LC_ALL=C",
		"DEBIAN_FRONTEND=noninteractive", "SYSTEMD_OFFLINE=1"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, lastLines(string(out), 15))
	}
	return string(out), nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// dhcpClients are the programs ifupdown runs for "inet dhcp".
var dhcpClients = []string{"/sbin/dhclient", "/usr/sbin/dhclient", "/sbin/dhcpcd", "/usr/sbin/dhcpcd", "/sbin/udhcpc", "/usr/sbin/udhcpc", "/bin/busybox", "/usr/bin/busybox"}

func (a *adapter) hasAny(paths []string) bool {
	for _, p := range paths {
		if a.exists(p) {
			return true
		}
	}
	return false
}

func (a *adapter) exists(p string) bool {
	_, err := os.Lstat(a.guest(p))
	return err == nil
}

// glob lists guest paths matching pattern (a guest path).
func (a *adapter) glob(pattern string) []string {
	m, _ := filepath.Glob(a.guest(pattern))
	out := make([]string, 0, len(m))
	for _, p := range m {
		out = append(out, strings.TrimPrefix(p, a.s.root))
	}
	return out
}

// network moves each network configuration the guest has to DHCP (or keeps
// a static address the target network allows).
func (a *adapter) network() error {
	type kind struct {
		files   []string
		rewrite func(string) (netEdit, error)
	}
	n := a.opts.Network
	plain := func(f func(string, Network) netEdit) func(string) (netEdit, error) {
		return func(s string) (netEdit, error) { return f(s, n), nil }
	}
	kinds := []kind{
		{append([]string{"/etc/network/interfaces"}, a.glob("/etc/network/interfaces.d/*")...), plain(rewriteInterfaces)},
		{a.glob("/etc/systemd/network/*.network"), plain(rewriteNetworkd)},
		{a.glob("/etc/NetworkManager/system-connections/*"), plain(rewriteKeyfile)},
		{append(a.glob("/etc/sysconfig/network-scripts/ifcfg-*"), a.glob("/etc/sysconfig/network/ifcfg-*")...), plain(rewriteIfcfg)},
		{a.glob("/etc/netplan/*.yaml"), func(s string) (netEdit, error) { return rewriteNetplan(s, n) }},
	}
	found := false
	for _, k := range kinds {
		for _, f := range k.files {
			if strings.HasSuffix(f, "ifcfg-lo") {
				continue
			}
			b, err := os.ReadFile(a.guest(f))
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				return stepErr(StepNetwork, f, err)
			}
			found = true
			e, err := k.rewrite(string(b))
			if err != nil {
				return stepErr(StepNetwork, f, err)
			}
			for _, name := range e.names {
				if strings.HasPrefix(name, "eth") {
					a.ethNames = true
				}
			}
			why := strings.Join(e.notes, "; ")
			if e.text == string(b) {
				if why != "" {
					a.record(Change{Step: StepNetwork, File: f, Action: "kept", Why: why})
				}
				continue
			}
			if strings.HasPrefix(f, "/etc/network/interfaces") && strings.Contains(e.text, "inet dhcp") && !a.hasAny(dhcpClients) {
				return stepErr(StepNetwork, f, errors.New("DHCP through ifupdown needs a client (isc-dhcp-client, dhcpcd or udhcpc) and the guest has none; install one on the source, or give the target network the source's subnet and keep the static address"))
			}
			if err := a.writeGuest(StepNetwork, f, string(b), e.text, why); err != nil {
				return err
			}
		}
	}
	if !found {
		a.record(Change{Step: StepNetwork, Action: "kept", Why: "no network configuration found (ifupdown, networkd, NetworkManager, ifcfg, netplan); the guest's defaults stand"})
	}
	return nil
}

// netRules removes udev rules and .link files that pin interface names to
// the source's MAC addresses: the target NICs have new ones.
func (a *adapter) netRules() error {
	for _, f := range []string{"/etc/udev/rules.d/70-persistent-net.rules", "/etc/udev/rules.d/75-persistent-net-generator.rules"} {
		b, err := os.ReadFile(a.guest(f))
		if err != nil {
			continue
		}
		if err := os.Remove(a.guest(f)); err != nil {
			return stepErr(StepNetRules, f, err)
		}
		a.record(Change{Step: StepNetRules, File: f, Action: "removed", Before: clip(strings.TrimSpace(string(b))),
			Why: "it names interfaces by the source NICs' MAC addresses, which the target NICs do not have"})
	}
	for _, f := range a.glob("/etc/systemd/network/*.link") {
		b, err := os.ReadFile(a.guest(f))
		if err != nil || !strings.Contains(string(b), "MACAddress=") {
			continue
		}
		if err := os.Remove(a.guest(f)); err != nil {
			return stepErr(StepNetRules, f, err)
		}
		a.record(Change{Step: StepNetRules, File: f, Action: "removed", Before: clip(strings.TrimSpace(string(b))),
			Why: "it matches the source NIC's MAC address"})
	}
	return nil
}

// vmwareTools purges the VMware guest tools through the guest's package
// manager (they fail without VMware's devices, and vmtoolsd holds the boot
// of some distributions).
func (a *adapter) vmwareTools() error {
	pkgs := []string{"open-vm-tools", "open-vm-tools-desktop", "open-vm-tools-sdmp", "open-vm-tools-containerinfo"}
	if a.exists("/var/lib/dpkg/status") {
		b, err := os.ReadFile(a.guest("/var/lib/dpkg/status"))
		if err != nil {
			return stepErr(StepVMwareTools, "/var/lib/dpkg/status", err)
		}
		installed := dpkgInstalled(string(b))
		var purge []string
		for _, p := range pkgs {
			if installed[p] {
				purge = append(purge, p)
			}
		}
		if len(purge) > 0 {
			out, err := a.chroot(append([]string{"dpkg", "--purge"}, purge...)...)
			if err != nil {
				return stepErr(StepVMwareTools, "/var/lib/dpkg/status", err)
			}
			a.record(Change{Step: StepVMwareTools, File: "/var/lib/dpkg/status", Action: "purged", Before: strings.Join(purge, " "),
				After: lastLines(out, 5), Why: "VMware guest tools have nothing to talk to on the target"})
		}
	} else if a.exists("/var/lib/rpm") || a.exists("/usr/lib/sysimage/rpm") {
		var present []string
		for _, p := range pkgs {
			if _, err := a.chroot("rpm", "-q", p); err == nil {
				present = append(present, p)
			}
		}
		if len(present) > 0 {
			out, err := a.chroot(append([]string{"rpm", "-e", "--nodeps"}, present...)...)
			if err != nil {
				return stepErr(StepVMwareTools, "rpm database", err)
			}
			a.record(Change{Step: StepVMwareTools, File: "rpm database", Action: "purged", Before: strings.Join(present, " "),
				After: lastLines(out, 5), Why: "VMware guest tools have nothing to talk to on the target"})
		}
	}
	// VMware's own tarball installer leaves no package to remove.
	if a.exists("/etc/vmware-tools/locations") {
		a.record(Change{Step: StepVMwareTools, File: "/etc/vmware-tools/locations", Action: "kept",
			Why: "VMware Tools installed from VMware's tarball (no package); run vmware-uninstall-tools.pl in the guest after cutover"})
	}
	return nil
}

// dpkgInstalled lists the packages dpkg's status file says are installed.
func dpkgInstalled(status string) map[string]bool {
	out := map[string]bool{}
	for _, stanza := range strings.Split(status, "\n\n") {
		var name string
		ok := false
		for _, l := range strings.Split(stanza, "\n") {
			if v, found := strings.CutPrefix(l, "Package: "); found {
				name = v
			}
			if strings.HasPrefix(l, "Status: ") && strings.HasSuffix(l, " installed") && strings.Contains(l, "install ok") {
				ok = true
			}
		}
		if ok && name != "" {
			out[name] = true
		}
	}
	return out
}

// bootloader makes every kernel command line name the root by UUID and
// carry the serial console (and net.ifnames=0 when the network config names
// ethN interfaces, so the names it expects stay), in the boot loader's
// generated config and in the files it is generated from.
func (a *adapter) bootloader() error {
	add := []string{"console=tty0", a.opts.Console}
	if a.ethNames {
		add = append(add, "net.ifnames=0")
	}
	why := "root by UUID (kernel names change with the controller); " + a.opts.Console + " so the console can be read"
	if a.ethNames {
		why += "; net.ifnames=0 because the network configuration names ethN interfaces"
	}
	type target struct {
		files []string
		lines func(string) bool
	}
	targets := []target{
		{[]string{"/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"}, grubLinuxLine},
		{[]string{"/etc/default/grub"}, grubDefaultLine},
		{append(a.glob("/boot/loader/entries/*.conf"), "/boot/extlinux/extlinux.conf", "/boot/syslinux/syslinux.cfg", "/extlinux.conf"), entryLine},
		{[]string{"/etc/kernel/cmdline"}, anyLine},
	}
	any := false
	for _, t := range targets {
		for _, f := range t.files {
			b, err := os.ReadFile(a.guest(f))
			if err != nil {
				continue
			}
			any = true
			text := string(b)
			if f == "/etc/default/grub" {
				text = strings.ReplaceAll(text, "GRUB_DISABLE_LINUX_UUID=true", "GRUB_DISABLE_LINUX_UUID=false")
				if !strings.Contains(text, "GRUB_CMDLINE_LINUX=") {
					text += "GRUB_CMDLINE_LINUX=\"\"\n"
				}
			}
			out, err := rewriteCmdline(text, a.r, t.lines, add)
			if err != nil {
				return stepErr(StepBootloader, f, err)
			}
			if err := a.writeGuest(StepBootloader, f, string(b), out, why); err != nil {
				return err
			}
		}
	}
	if !any {
		return stepErr(StepBootloader, "/boot", errors.New("no boot loader configuration found (GRUB, systemd-boot, extlinux)"))
	}
	return nil
}

// initramfs makes every installed kernel's initramfs carry the virtio
// drivers, regenerated with the guest's own tool.
func (a *adapter) initramfs() error {
	kernels := a.glob("/lib/modules/*")
	if len(kernels) == 0 {
		kernels = a.glob("/usr/lib/modules/*")
	}
	var kvers []string
	for _, k := range kernels {
		kv := filepath.Base(k)
		if a.exists("/boot/vmlinuz-"+kv) || a.exists(k+"/vmlinuz") {
			kvers = append(kvers, kv)
		}
	}
	if len(kvers) == 0 {
		return stepErr(StepInitramfs, "/lib/modules", errors.New("no installed kernel (no /boot/vmlinuz-* with modules)"))
	}
	// Which drivers are modules (to be put in the initramfs) and which are
	// built in (nothing to do); a kernel with neither cannot boot on virtio.
	need := map[string][]string{}
	for _, kv := range kvers {
		mods := "/lib/modules/" + kv
		builtin, _ := os.ReadFile(a.guest(mods + "/modules.builtin"))
		dep, err := os.ReadFile(a.guest(mods + "/modules.dep"))
		if err != nil {
			return stepErr(StepInitramfs, mods+"/modules.dep", err)
		}
		for _, d := range a.opts.Drivers {
			ko := "/" + d + ".ko"
			switch {
			case strings.Contains(string(builtin), ko):
			case strings.Contains(string(dep), ko):
				need[kv] = append(need[kv], d)
			default:
				return stepErr(StepInitramfs, mods+"/modules.dep", fmt.Errorf("kernel %s has no %s driver, built in or as a module", kv, d))
			}
		}
	}
	switch {
	case a.exists("/usr/sbin/update-initramfs") || a.exists("/sbin/update-initramfs"):
		return a.initramfsTools(kvers, need)
	case a.exists("/usr/bin/dracut") || a.exists("/usr/sbin/dracut") || a.exists("/sbin/dracut"):
		return a.dracut(kvers, need)
	case a.exists("/sbin/mkinitrd") || a.exists("/usr/sbin/mkinitrd"):
		return a.mkinitrd(kvers, need)
	}
	return stepErr(StepInitramfs, "/usr/sbin", errors.New("no initramfs tool (update-initramfs, dracut, mkinitrd) in the guest"))
}

func allDrivers(need map[string][]string) []string {
	var out []string
	for _, ds := range need {
		for _, d := range ds {
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	sort.Strings(out)
	return out
}

func (a *adapter) initramfsTools(kvers []string, need map[string][]string) error {
	const file = "/etc/initramfs-tools/modules"
	b, _ := os.ReadFile(a.guest(file))
	text := string(b)
	have := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			have[f[0]] = true
		}
	}
	var add []string
	for _, d := range allDrivers(need) {
		if !have[d] {
			add = append(add, d)
		}
	}
	if len(add) > 0 {
		if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		text += "# added by ferry: the target's disks and NICs are virtio\n" + strings.Join(add, "\n") + "\n"
		if err := a.writeGuest(StepInitramfs, file, string(b), text, "the initramfs must load the virtio drivers to find the root disk"); err != nil {
			return err
		}
	}
	out, err := a.chroot("update-initramfs", "-u", "-k", "all")
	if err != nil {
		return stepErr(StepInitramfs, "/boot/initrd.img-"+kvers[0], err)
	}
	for _, kv := range kvers {
		img := "/boot/initrd.img-" + kv
		if err := a.verify(img, need[kv], "lsinitramfs", img); err != nil {
			return err
		}
		a.record(Change{Step: StepInitramfs, File: img, Action: "regenerated", After: lastLines(out, 4),
			Why: "update-initramfs -u -k all; carries " + or(strings.Join(need[kv], ", "), "the built-in virtio drivers")})
	}
	return nil
}

func (a *adapter) dracut(kvers []string, need map[string][]string) error {
	const file = "/etc/dracut.conf.d/90-ferry-virtio.conf"
	before, _ := os.ReadFile(a.guest(file))
	conf := "# written by ferry: the target's disks and NICs are virtio\nadd_drivers+=\" " + strings.Join(allDrivers(need), " ") + " \"\n"
	if err := a.writeGuest(StepInitramfs, file, string(before), conf, "dracut must put the virtio drivers in every initramfs (its host-only mode would pick the source's)"); err != nil {
		return err
	}
	for _, kv := range kvers {
		img := "/boot/initramfs-" + kv + ".img"
		out, err := a.chroot("dracut", "-f", img, kv)
		if err != nil {
			return stepErr(StepInitramfs, img, err)
		}
		if err := a.verify(img, need[kv], "lsinitrd", img); err != nil {
			return err
		}
		a.record(Change{Step: StepInitramfs, File: img, Action: "regenerated", After: lastLines(out, 4), Why: "dracut -f with the virtio drivers"})
	}
	return nil
}

func (a *adapter) mkinitrd(kvers []string, need map[string][]string) error {
	const file = "/etc/sysconfig/kernel"
	b, err := os.ReadFile(a.guest(file))
	if err != nil {
		return stepErr(StepInitramfs, file, err)
	}
	text := string(b)
	lines := strings.Split(text, "\n")
	set := false
	for i, l := range lines {
		if v, ok := strings.CutPrefix(l, "INITRD_MODULES="); ok {
			mods := strings.Fields(strings.Trim(v, `"`))
			for _, d := range allDrivers(need) {
				if !slices.Contains(mods, d) {
					mods = append(mods, d)
				}
			}
			lines[i] = `INITRD_MODULES="` + strings.Join(mods, " ") + `"`
			set = true
		}
	}
	if !set {
		lines = append(lines, `INITRD_MODULES="`+strings.Join(allDrivers(need), " ")+`"`)
	}
	if err := a.writeGuest(StepInitramfs, file, text, strings.Join(lines, "\n"), "mkinitrd reads its driver list from INITRD_MODULES"); err != nil {
		return err
	}
	out, err := a.chroot("mkinitrd")
	if err != nil {
		return stepErr(StepInitramfs, "/boot", err)
	}
	a.record(Change{Step: StepInitramfs, File: "/boot", Action: "regenerated", After: lastLines(out, 4), Why: "mkinitrd with the virtio drivers"})
	return nil
}

// verify lists the initramfs with the guest's tool and checks every needed
// driver is in it.
func (a *adapter) verify(img string, drivers []string, tool ...string) error {
	if len(drivers) == 0 {
		return nil
	}
	out, err := a.chroot(tool...)
	if err != nil {
		return stepErr(StepInitramfs, img, err)
	}
	for _, d := range drivers {
		if !strings.Contains(out, "/"+d+".ko") {
			return stepErr(StepInitramfs, img, fmt.Errorf("regenerated, but %s is not in it", d))
		}
	}
	return nil
}
