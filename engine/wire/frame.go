// Package wire owns the byte format of Ferry's replication data path: the
// frame that carries one block from an agent to a gateway (or into an offline
// seed file), the block hash that both ends compute, and the decoder that a
// gateway runs on untrusted input. It knows nothing about HTTP, files or
// manifests, so that the format can be fuzzed and versioned on its own.
package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/zeebo/xxh3"
)

// Kind says how a frame's payload encodes its block.
type Kind uint8

const (
	// KindZero is a block of Length zero bytes; it has no payload. Agents send
	// it only when the target is not already known to hold zeros there.
	KindZero Kind = 1
	// KindRaw carries the block's bytes as they are (used when zstd does not
	// shrink the block by at least 1/16, so the receiver skips a decompression).
	KindRaw Kind = 2
	// KindZstd carries one zstd frame that decompresses to exactly Length bytes.
	KindZstd Kind = 3
	// KindEnd closes a stream; Offset holds the number of block frames before
	// it. A stream without it was truncated.
	KindEnd Kind = 4
)

func (k Kind) String() string {
	switch k {
	case KindZero:
		return "zero"
	case KindRaw:
		return "raw"
	case KindZstd:
		return "zstd"
	case KindEnd:
		return "end"
	case KindPatch:
		return "patch"
	case KindCopy:
		return "copy"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

const (
	// HeaderSize is the fixed size of a frame header on the wire.
	HeaderSize = 44
	// MaxBlock is the largest block a frame may carry (the largest block size
	// the engine accepts).
	MaxBlock = 4 << 20
	// maxPayload bounds a zstd payload (a patch may add its header and bitmap): zstd's worst case for an
	// incompressible 4 MiB block is a little over the block itself.
	maxPayload = MaxBlock + MaxBlock/128 + 1024
	magic      = 0x4652_4d31 // "FRM1"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Hash is the 128-bit block hash (xxh3-128). It detects change and transport
// corruption; it is not a defence against an adversary, which TLS and the
// per-disk credential are. The all-zero Hash stands for an all-zero block, so
// manifests of sparse disks cost nothing to compute for holes.
type Hash [16]byte

// IsZero reports whether h is the hash that stands for an all-zero block.
func (h Hash) IsZero() bool { return h == Hash{} }

func (h Hash) String() string { return fmt.Sprintf("%x", h[:]) }

// Sum hashes one block. An all-zero block hashes to the zero Hash; callers
// that know a block is zero may skip the call.
func Sum(b []byte) Hash {
	if IsZeroBlock(b) {
		return Hash{}
	}
	return SumData(b)
}

// SumData hashes a block already known not to be all zero.
func SumData(b []byte) Hash {
	u := xxh3.Hash128(b)
	var h Hash
	binary.BigEndian.PutUint64(h[:8], u.Hi)
	binary.BigEndian.PutUint64(h[8:], u.Lo)
	if h.IsZero() { // keep the zero value reserved for zero blocks
		h[15] = 1
	}
	return h
}

var zeros = make([]byte, MaxBlock)

// IsZeroBlock reports whether every byte of b is zero. bytes.Equal against a
// zero buffer runs the runtime's vectorised memequal, several GB/s per core.
func IsZeroBlock(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// Frame is one decoded frame. Payload aliases the reader's buffer and is valid
// until the next call to Next.
type Frame struct {
	Kind    Kind
	Offset  uint64
	Length  uint32
	Hash    Hash
	Payload []byte
}

// AppendHeader appends f's header (with Length of payload set from
// len(f.Payload)) to dst.
func AppendHeader(dst []byte, f *Frame) []byte {
	var h [HeaderSize]byte
	binary.BigEndian.PutUint32(h[0:], magic)
	h[4] = byte(f.Kind)
	binary.BigEndian.PutUint64(h[8:], f.Offset)
	binary.BigEndian.PutUint32(h[16:], f.Length)
	binary.BigEndian.PutUint32(h[20:], uint32(len(f.Payload)))
	copy(h[24:40], f.Hash[:])
	binary.BigEndian.PutUint32(h[40:], crc32.Checksum(h[:40], crcTable))
	return append(dst, h[:]...)
}

// Write writes f (header then payload) to w.
func Write(w io.Writer, f *Frame) (int, error) {
	var hb [HeaderSize]byte
	h := AppendHeader(hb[:0], f)
	n, err := w.Write(h)
	if err != nil {
		return n, err
	}
	m, err := w.Write(f.Payload)
	return n + m, err
}

// WriteEnd closes a stream of count block frames.
func WriteEnd(w io.Writer, count uint64) error {
	_, err := Write(w, &Frame{Kind: KindEnd, Offset: count})
	return err
}

// ErrTruncated is returned (wrapped) when a stream ends inside a frame or
// without its end frame.
var ErrTruncated = errors.New("stream truncated")

// ErrCorrupt is returned (wrapped) when a header is malformed; the stream
// cannot be resynchronised after it.
var ErrCorrupt = errors.New("corrupt frame header")

// Reader decodes frames from an untrusted stream.
type Reader struct {
	r      *bufio.Reader
	buf    []byte
	frames uint64 // block frames read so far
	pos    int64  // stream position of the next header
	done   bool
}

// NewReader returns a Reader over r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 256<<10)}
}

// Frames returns how many block frames have been read.
func (r *Reader) Frames() uint64 { return r.frames }

// Next returns the next block frame, or io.EOF after a valid end frame. Any
// other error names the frame number and stream position where it happened.
func (r *Reader) Next() (*Frame, error) {
	if r.done {
		return nil, io.EOF
	}
	var h [HeaderSize]byte
	if n, err := io.ReadFull(r.r, h[:]); err != nil {
		if n == 0 && err == io.EOF {
			return nil, fmt.Errorf("%w: ended after %d frames without an end frame", ErrTruncated, r.frames)
		}
		return nil, fmt.Errorf("%w: inside the header of frame %d at stream byte %d: %v", ErrTruncated, r.frames, r.pos, err)
	}
	f, err := parseHeader(h[:])
	if err != nil {
		return nil, fmt.Errorf("frame %d at stream byte %d: %w", r.frames, r.pos, err)
	}
	plen := int(binary.BigEndian.Uint32(h[20:]))
	if f.Kind == KindEnd {
		if f.Offset != r.frames {
			return nil, fmt.Errorf("%w: end frame counts %d frames, stream had %d", ErrTruncated, f.Offset, r.frames)
		}
		r.done = true
		return nil, io.EOF
	}
	if cap(r.buf) < plen {
		r.buf = make([]byte, plen)
	}
	f.Payload = r.buf[:plen]
	if _, err := io.ReadFull(r.r, f.Payload); err != nil {
		return nil, fmt.Errorf("%w: inside the payload of frame %d (block at offset %d): %v", ErrTruncated, r.frames, f.Offset, err)
	}
	r.pos += int64(HeaderSize + plen)
	r.frames++
	return f, nil
}

func parseHeader(h []byte) (*Frame, error) {
	if binary.BigEndian.Uint32(h[0:]) != magic {
		return nil, fmt.Errorf("%w: bad magic %#x", ErrCorrupt, binary.BigEndian.Uint32(h[0:]))
	}
	if got, want := binary.BigEndian.Uint32(h[40:]), crc32.Checksum(h[:40], crcTable); got != want {
		return nil, fmt.Errorf("%w: header checksum %#x, computed %#x", ErrCorrupt, got, want)
	}
	if h[5] != 0 || h[6] != 0 || h[7] != 0 {
		return nil, fmt.Errorf("%w: reserved bytes set", ErrCorrupt)
	}
	f := &Frame{
		Kind:   Kind(h[4]),
		Offset: binary.BigEndian.Uint64(h[8:]),
		Length: binary.BigEndian.Uint32(h[16:]),
	}
	copy(f.Hash[:], h[24:40])
	plen := binary.BigEndian.Uint32(h[20:])
	switch f.Kind {
	case KindEnd:
		if f.Length != 0 || plen != 0 {
			return nil, fmt.Errorf("%w: end frame with length %d payload %d", ErrCorrupt, f.Length, plen)
		}
		return f, nil
	case KindZero:
		if plen != 0 {
			return nil, fmt.Errorf("%w: zero frame with a %d-byte payload", ErrCorrupt, plen)
		}
		if !f.Hash.IsZero() {
			return nil, fmt.Errorf("%w: zero frame with a non-zero hash", ErrCorrupt)
		}
	case KindRaw:
		if plen != f.Length {
			return nil, fmt.Errorf("%w: raw frame of length %d with a %d-byte payload", ErrCorrupt, f.Length, plen)
		}
	case KindZstd:
		if plen == 0 || plen > maxPayload {
			return nil, fmt.Errorf("%w: zstd payload of %d bytes", ErrCorrupt, plen)
		}
	case KindPatch:
		if plen < patchHeader+1 || plen > maxPayload+patchHeader+MaxBlock/SubBlock/8 {
			return nil, fmt.Errorf("%w: patch payload of %d bytes", ErrCorrupt, plen)
		}
		if f.Hash.IsZero() {
			return nil, fmt.Errorf("%w: patch frame with a zero hash (send a zero frame)", ErrCorrupt)
		}
	case KindCopy:
		if plen != 0 {
			return nil, fmt.Errorf("%w: copy frame with a %d-byte payload", ErrCorrupt, plen)
		}
		if f.Hash.IsZero() {
			return nil, fmt.Errorf("%w: copy frame with a zero hash", ErrCorrupt)
		}
	default:
		return nil, fmt.Errorf("%w: unknown kind %d", ErrCorrupt, h[4])
	}
	if f.Length == 0 || f.Length > MaxBlock {
		return nil, fmt.Errorf("%w: block length %d outside 1..%d", ErrCorrupt, f.Length, MaxBlock)
	}
	return f, nil
}
