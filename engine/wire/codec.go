package wire

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// Encoder turns blocks into frames. It holds a zstd encoder and is meant to be
// owned by one goroutine of a pipeline.
type Encoder struct {
	z *zstd.Encoder
}

// NewEncoder returns an Encoder. level trades CPU for bytes on the wire;
// zstd.SpeedFastest keeps a 2-core agent ahead of a 1 Gbit/s link.
func NewEncoder(level zstd.EncoderLevel) *Encoder {
	z, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false))
	if err != nil {
		panic(err) // only invalid options fail, and ours are constant
	}
	return &Encoder{z: z}
}

// Encode builds the frame for block at offset with hash h (from Sum). dst is
// scratch space for the compressed payload; the frame's Payload aliases dst
// or block. A block that zstd does not shrink by 1/16 is sent raw.
func (e *Encoder) Encode(offset uint64, block []byte, h Hash, dst []byte) (Frame, []byte) {
	f := Frame{Offset: offset, Length: uint32(len(block)), Hash: h}
	if h.IsZero() {
		f.Kind = KindZero
		return f, dst
	}
	dst = e.z.EncodeAll(block, dst[:0])
	if len(dst) < len(block)-len(block)/16 {
		f.Kind, f.Payload = KindZstd, dst
	} else {
		f.Kind, f.Payload = KindRaw, block
	}
	return f, dst
}

// Decoder turns frames back into blocks and checks them against their hash.
type Decoder struct {
	z *zstd.Decoder
}

// NewDecoder returns a Decoder for one goroutine.
func NewDecoder() *Decoder {
	z, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxBlock+1),
		zstd.WithDecoderMaxWindow(MaxBlock*2))
	if err != nil {
		panic(err)
	}
	return &Decoder{z: z}
}

// ErrHashMismatch is returned (wrapped) when a frame's payload does not hash
// to the hash it carries: the frame was damaged in transit and must be re-sent.
var ErrHashMismatch = errors.New("block hash mismatch")

// Decode returns f's block in dst (grown as needed) after checking its length
// and hash. A zero frame yields a nil block.
func (d *Decoder) Decode(f *Frame, dst []byte) ([]byte, error) {
	switch f.Kind {
	case KindZero:
		return nil, nil
	case KindRaw:
		if Sum(f.Payload) != f.Hash {
			return nil, fmt.Errorf("%w: block at offset %d", ErrHashMismatch, f.Offset)
		}
		return f.Payload, nil
	case KindZstd:
		out, err := d.z.DecodeAll(f.Payload, dst[:0])
		if err != nil {
			return nil, fmt.Errorf("%w: block at offset %d does not decompress: %v", ErrHashMismatch, f.Offset, err)
		}
		if len(out) != int(f.Length) {
			return nil, fmt.Errorf("%w: block at offset %d decompressed to %d bytes, frame says %d", ErrHashMismatch, f.Offset, len(out), f.Length)
		}
		if Sum(out) != f.Hash {
			return nil, fmt.Errorf("%w: block at offset %d", ErrHashMismatch, f.Offset)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: cannot decode a %s frame", ErrCorrupt, f.Kind)
}
