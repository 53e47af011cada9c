package local

import (
	"math/rand/v2"
	"testing"

	"github.com/zeebo/blake3"
	"github.com/zeebo/xxh3"
)

// BenchmarkBlockHash compares the CAS key candidates on one 1 MiB block.
func BenchmarkBlockHash(b *testing.B) {
	buf := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{5}).Read(buf)
	b.Run("xxh3-128", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			hashSink ^= xxh3.Hash128(buf).Lo
		}
	})
	b.Run("blake3-256", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			sum := blake3.Sum256(buf)
			hashSink ^= uint64(sum[0])
		}
	})
}

var hashSink uint64
