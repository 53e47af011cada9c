package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

// Provider is the local cloud as the registry sees it: every local cloud
// account is the one data directory Dir, owned by one process at a time.
type Provider struct {
	Dir     string
	Options Options

	mu   sync.Mutex
	lock *os.File
	drv  *Driver
}

var _ cloud.Provider = (*Provider)(nil)

// Name implements cloud.Provider.
func (p *Provider) Name() string { return "local" }

// Open implements cloud.Provider: the first call takes Dir/owner.lock for
// the life of the process and opens the Driver; later calls return it.
// Errors: ErrConflict when another process holds the lock, New's errors.
func (p *Provider) Open(ctx context.Context, _ cloud.Account) (cloud.Driver, error) {
	return p.Driver()
}

// Driver is Open with the concrete type (the in-process gateway writes the
// disks' image files, DiskPath).
func (p *Provider) Driver() (*Driver, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drv != nil {
		return p.drv, nil
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("local cloud: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(p.Dir, "owner.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local cloud: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("local cloud %s: %w: it is owned by another process on this data directory", p.Dir, cloud.ErrConflict)
		}
		return nil, fmt.Errorf("local cloud: lock %s: %w", lock.Name(), err)
	}
	d, err := New(p.Dir, p.Options)
	if err != nil {
		lock.Close()
		return nil, err
	}
	p.lock, p.drv = lock, d
	return d, nil
}

// Close closes the Driver and releases the lock.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drv != nil {
		p.drv.Close()
		p.drv = nil
	}
	if p.lock != nil {
		p.lock.Close()
		p.lock = nil
	}
	return nil
}

// minFreeBytes is the free space below which the check fails: less than
// this cannot hold one ordinary system disk.
const minFreeBytes = 1 << 30

// Check implements cloud.Provider with real checks on Dir: a file can be
// written and fsynced, a sparse file stays sparse (target disks are sparse
// files), and there is room for a system disk. It needs no lock.
func (p *Provider) Check(ctx context.Context, _ cloud.Account) []cloud.Check {
	var out []cloud.Check
	add := func(name string, err error, okMsg string) {
		if err != nil {
			out = append(out, cloud.Check{Name: name, Message: err.Error()})
			return
		}
		out = append(out, cloud.Check{Name: name, Passed: true, Message: okMsg})
	}
	dir := p.Dir
	add("directory", checkWritable(dir), dir+" is writable")
	sparse, err := checkSparse(dir)
	add("sparse files", err, sparse)
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		add("free space", fmt.Errorf("cannot read free space of %s: %v", dir, err), "")
	} else if free := int64(st.Bavail) * int64(st.Bsize); free < minFreeBytes {
		add("free space", fmt.Errorf("only %s free in %s; at least %s needed", bytesText(free), dir, bytesText(minFreeBytes)), "")
	} else {
		add("free space", nil, bytesText(free)+" free")
	}
	return out
}

func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create %s: %v", dir, err)
	}
	f, err := os.CreateTemp(dir, ".check-*")
	if err != nil {
		return fmt.Errorf("cannot write in %s: %v", dir, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(make([]byte, 64<<10)); err != nil {
		return fmt.Errorf("cannot write in %s: %v", dir, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cannot fsync in %s: %v", dir, err)
	}
	return nil
}

// checkSparse makes a 1 GiB file with one written block and confirms the
// filesystem allocated only that block.
func checkSparse(dir string) (string, error) {
	f, err := os.CreateTemp(dir, ".sparse-*")
	if err != nil {
		return "", fmt.Errorf("cannot create a test file in %s: %v", dir, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := f.Truncate(1 << 30); err != nil {
		return "", fmt.Errorf("cannot size a test file: %v", err)
	}
	if _, err := f.WriteAt([]byte("ferry"), 512<<20); err != nil {
		return "", fmt.Errorf("cannot write a test file: %v", err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return "", fmt.Errorf("cannot stat a test file: %v", err)
	}
	if used := st.Blocks * 512; used > 64<<20 {
		return "", fmt.Errorf("the filesystem of %s does not keep files sparse (%s allocated for 5 bytes written)", dir, bytesText(used))
	}
	return "a 1 GiB file with one written block allocates " + bytesText(st.Blocks*512), nil
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
