package engine

import (
	"bytes"
	"testing"

	"github.com/ferry-migrate/ferry/engine/wire"
)

// FuzzReadManifest: a gateway reads manifests from agents, so damaged or
// hostile input must give an error, never a panic or a manifest whose shape
// contradicts its header.
func FuzzReadManifest(f *testing.F) {
	m := NewManifest(5<<20+3, 64<<10)
	m.Hashes[3] = wire.SumData([]byte("x"))
	var buf bytes.Buffer
	m.WriteTo(&buf)
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:40])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ReadManifest(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(got.Hashes) != blocksFor(got.Size, got.BlockSize) || CheckBlockSize(got.BlockSize, got.Size) != nil {
			t.Fatalf("accepted an inconsistent manifest: size %d block %d entries %d", got.Size, got.BlockSize, len(got.Hashes))
		}
	})
}
