// Package snapshot takes point-in-time views of a host's disks for a
// replication pass: the filesystems on the disks are frozen (FIFREEZE) only
// for the instant the snapshots are created, all disks of the host inside
// the same freeze, and the pass then reads the views while the disks stay
// live. Methods sit behind one interface: a qcow2 overlay through the QMP
// socket of the QEMU or qemu-storage-daemon serving the disk
// (blockdev-snapshot-sync), an LVM snapshot of a logical volume, a btrfs
// subvolume snapshot or a reflink copy (btrfs, xfs) of an image file.
//
// Where no method applies, Take says so: the views are then the live disks
// and the Set is not consistent, with a note saying why, so that a recovery
// point taken from the pass is marked as such rather than silently torn.
//
// A write to a frozen filesystem blocks in uninterruptible sleep, so a
// frozen filesystem must always be thawed: Take thaws from a deferred call,
// from an in-process timer, and from a watchdog process that outlives the
// agent (it thaws when its deadline passes or when the agent dies).
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Disk is one source disk of a host.
type Disk struct {
	// Source is the live disk: an image file or a block device.
	Source string
	// QMP is the unix socket of the QEMU or qemu-storage-daemon that serves
	// Source, and Node the block node (node-name) under it; with both set,
	// the disk is snapshotted as a qcow2 overlay.
	QMP, Node string
	// Mounts lists the mount points of the filesystems that live on the
	// disk; nil discovers them (mounts of the device, its partitions, or the
	// loop devices backed by the image file).
	Mounts []string
	// Space is the copy-on-write space the snapshot may use while the pass
	// reads it (LVM snapshot size, overlay or reflink divergence); past it
	// the view reports that it filled up. 0: a tenth of the disk, at least
	// 64 MiB.
	Space int64
}

// Options configure Take.
type Options struct {
	// Dir holds files a method creates (overlays, view mount points);
	// default the system temporary directory. It must not be on a
	// filesystem of the disks being snapshotted.
	Dir string
	// FreezeFor is the longest a filesystem stays frozen: the watchdog and
	// the timer thaw after it even if the agent is stuck (default 10 s).
	FreezeFor time.Duration
	// Methods are tried in order for each disk (default Methods()).
	Methods []Method
	// Logf logs (default: discard).
	Logf func(string, ...any)
}

// ErrUnsupported is wrapped by a method's Prepare when it does not apply
// to the disk; the error says why.
var ErrUnsupported = errors.New("snapshot method does not apply")

// ErrFilled is wrapped by View.Check once the snapshot used up its Space
// (or its backing store ran out): the view is no longer a point in time.
var ErrFilled = errors.New("snapshot filled up")

// Method is one way of taking a snapshot.
type Method interface {
	Name() string
	// Prepare does what can be done before the freeze and returns the
	// snapshot to be taken, or an error wrapping ErrUnsupported.
	Prepare(ctx context.Context, d Disk, opt Options) (Pending, error)
}

// Pending is a snapshot about to be taken.
type Pending interface {
	// Take creates the snapshot. It runs while the disk's filesystems are
	// frozen and so must not write to them (it may write to WritesTo).
	Take(ctx context.Context) (*View, error)
	// WritesTo names a path on the filesystem Take writes to ("" for none);
	// that filesystem is never frozen.
	WritesTo() string
	// Abort undoes Prepare when Take is not called or failed.
	Abort(ctx context.Context) error
}

// Methods returns every method, in the order Take tries them.
func Methods() []Method {
	return []Method{QCOW2{}, LVM{}, BtrfsSubvolume{}, Reflink{}}
}

// View is the point-in-time copy of one disk (or, when no method applied,
// the live disk itself).
type View struct {
	Disk   Disk
	Path   string // read the disk here
	Method string // "" for the live disk
	// check reports whether the view is still a point in time.
	check func() error
	// release discards the snapshot.
	release func(context.Context) error
	once    sync.Once
}

// Check returns nil while the view still holds the point in time, and an
// error wrapping ErrFilled (or saying what else broke it) once it does not.
func (v *View) Check() error {
	if v.check == nil {
		return nil
	}
	return v.check()
}

// Release discards the snapshot; later calls do nothing.
func (v *View) Release(ctx context.Context) error {
	var err error
	v.once.Do(func() {
		if v.release != nil {
			err = v.release(ctx)
		}
	})
	return err
}

// Set is the views of one host's disks, taken in one freeze.
type Set struct {
	Views []*View
	// Consistent: every disk was snapshotted, inside one freeze of all its
	// mounted filesystems.
	Consistent bool
	// Note says what was frozen and how each disk was taken, or why the
	// set is not a point in time.
	Note string
	// Frozen lists the mount points that were frozen.
	Frozen []string
}

// Methods names the methods used, one per disk ("live" for a live disk).
func (s *Set) Methods() string {
	var out []string
	for _, v := range s.Views {
		m := v.Method
		if m == "" {
			m = "live"
		}
		out = append(out, m)
	}
	return strings.Join(out, ",")
}

