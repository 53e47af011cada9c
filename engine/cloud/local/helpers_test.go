package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// clock is an injected, manually advanced clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)} }

// mustNew opens a CAS driver with 64 KiB blocks in a fresh directory.
func mustNew(tb testing.TB, dir string, c *clock) *Driver {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	if c == nil {
		c = newClock()
	}
	d, err := New(dir, Options{Clock: c.Now, BlockSize: 64 * kib, Mode: ModeCAS})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

func mustDisk(tb testing.TB, d *Driver, id string, size int64) string {
	tb.Helper()
	if _, err := d.CreateDisk(context.Background(), cloud.DiskSpec{ID: id, SizeBytes: size, MigrationID: "m1"}); err != nil {
		tb.Fatal(err)
	}
	p, err := d.DiskPath(id)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// writeBlocks pwrites random content into the given 64 KiB blocks of path,
// as a gateway would.
func writeBlocks(tb testing.TB, path string, seed uint64, blocks ...int64) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(seed, 7))
	buf := make([]byte, 64*kib)
	for _, b := range blocks {
		for i := range buf {
			buf[i] = byte(r.UintN(256))
		}
		if _, err := f.WriteAt(buf, b*64*kib); err != nil {
			tb.Fatal(err)
		}
	}
}

func fileSHA(tb testing.TB, path string) string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// materialiseSHA restores point id into a scratch file and hashes it.
func materialiseSHA(tb testing.TB, d *Driver, id string) string {
	tb.Helper()
	p, err := d.point(id)
	if err != nil {
		tb.Fatal(err)
	}
	path := tb.TempDir() + "/restore.img"
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(p.SizeBytes); err != nil {
		tb.Fatal(err)
	}
	if err := d.materialise(context.Background(), p, f); err != nil {
		tb.Fatal(err)
	}
	return fileSHA(tb, path)
}
