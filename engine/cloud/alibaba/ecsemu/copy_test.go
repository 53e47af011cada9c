package ecsemu

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// sparseDisk makes a size-byte sparse file holding n random MiB spread
// over it, and returns its path.
func sparseDisk(tb testing.TB, dir string, size int64, mib int) string {
	tb.Helper()
	p := filepath.Join(dir, "disk.img")
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := range mib {
		rand.Read(buf)
		if _, err := f.WriteAt(buf, int64(i)*(size/int64(mib))); err != nil {
			tb.Fatal(err)
		}
	}
	return p
}

func TestCloneOrCopyKeepsDataAndHoles(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "tmp"), 0o700)
	src := sparseDisk(t, dir, 4<<30, 16)
	dst := filepath.Join(dir, "snap.img")
	stored, method, err := cloneOrCopy(src, dst, 4<<30, dir)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.Open(src)
	b, _ := os.Open(dst)
	defer a.Close()
	defer b.Close()
	for off := int64(0); off < 4<<30; off += 256 << 20 {
		x, y := make([]byte, 1<<20), make([]byte, 1<<20)
		io.ReadFull(io.NewSectionReader(a, off, 1<<20), x)
		io.ReadFull(io.NewSectionReader(b, off, 1<<20), y)
		if !bytes.Equal(x, y) {
			t.Fatalf("the copy differs at %d", off)
		}
	}
	fi, _ := b.Stat()
	if fi.Size() != 4<<30 {
		t.Errorf("copy size %d", fi.Size())
	}
	if blocks := fi.Sys().(*syscall.Stat_t).Blocks * 512; blocks > 20<<20 {
		t.Errorf("the copy of 16 MiB of data allocates %d bytes (%s)", blocks, method)
	}
	if method == "copy" && (stored < 16<<20 || stored > 20<<20) {
		t.Errorf("stored %d for 16 MiB copied", stored)
	}
	left, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	if len(left) != 0 {
		t.Errorf("left in tmp: %v", left)
	}
}

// BenchmarkSnapshotCopy: what CreateSnapshot costs the emulator for a
// 20 GiB disk holding 256 MiB, against reading the whole disk.
func BenchmarkSnapshotCopy(b *testing.B) {
	dir := b.TempDir()
	os.Mkdir(filepath.Join(dir, "tmp"), 0o700)
	src := sparseDisk(b, dir, 20<<30, 256)
	b.Run("cloneOrCopy", func(b *testing.B) {
		for i := range b.N {
			dst := filepath.Join(dir, "snap.img")
			_, method, err := cloneOrCopy(src, dst, 20<<30, dir)
			if err != nil {
				b.Fatal(err)
			}
			if i == 0 {
				b.Logf("method %s", method)
			}
			os.Remove(dst)
		}
		b.SetBytes(256 << 20)
	})
	b.Run("whole-read", func(b *testing.B) {
		for range b.N {
			f, _ := os.Open(src)
			io.Copy(io.Discard, f)
			f.Close()
		}
		b.SetBytes(256 << 20)
	})
}
