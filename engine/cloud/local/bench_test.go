package local

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"
)

// Benchmarks (not part of `go test`; run with -bench, see docs/bench/cloud-local.md).
// FERRY_BENCH_DIR picks the filesystem (default: the test temp dir).

const benchSize = 1 << 30

func benchDir(b *testing.B) string {
	if d := os.Getenv("FERRY_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "ferry-bench-*")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// benchDisk makes a 1 GiB disk with 1 MiB blocks: every other block holds
// data (half of it random, half compressible text-like bytes), the rest are
// holes, as the gateway leaves never-sent zero blocks.
func benchDisk(b *testing.B, mode Mode, blockSize ...int) (*Driver, string) {
	b.Helper()
	bs := 0
	if len(blockSize) > 0 {
		bs = blockSize[0]
	}
	d, err := New(benchDir(b), Options{Mode: mode, BlockSize: bs})
	if err != nil {
		b.Skipf("mode %s: %v", mode, err)
	}
	b.Cleanup(func() { d.Close() })
	path := mustDisk(b, d, "bench", benchSize)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, mib)
	for blk := int64(0); blk < benchSize/mib; blk += 2 {
		r.Read(buf)
		if blk%4 == 2 {
			for i := range buf {
				buf[i] = 'a' + buf[i]%8
			}
		}
		if _, err := f.WriteAt(buf, blk*mib); err != nil {
			b.Fatal(err)
		}
	}
	return d, path
}

// changeBlocks rewrites n data blocks scattered over the disk.
func changeBlocks(b *testing.B, path string, n int, seed uint64) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(seed, 1))
	buf := make([]byte, 4096)
	for i := 0; i < n; i++ {
		blk := int64(r.IntN(benchSize/mib/2)) * 2 // a data block
		for j := range buf {
			buf[j] = byte(r.Uint32())
		}
		if _, err := f.WriteAt(buf, blk*mib+int64(r.IntN(mib/4096))*4096); err != nil {
			b.Fatal(err)
		}
	}
}

func benchFirstPoint(b *testing.B, mode Mode) {
	ctx := context.Background()
	d, _ := benchDisk(b, mode)
	b.SetBytes(benchSize)
	var stored int64
	for b.Loop() {
		p, err := d.CreateRecoveryPoint(ctx, "bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		stored = p.StoredBytes
		b.StopTimer()
		if err := d.DeleteRecoveryPoint(ctx, p.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(stored)/(1<<20), "stored-MiB")
}

func BenchmarkFirstPointCAS(b *testing.B)     { benchFirstPoint(b, ModeCAS) }
func BenchmarkFirstPointReflink(b *testing.B) { benchFirstPoint(b, ModeReflink) }

// BenchmarkIncrementalPointCAS: 1% of the data blocks change (one 4 KiB write
// each) between points; stored-MiB is what the new point adds.
func BenchmarkIncrementalPointCAS(b *testing.B)    { benchIncremental(b, 0) }
func BenchmarkIncrementalPointCAS64K(b *testing.B) { benchIncremental(b, 64<<10) }

func benchIncremental(b *testing.B, blockSize int) {
	ctx := context.Background()
	d, path := benchDisk(b, ModeCAS, blockSize)
	if _, err := d.CreateRecoveryPoint(ctx, "bench", nil); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	var stored int64
	var seed uint64
	for b.Loop() {
		b.StopTimer()
		seed++
		changeBlocks(b, path, benchSize/mib/2/100, seed)
		b.StartTimer()
		p, err := d.CreateRecoveryPoint(ctx, "bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		stored = p.StoredBytes
	}
	_, total, _ := d.StoreStats()
	b.ReportMetric(float64(stored)/(1<<20), "stored-MiB/point")
	b.ReportMetric(float64(total)/(1<<20), "store-MiB")
}

func BenchmarkMaterialiseCAS(b *testing.B)     { benchMaterialise(b, ModeCAS) }
func BenchmarkMaterialiseReflink(b *testing.B) { benchMaterialise(b, ModeReflink) }

func benchMaterialise(b *testing.B, mode Mode) {
	ctx := context.Background()
	d, _ := benchDisk(b, mode)
	p, err := d.point(mustPoint(b, d))
	if err != nil {
		b.Fatal(err)
	}
	out := benchDir(b) + "/restore.img"
	b.SetBytes(benchSize)
	for b.Loop() {
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		f.Truncate(benchSize)
		if err := d.materialise(ctx, p, f); err != nil {
			b.Fatal(err)
		}
		f.Close()
		os.Remove(out)
	}
	_ = ctx
}

func mustPoint(b *testing.B, d *Driver) string {
	p, err := d.CreateRecoveryPoint(context.Background(), "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	return p.ID
}
