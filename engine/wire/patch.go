package wire

import (
	"fmt"
	"math/bits"

	"github.com/zeebo/xxh3"
)

// Protocol is the newest data-path protocol this package speaks. Version 1
// has the zero, raw, zstd and end frames; version 2 adds patch and copy
// frames (and the gateway's "have" query). An agent uses version 2 frames
// only after the gateway's session reply announced version 2, so that an
// old gateway never sees a kind it does not know and an old agent keeps
// working against a new gateway.
const Protocol = 2

const (
	// KindPatch carries only the changed sub-blocks of a block the target
	// already holds: the payload names the base block's hash, a bitmap of
	// the sub-blocks included and their bytes (raw or one zstd frame). The
	// receiver reads its copy of the block, checks it hashes to the base,
	// applies the sub-blocks and checks the result against the frame hash;
	// either check failing rejects the frame, and the sender re-sends the
	// whole block. Protocol 2.
	KindPatch Kind = 5
	// KindCopy carries no payload: the block with this hash is one the
	// receiver holds elsewhere (its content index said so), and it copies it
	// locally after re-hashing the copy source. A source that no longer
	// hashes right rejects the frame, and the sender sends the data.
	// Protocol 2.
	KindCopy Kind = 6
)

// SubBlock is the granularity of patch frames: a changed block travels as
// its changed 4 KiB sub-blocks, the unit in which filesystems and databases
// write.
const SubBlock = 4096

// SubBlocks returns how many sub-blocks a block of n bytes has (the last one
// may be short).
func SubBlocks(n int) int { return (n + SubBlock - 1) / SubBlock }

// SubSum is the 32-bit hash of one sub-block: 0 for an all-zero sub-block,
// never 0 otherwise. It only has to tell "probably unchanged" from
// "changed": a false "unchanged" is caught by the block hash a patch frame
// carries, which the receiver checks after applying it, so the weak hash
// costs at most a re-send, never a wrong block.
func SubSum(b []byte) uint32 {
	if IsZeroBlock(b) {
		return 0
	}
	s := uint32(xxh3.Hash(b))
	if s == 0 {
		s = 1
	}
	return s
}

// SubSums fills dst (grown as needed) with the SubSum of each sub-block of
// block and returns it.
func SubSums(block []byte, dst []uint32) []uint32 {
	n := SubBlocks(len(block))
	if cap(dst) < n {
		dst = make([]uint32, n)
	}
	dst = dst[:n]
	for i := range n {
		dst[i] = SubSum(block[i*SubBlock : min(len(block), (i+1)*SubBlock)])
	}
	return dst
}

// patchHeader is the fixed part of a patch payload: flags (bit 0: the data
// is one zstd frame), the sub-block size as a shift (12), two reserved
// bytes, and the 16-byte hash of the base block; the bitmap follows, then
// the data.
const (
	patchHeader   = 20
	patchZstd     = 1
	subBlockShift = 12
)

// BitmapLen is the size of a patch bitmap for a block of n bytes.
func BitmapLen(n int) int { return (SubBlocks(n) + 7) / 8 }

// PatchSize is how many data bytes a patch of block length n with bitmap bm
// carries before compression.
func PatchSize(n int, bm []byte) int {
	total := 0
	for i := range SubBlocks(n) {
		if bm[i/8]&(1<<(i%8)) != 0 {
			total += min(n, (i+1)*SubBlock) - i*SubBlock
		}
	}
	return total
}

// EncodePatch builds a patch frame for block (the new content, hash h) over
// base (the hash of the block the receiver holds): the sub-blocks set in bm
// travel, zstd-compressed when that shrinks them. scratch and dst are reused
// buffers; the frame's Payload aliases dst.
func (e *Encoder) EncodePatch(offset uint64, block []byte, h, base Hash, bm []byte, scratch, dst []byte) (Frame, []byte, []byte) {
	scratch = scratch[:0]
	for i := range SubBlocks(len(block)) {
		if bm[i/8]&(1<<(i%8)) != 0 {
			scratch = append(scratch, block[i*SubBlock:min(len(block), (i+1)*SubBlock)]...)
		}
	}
	bl := BitmapLen(len(block))
	dst = append(dst[:0], make([]byte, patchHeader+bl)...)
	dst[1] = subBlockShift
	copy(dst[4:20], base[:])
	copy(dst[patchHeader:], bm[:bl])
	withZ := e.z.EncodeAll(scratch, dst)
	if len(withZ)-len(dst) < len(scratch)-len(scratch)/16 {
		dst = withZ
		dst[0] = patchZstd
	} else {
		dst = append(withZ[:patchHeader+bl], scratch...)
	}
	return Frame{Kind: KindPatch, Offset: offset, Length: uint32(len(block)), Hash: h, Payload: dst}, scratch, dst
}

