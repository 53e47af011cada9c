package wire

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
)

func testBlocks() [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	text := bytes.Repeat([]byte("ferry moves disks "), 4000)
	return [][]byte{random, text, make([]byte, 4096), {1}}
}

func encodeStream(t testing.TB, blocks [][]byte) []byte {
	var buf bytes.Buffer
	enc := NewEncoder(zstd.SpeedFastest)
	var off uint64
	for _, b := range blocks {
		f, _ := enc.Encode(off, b, Sum(b), nil)
		if _, err := Write(&buf, &f); err != nil {
			t.Fatal(err)
		}
		off += uint64(len(b))
	}
	if err := WriteEnd(&buf, uint64(len(blocks))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decodeAll(stream []byte) ([][]byte, error) {
	r := NewReader(bytes.NewReader(stream))
	dec := NewDecoder()
	var out [][]byte
	for {
		f, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		b, err := dec.Decode(f, nil)
		if err != nil {
			return out, err
		}
		if f.Kind == KindZero {
			b = make([]byte, f.Length)
		}
		out = append(out, append([]byte(nil), b...))
	}
}

func TestRoundTrip(t *testing.T) {
	blocks := testBlocks()
	got, err := decodeAll(encodeStream(t, blocks))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(blocks, got); diff != "" {
		t.Errorf("blocks (-want +got):\n%s", diff)
	}
}

func TestKinds(t *testing.T) {
	enc := NewEncoder(zstd.SpeedFastest)
	var kinds []Kind
	for _, b := range testBlocks() {
		f, _ := enc.Encode(0, b, Sum(b), nil)
		kinds = append(kinds, f.Kind)
	}
	if diff := cmp.Diff([]Kind{KindRaw, KindZstd, KindZero, KindRaw}, kinds); diff != "" {
		t.Errorf("kinds (-want +got):\n%s", diff)
	}
}

func TestDamage(t *testing.T) {
	stream := encodeStream(t, testBlocks())
	tests := []struct {
		name string
		mut  func([]byte) []byte
		want error
	}{
		{"payload bit flip", func(b []byte) []byte { b[HeaderSize+100] ^= 1; return b }, ErrHashMismatch},
		{"header bit flip", func(b []byte) []byte { b[10] ^= 1; return b }, ErrCorrupt},
		{"cut inside payload", func(b []byte) []byte { return b[:HeaderSize+10] }, ErrTruncated},
		{"cut inside header", func(b []byte) []byte { return b[:20] }, ErrTruncated},
		{"no end frame", func(b []byte) []byte { return b[:len(b)-HeaderSize] }, ErrTruncated},
		{"empty", func(b []byte) []byte { return nil }, ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeAll(tc.mut(bytes.Clone(stream)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestZeroHashReserved(t *testing.T) {
	if Sum(make([]byte, 100)) != (Hash{}) {
		t.Fatal("zero block must hash to the zero Hash")
	}
	if Sum([]byte{0, 0, 1}).IsZero() {
		t.Fatal("data block hashed to the zero Hash")
	}
}

// FuzzReader feeds arbitrary bytes to the decoder: it must never panic, never
// return a block whose hash does not match, and never allocate beyond the
// frame limits.
func FuzzReader(f *testing.F) {
	stream := encodeStream(f, testBlocks())
	f.Add(stream)
	f.Add(stream[:HeaderSize+7])
	f.Add([]byte{})
	f.Add(encodeStream(f, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		dec := NewDecoder()
		for {
			fr, err := r.Next()
			if err != nil {
				return
			}
			b, err := dec.Decode(fr, nil)
			if err != nil {
				continue
			}
			if fr.Kind != KindZero && (len(b) != int(fr.Length) || Sum(b) != fr.Hash) {
				t.Fatalf("decoded a block that fails its own checks")
			}
		}
	})
}
