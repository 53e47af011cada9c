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
	var pb bytes.Buffer
	blk := make([]byte, 64<<10)
	blk[5000] = 1
	bm := make([]byte, BitmapLen(len(blk)))
	bm[0] = 2
	pf, _, _ := NewEncoder(zstd.SpeedFastest).EncodePatch(0, blk, Sum(blk), Hash{}, bm, nil, nil)
	Write(&pb, &pf)
	WriteEnd(&pb, 1)
	f.Add(pb.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		dec := NewDecoder()
		for {
			fr, err := r.Next()
			if err != nil {
				return
			}
			if fr.Kind == KindPatch {
				// A patch over a zero block of its length: whatever the bytes,
				// success means the result hashes as the frame says.
				cur := make([]byte, fr.Length)
				if _, _, err := dec.ApplyPatch(fr, cur, nil); err == nil && Sum(cur) != fr.Hash {
					t.Fatalf("applied a patch that fails its own check")
				}
				continue
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

func TestPatchRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{64 << 10, 1 << 20, 64<<10 + 1000} {
		old := make([]byte, n)
		for i := range old {
			old[i] = byte(r.Uint32())
		}
		cur := append([]byte(nil), old...)
		// Change sub-blocks 0, 3 and the last (short) one.
		last := SubBlocks(n) - 1
		for _, sb := range []int{0, 3, last} {
			for i := sb * SubBlock; i < min(n, (sb+1)*SubBlock); i++ {
				cur[i] ^= 0x5a
			}
		}
		oldSubs, newSubs := SubSums(old, nil), SubSums(cur, nil)
		bm := make([]byte, BitmapLen(n))
		for i := range newSubs {
			if oldSubs[i] != newSubs[i] {
				bm[i/8] |= 1 << (i % 8)
			}
		}
		enc := NewEncoder(zstd.SpeedFastest)
		f, _, _ := enc.EncodePatch(4096, cur, Sum(cur), Sum(old), bm, nil, nil)
		var buf bytes.Buffer
		Write(&buf, &f)
		WriteEnd(&buf, 1)
		rd := NewReader(&buf)
		got, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != KindPatch || len(got.Payload) > 3*SubBlock+100+BitmapLen(n) {
			t.Fatalf("patch of 3 sub-blocks: kind %s, %d payload bytes", got.Kind, len(got.Payload))
		}
		target := append([]byte(nil), old...)
		changed, _, err := NewDecoder().ApplyPatch(got, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(target, cur) {
			t.Fatal("patched block differs from the new block")
		}
		var runs [][2]int
		Runs(n, changed, func(a, b int) error { runs = append(runs, [2]int{a, b}); return nil })
		want := [][2]int{{0, SubBlock}, {3 * SubBlock, 4 * SubBlock}, {last * SubBlock, n}}
		if diff := cmp.Diff(want, runs); diff != "" {
			t.Errorf("runs (-want +got):\n%s", diff)
		}
		// The wrong base is refused, and so is a damaged payload.
		other := append([]byte(nil), old...)
		other[5*SubBlock] ^= 1
		if _, _, err := NewDecoder().ApplyPatch(got, other, nil); !errors.Is(err, ErrHashMismatch) {
			t.Errorf("patch over the wrong base: %v", err)
		}
		got.Payload[len(got.Payload)-1] ^= 1
		if _, _, err := NewDecoder().ApplyPatch(got, append([]byte(nil), old...), nil); !errors.Is(err, ErrHashMismatch) {
			t.Errorf("damaged patch: %v", err)
		}
	}
}

func TestCopyFrame(t *testing.T) {
	var buf bytes.Buffer
	h := SumData([]byte("x"))
	Write(&buf, &Frame{Kind: KindCopy, Offset: 1 << 20, Length: 1 << 20, Hash: h})
	WriteEnd(&buf, 1)
	f, err := NewReader(&buf).Next()
	if err != nil || f.Kind != KindCopy || f.Hash != h {
		t.Fatalf("copy frame: %+v %v", f, err)
	}
	buf.Reset()
	Write(&buf, &Frame{Kind: KindCopy, Offset: 0, Length: 4096})
	if _, err := NewReader(&buf).Next(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("copy frame with a zero hash: %v", err)
	}
}