// ApplyPatch applies patch frame f to cur, the receiver's copy of the block
// (len(cur) == f.Length), in place. It checks that cur hashes to the base
// the patch was made for and that the result hashes to f.Hash; a failure of
// either is ErrHashMismatch (cur is then garbage). On success it returns the
// bitmap of the sub-blocks it changed, so that only those need writing.
// scratch is reused for decompression.
func (d *Decoder) ApplyPatch(f *Frame, cur []byte, scratch []byte) (bm []byte, _ []byte, err error) {
	n := int(f.Length)
	bl := BitmapLen(n)
	p := f.Payload
	if len(cur) != n {
		return nil, scratch, fmt.Errorf("%w: patch for a %d-byte block applied to %d bytes", ErrCorrupt, n, len(cur))
	}
	if len(p) < patchHeader+bl || p[0]&^patchZstd != 0 || p[1] != subBlockShift || p[2] != 0 || p[3] != 0 {
		return nil, scratch, fmt.Errorf("%w: malformed patch header for the block at offset %d", ErrCorrupt, f.Offset)
	}
	var base Hash
	copy(base[:], p[4:20])
	bm = p[patchHeader : patchHeader+bl]
	set := 0
	for i, b := range bm {
		set += bits.OnesCount8(b)
		if i == bl-1 {
			if extra := SubBlocks(n) - 8*(bl-1); extra < 8 && b>>extra != 0 {
				return nil, scratch, fmt.Errorf("%w: patch bitmap names sub-blocks past the end of the block at offset %d", ErrCorrupt, f.Offset)
			}
		}
	}
	if set == 0 {
		return nil, scratch, fmt.Errorf("%w: empty patch for the block at offset %d", ErrCorrupt, f.Offset)
	}
	data := p[patchHeader+bl:]
	want := PatchSize(n, bm)
	if p[0]&patchZstd != 0 {
		out, err := d.z.DecodeAll(data, scratch[:0])
		if err != nil {
			return nil, scratch, fmt.Errorf("%w: patch for the block at offset %d does not decompress: %v", ErrHashMismatch, f.Offset, err)
		}
		scratch, data = out, out
	}
	if len(data) != want {
		return nil, scratch, fmt.Errorf("%w: patch for the block at offset %d carries %d bytes, its bitmap says %d", ErrHashMismatch, f.Offset, len(data), want)
	}
	if Sum(cur) != base {
		return nil, scratch, fmt.Errorf("%w: the target's block at offset %d is not the patch's base", ErrHashMismatch, f.Offset)
	}
	for i := range SubBlocks(n) {
		if bm[i/8]&(1<<(i%8)) != 0 {
			k := copy(cur[i*SubBlock:min(n, (i+1)*SubBlock)], data)
			data = data[k:]
		}
	}
	if Sum(cur) != f.Hash {
		return nil, scratch, fmt.Errorf("%w: block at offset %d after its patch", ErrHashMismatch, f.Offset)
	}
	return bm, scratch, nil
}

// Runs calls fn with the byte ranges [from, to) of block length n covered by
// consecutive set bits of bm, so that a receiver writes each run of changed
// sub-blocks with one call.
func Runs(n int, bm []byte, fn func(from, to int) error) error {
	start := -1
	for i := 0; i <= SubBlocks(n); i++ {
		set := i < SubBlocks(n) && bm[i/8]&(1<<(i%8)) != 0
		switch {
		case set && start < 0:
			start = i
		case !set && start >= 0:
			if err := fn(start*SubBlock, min(n, i*SubBlock)); err != nil {
				return err
			}
			start = -1
		}
	}
	return nil
}

// AppendHashes appends the 16-byte hashes to dst: the body of a "have"
// query.
func AppendHashes(dst []byte, hs []Hash) []byte {
	for _, h := range hs {
		dst = append(dst, h[:]...)
	}
	return dst
}

// ParseHashes reads a "have" query body.
func ParseHashes(b []byte) ([]Hash, error) {
	if len(b)%16 != 0 {
		return nil, fmt.Errorf("%w: a hash list of %d bytes is not a multiple of 16", ErrCorrupt, len(b))
	}
	out := make([]Hash, len(b)/16)
	for i := range out {
		copy(out[i][:], b[16*i:])
	}
	return out, nil
}
