package snapshot

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// LVM snapshots a logical volume with lvcreate --snapshot. It needs the
// kernel's device-mapper (/dev/mapper/control); without it Prepare says so.
type LVM struct{}

func (LVM) Name() string { return "lvm" }

// DeviceMapper reports whether this kernel offers device-mapper, and why
// not. The /dev/mapper/control node alone proves nothing (package scripts
// create it whatever the kernel has): the kernel lists its misc devices.
func DeviceMapper() error {
	b, _ := os.ReadFile("/proc/misc")
	if !strings.Contains(string(b), " device-mapper\n") {
		return fmt.Errorf("%w: this kernel has no device-mapper (none in /proc/misc; no dm module), so no LVM or dm snapshot can be taken", ErrUnsupported)
	}
	if _, err := os.Stat("/dev/mapper/control"); err != nil {
		return fmt.Errorf("%w: device-mapper has no /dev/mapper/control node: %v", ErrUnsupported, err)
	}
	return nil
}

func (LVM) Prepare(ctx context.Context, d Disk, opt Options) (Pending, error) {
	st, err := os.Stat(d.Source)
	if err != nil {
		return nil, err
	}
	if st.Mode()&os.ModeDevice == 0 {
		return nil, fmt.Errorf("%w: %s is not a block device", ErrUnsupported, d.Source)
	}
	if err := DeviceMapper(); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("lvs"); err != nil {
		return nil, fmt.Errorf("%w: lvm2 is not installed", ErrUnsupported)
	}
	out, err := exec.CommandContext(ctx, "lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_name,lv_name,lv_size", d.Source).Output()
	f := strings.Fields(string(out))
	if err != nil || len(f) != 3 {
		return nil, fmt.Errorf("%w: %s is not an LVM logical volume", ErrUnsupported, d.Source)
	}
	size, _ := strconv.ParseInt(f[2], 10, 64)
	return &lvmSnap{d: d, vg: f[0], lv: f[1], name: strings.TrimPrefix(uniq(f[1]), "."), space: d.space(size)}, nil
}

type lvmSnap struct {
	d            Disk
	vg, lv, name string
	space        int64
}

// WritesTo: lvcreate writes its metadata backups under /etc/lvm; that
// filesystem must stay writable or lvcreate blocks for good.
func (l *lvmSnap) WritesTo() string { return "/etc/lvm" }

// FreezesItself: lvcreate suspends the volume, and device-mapper's suspend
// freezes the filesystem on it for that instant; a freeze of our own
// around it would make the suspend wait forever.
func (l *lvmSnap) FreezesItself() bool { return true }

func (l *lvmSnap) Take(ctx context.Context) (*View, error) {
	out, err := exec.CommandContext(ctx, "lvcreate", "--snapshot", "--name", l.name, "--size", strconv.FormatInt(l.space, 10)+"b", l.vg+"/"+l.lv).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("lvcreate --snapshot: %v: %s", err, strings.TrimSpace(string(out)))
	}
	v := &View{Disk: l.d, Path: "/dev/" + l.vg + "/" + l.name, Method: "lvm", release: l.Abort}
	v.check = func() error {
		out, err := exec.Command("lvs", "--noheadings", "-o", "lv_attr,snap_percent", l.vg+"/"+l.name).Output()
		f := strings.Fields(string(out))
		if err != nil || len(f) == 0 {
			return fmt.Errorf("%w: LVM snapshot %s/%s is gone", ErrFilled, l.vg, l.name)
		}
		if attr := f[0]; len(attr) > 4 && attr[4] == 'I' {
			return fmt.Errorf("%w: LVM snapshot %s/%s overflowed its %d MiB and was invalidated", ErrFilled, l.vg, l.name, l.space>>20)
		}
		return nil
	}
	return v, nil
}

func (l *lvmSnap) Abort(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "lvremove", "--force", l.vg+"/"+l.name).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "not found") {
		return fmt.Errorf("lvremove: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
