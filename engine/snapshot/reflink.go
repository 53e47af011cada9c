package snapshot

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	btrfsMagic = 0x9123683E
	xfsMagic   = 0x58465342
)

var seq atomic.Int64

// uniq names a snapshot artefact of this process.
func uniq(base string) string {
	return fmt.Sprintf(".ferry-snap-%s-%d-%d", base, os.Getpid(), seq.Add(1))
}

func fsType(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Type), nil
}

// fsUsed is the bytes in use on the filesystem holding path.
func fsUsed(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize, nil
}

// divergence reports ErrFilled once the filesystem holding path has used
// more than space bytes since the snapshot: the copy-on-write cost of the
// source diverging from a snapshot that shares its extents. Releasing the
// snapshot gives that space back before the filesystem fills.
func divergence(path string, space int64) func() error {
	base, err := fsUsed(path)
	return func() error {
		if err != nil {
			return nil
		}
		now, err := fsUsed(path)
		if err != nil {
			return fmt.Errorf("%w: the filesystem holding the snapshot is gone: %v", ErrFilled, err)
		}
		if now-base > space {
			return fmt.Errorf("%w: the source diverged by %d MiB since the snapshot, more than its %d MiB of space", ErrFilled, (now-base)>>20, space>>20)
		}
		return nil
	}
}

// Reflink snapshots an image file on btrfs or xfs with a reflink copy
// (FICLONE) next to it: instant, sharing every extent until the source is
// written.
type Reflink struct{}

func (Reflink) Name() string { return "reflink" }

func (Reflink) Prepare(ctx context.Context, d Disk, opt Options) (Pending, error) {
	st, err := os.Stat(d.Source)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not an image file", ErrUnsupported, d.Source)
	}
	t, err := fsType(d.Source)
	if err != nil {
		return nil, err
	}
	if t != btrfsMagic && t != xfsMagic {
		return nil, fmt.Errorf("%w: the filesystem holding %s has no reflinks (not btrfs or xfs)", ErrUnsupported, d.Source)
	}
	dst := filepath.Join(filepath.Dir(d.Source), uniq(filepath.Base(d.Source)))
	return &reflinkSnap{d: d, dst: dst, space: d.space(st.Size())}, nil
}

type reflinkSnap struct {
	d     Disk
	dst   string
	space int64
}

func (r *reflinkSnap) WritesTo() string { return filepath.Dir(r.dst) }

func (r *reflinkSnap) Take(ctx context.Context) (*View, error) {
	src, err := os.Open(r.d.Source)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := os.OpenFile(r.dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	if err := unix.IoctlFileClone(int(dst.Fd()), int(src.Fd())); err != nil {
		os.Remove(r.dst)
		return nil, fmt.Errorf("reflink copy of %s: %w", r.d.Source, err)
	}
	return &View{Disk: r.d, Path: r.dst, Method: "reflink", check: divergence(r.dst, r.space),
		release: func(context.Context) error { return os.Remove(r.dst) }}, nil
}

func (r *reflinkSnap) Abort(context.Context) error {
	os.Remove(r.dst)
	return nil
}

// BtrfsSubvolume snapshots the btrfs subvolume that holds an image file
// (read-only, `btrfs subvolume snapshot -r`), when the file's directory is
// the subvolume's root; the view is the file inside the snapshot.
type BtrfsSubvolume struct{}

func (BtrfsSubvolume) Name() string { return "btrfs-subvolume" }

func (BtrfsSubvolume) Prepare(ctx context.Context, d Disk, opt Options) (Pending, error) {
	st, err := os.Stat(d.Source)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not an image file", ErrUnsupported, d.Source)
	}
	dir := filepath.Dir(d.Source)
	if t, err := fsType(dir); err != nil || t != btrfsMagic {
		return nil, fmt.Errorf("%w: %s is not on btrfs", ErrUnsupported, d.Source)
	}
	var ds unix.Stat_t
	if err := unix.Stat(dir, &ds); err != nil || ds.Ino != 256 {
		return nil, fmt.Errorf("%w: %s is not the root of a btrfs subvolume", ErrUnsupported, dir)
	}
	if _, err := exec.LookPath("btrfs"); err != nil {
		return nil, fmt.Errorf("%w: btrfs-progs is not installed", ErrUnsupported)
	}
	// Inside the subvolume itself: always on the same filesystem, and a
	// snapshot shows a nested one as an empty directory.
	dst := filepath.Join(dir, uniq(filepath.Base(d.Source)))
	return &subvolSnap{d: d, subvol: dir, dst: dst, space: d.space(st.Size())}, nil
}

type subvolSnap struct {
	d           Disk
	subvol, dst string
	space       int64
}

func (s *subvolSnap) WritesTo() string { return s.subvol }

func (s *subvolSnap) Take(ctx context.Context) (*View, error) {
	if out, err := exec.CommandContext(ctx, "btrfs", "subvolume", "snapshot", "-r", s.subvol, s.dst).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("btrfs subvolume snapshot: %v: %s", err, strings.TrimSpace(string(out)))
	}
	path := filepath.Join(s.dst, filepath.Base(s.d.Source))
	return &View{Disk: s.d, Path: path, Method: "btrfs-subvolume", check: divergence(s.dst, s.space),
		release: func(ctx context.Context) error { return s.Abort(ctx) }}, nil
}

func (s *subvolSnap) Abort(ctx context.Context) error {
	if _, err := os.Stat(s.dst); err != nil {
		return nil
	}
	if out, err := exec.CommandContext(ctx, "btrfs", "subvolume", "delete", s.dst).CombinedOutput(); err != nil {
		return fmt.Errorf("btrfs subvolume delete %s: %v: %s", s.dst, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// allocated is the bytes a file occupies on its filesystem.
func allocated(st os.FileInfo) int64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Blocks * 512
	}
	return st.Size()
}