// Release discards every snapshot of the set.
func (s *Set) Release(ctx context.Context) error {
	var errs []error
	for _, v := range s.Views {
		if err := v.Release(ctx); err != nil {
			errs = append(errs, fmt.Errorf("release snapshot of %s: %w", v.Disk.Source, err))
		}
	}
	return errors.Join(errs...)
}

func (o *Options) defaults() {
	if o.Dir == "" {
		o.Dir = os.TempDir()
	}
	if o.FreezeFor <= 0 {
		o.FreezeFor = 10 * time.Second
	}
	if o.Methods == nil {
		o.Methods = Methods()
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

func (d Disk) space(size int64) int64 {
	if d.Space > 0 {
		return d.Space
	}
	return max(size/10, 64<<20)
}

// Take snapshots the disks of one host together. It fails only when ctx
// ends or a disk cannot be opened; a disk no method can snapshot is read
// live and makes the set not consistent, with a note saying why.
func Take(ctx context.Context, disks []Disk, opt Options) (*Set, error) {
	opt.defaults()
	set := &Set{Consistent: true}
	pend := make([]Pending, len(disks))
	var notes []string
	for i, d := range disks {
		abs, err := filepath.Abs(d.Source)
		if err != nil {
			return nil, err
		}
		d.Source = abs
		disks[i] = d
		if _, err := os.Stat(d.Source); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		var why []string
		for _, m := range opt.Methods {
			p, err := m.Prepare(ctx, d, opt)
			if err == nil {
				pend[i] = p
				break
			}
			if !errors.Is(err, ErrUnsupported) {
				opt.Logf("snapshot: %s of %s failed to prepare: %v", m.Name(), d.Source, err)
			}
			why = append(why, fmt.Sprintf("%s: %v", m.Name(), strings.TrimPrefix(err.Error(), ErrUnsupported.Error()+": ")))
		}
		if pend[i] == nil {
			set.Consistent = false
			notes = append(notes, fmt.Sprintf("no snapshot of %s (%s): read live", d.Source, strings.Join(why, "; ")))
		}
	}
	// Freeze the filesystems of every disk being snapshotted, except one a
	// snapshot is written to.
	var mounts []string
	var keep []string
	for _, p := range pend {
		if p != nil && p.WritesTo() != "" {
			keep = append(keep, p.WritesTo())
		}
	}
	for i, d := range disks {
		if pend[i] == nil {
			continue
		}
		if sf, ok := pend[i].(interface{ FreezesItself() bool }); ok && sf.FreezesItself() {
			notes = append(notes, fmt.Sprintf("%s: frozen by its own snapshot instant", d.Source))
			continue
		}
		ms := d.Mounts
		if ms == nil {
			var err error
			if ms, err = MountsOf(d.Source); err != nil {
				opt.Logf("snapshot: mounts of %s: %v", d.Source, err)
			}
		}
		for _, m := range ms {
			if sameFS(m, keep) {
				set.Consistent = false
				notes = append(notes, fmt.Sprintf("%s not frozen: a snapshot is written to it", m))
				continue
			}
			mounts = append(mounts, m)
		}
	}
	fz, err := freeze(ctx, dedupe(mounts), opt)
	if err != nil {
		set.Consistent = false
		notes = append(notes, fmt.Sprintf("could not freeze: %v", err))
		// Crash-consistent snapshots are still better than live reads:
		// take them unfrozen, but say the set is not consistent.
		fz = &frozen{}
	}
	views := make([]*View, len(disks))
	var takeErrs []string
	func() {
		defer fz.thaw()
		tctx, cancel := context.WithTimeout(ctx, opt.FreezeFor/2)
		defer cancel()
		for i, p := range pend {
			if p == nil {
				continue
			}
			v, err := p.Take(tctx)
			if err != nil {
				p.Abort(context.WithoutCancel(ctx))
				pend[i] = nil
				takeErrs = append(takeErrs, fmt.Sprintf("snapshot of %s failed: %v: read live", disks[i].Source, err))
				continue
			}
			views[i] = v
		}
	}()
	set.Frozen = fz.mounts
	if len(takeErrs) > 0 {
		set.Consistent = false
		notes = append(notes, takeErrs...)
	}
	for i, d := range disks {
		if views[i] == nil {
			views[i] = &View{Disk: d, Path: d.Source}
		}
	}
	set.Views = views
	if set.Consistent {
		what := "no mounted filesystem to freeze"
		if len(set.Frozen) > 0 {
			what = "froze " + strings.Join(set.Frozen, ", ")
		}
		notes = append([]string{fmt.Sprintf("%s (%s)", what, set.Methods())}, notes...)
	}
	set.Note = strings.Join(notes, "; ")
	if err := ctx.Err(); err != nil {
		set.Release(context.WithoutCancel(ctx))
		return nil, err
	}
	return set, nil
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
