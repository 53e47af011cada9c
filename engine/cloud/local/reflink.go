package local

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// ficlone is FICLONE from linux/fs.h (_IOW(0x94, 9, int)).
const ficlone = 0x40049409

// cloneFile makes dst share src's extents (a reflink). Errors from the
// kernel (EOPNOTSUPP, EXDEV, EINVAL, ENOTTY) mean "not on this filesystem".
func cloneFile(dst, src *os.File) error {
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, dst.Fd(), ficlone, src.Fd())
	if errno != 0 {
		return errno
	}
	return nil
}

// reflinkSupported probes FICLONE with two small files in dir.
func reflinkSupported(dir string) bool {
	a, err := os.CreateTemp(dir, "probe-*")
	if err != nil {
		return false
	}
	defer os.Remove(a.Name())
	defer a.Close()
	if _, err := a.Write(make([]byte, 4096)); err != nil {
		return false
	}
	b, err := os.Create(filepath.Join(dir, filepath.Base(a.Name())+".clone"))
	if err != nil {
		return false
	}
	defer os.Remove(b.Name())
	defer b.Close()
	return cloneFile(b, a) == nil
}

// Linux lseek whences for sparse files.
const (
	seekData = 3
	seekHole = 4
)

// dataExtents calls fn for each [start, end) range of f that may hold data,
// skipping holes. Filesystems without SEEK_DATA report one range.
func dataExtents(f *os.File, size int64, fn func(start, end int64) error) error {
	fd := int(f.Fd())
	off := int64(0)
	for off < size {
		start, err := syscall.Seek(fd, off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			return nil
		}
		if err != nil {
			return fn(off, size) // no SEEK_DATA: treat the rest as data
		}
		end, err := syscall.Seek(fd, start, seekHole)
		if err != nil || end > size {
			end = size
		}
		if start >= size {
			return nil
		}
		if err := fn(start, end); err != nil {
			return err
		}
		off = end
	}
	return nil
}
