package engine

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"testing"

	"github.com/ferry-migrate/ferry/engine/wire"
	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
	"github.com/zeebo/xxh3"
)

// The block hash was chosen by BenchmarkBlockHash: on this machine's cores
// xxh3-128 hashes a 1 MiB block an order of magnitude faster than BLAKE3
// (see docs/bench/engine.md), and the hash only has to detect change and
// transport damage (TLS and the credential handle adversaries).
func BenchmarkBlockHash(b *testing.B) {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*7 + i>>9)
	}
	zero := make([]byte, 1<<20)
	for _, h := range []struct {
		name string
		fn   func([]byte)
	}{
		{"xxh3-128", func(p []byte) { xxh3.Hash128(p) }},
		{"blake3-256", func(p []byte) { blake3.Sum256(p) }},
		{"sha256", func(p []byte) { sha256.Sum256(p) }},
		{"zero-check(all-zero block)", func(p []byte) { wire.IsZeroBlock(zero) }},
	} {
		b.Run(h.name, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				h.fn(buf)
			}
		})
	}
}

func BenchmarkZstdBlock(b *testing.B) {
	buf := make([]byte, 1<<20)
	copy(buf, []byte("a fairly compressible text block "))
	for i := 33; i < len(buf); i++ {
		buf[i] = buf[i-33] ^ byte(i>>12)
	}
	enc := wire.NewEncoder(zstd.SpeedFastest)
	var dst []byte
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		_, dst = enc.Encode(0, buf, wire.SumData(buf), dst)
	}
}

// BenchmarkSync measures a full and an incremental in-process sync of a
// 256 MiB half-empty image over TLS on loopback.
func BenchmarkSync(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(b, src, 256<<20, 1)
	for _, mode := range []string{"full", "incremental"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(256 << 20)
			for b.Loop() {
				b.StopTimer()
				g := startGateway(b, GatewayOptions{Create: true, Logf: func(string, ...any) {}})
				opt := g.syncOptions(b, src, "b1")
				opt.BlockSize = 1 << 20
				opt.Logf = nil
				opt.StateDir = b.TempDir()
				if mode == "incremental" {
					runSyncB(b, opt)
					scribble(b, src, 3, 5)
				}
				b.StartTimer()
				runSyncB(b, opt)
			}
		})
	}
}

func runSyncB(b *testing.B, opt SyncOptions) {
	s, err := NewSyncer(opt)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
}
