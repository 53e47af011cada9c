package ecsemu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// cloneOrCopy makes to a copy-on-write copy of from, size bytes long:
// a reflink (FICLONE) where the filesystem shares extents (Btrfs, XFS),
// else a sparse copy of from's data extents only (SEEK_DATA/SEEK_HOLE,
// copy_file_range). It writes a temporary file under dir/tmp and renames it
// into place, so a crash leaves no half copy under the final name. It
// returns the bytes the copy allocated (0 for a reflink) and the method.
func cloneOrCopy(from, to string, size int64, dir string) (int64, string, error) {
	src, err := os.Open(from)
	if err != nil {
		return 0, "", err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return 0, "", err
	}
	tmp, err := os.CreateTemp(filepath.Join(dir, "tmp"), filepath.Base(to)+".*")
	if err != nil {
		return 0, "", err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	method := "reflink"
	if err := unix.IoctlFileClone(int(tmp.Fd()), int(src.Fd())); err != nil {
		method = "copy"
		if err := sparseCopy(tmp, src, st.Size()); err != nil {
			return 0, "", fmt.Errorf("copy %s: %w", from, err)
		}
	}
	if size < st.Size() {
		size = st.Size()
	}
	if err := tmp.Truncate(size); err != nil {
		return 0, "", err
	}
	if err := tmp.Sync(); err != nil {
		return 0, "", err
	}
	var stored int64
	if method == "copy" {
		if fi, err := tmp.Stat(); err == nil {
			if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
				stored = sys.Blocks * 512
			}
		}
	}
	if err := tmp.Close(); err != nil {
		return 0, "", err
	}
	if err := os.Rename(tmp.Name(), to); err != nil {
		return 0, "", err
	}
	ok = true
	return stored, method, nil
}

// sparseCopy copies src's data extents into dst at the same offsets.
func sparseCopy(dst, src *os.File, size int64) error {
	fd := int(src.Fd())
	off := int64(0)
	for off < size {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // only a hole is left
		}
		if err != nil {
			return copyRange(dst, src, off, size-off) // no SEEK_DATA here
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			end = size
		}
		if err := copyRange(dst, src, start, end-start); err != nil {
			return err
		}
		off = end
	}
	return nil
}

// copyRange copies n bytes at off, in the kernel where it can.
func copyRange(dst, src *os.File, off, n int64) error {
	for n > 0 {
		roff, woff := off, off
		c, err := unix.CopyFileRange(int(src.Fd()), &roff, int(dst.Fd()), &woff, int(min(n, 1<<30)), 0)
		if err != nil {
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
				_, err := io.Copy(io.NewOffsetWriter(dst, off), io.NewSectionReader(src, off, n))
				return err
			}
			return err
		}
		if c == 0 {
			return io.ErrUnexpectedEOF
		}
		off += int64(c)
		n -= int64(c)
	}
	return nil
}
