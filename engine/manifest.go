package engine

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ferry-migrate/ferry/engine/wire"
	"github.com/zeebo/xxh3"
)

// Block sizes the engine accepts.
const (
	MinBlockSize     = 64 << 10
	MaxBlockSize     = wire.MaxBlock
	DefaultBlockSize = 1 << 20
	// MaxBlocks bounds a manifest to 128 MiB of hashes (16 B per block), which
	// keeps the agent and gateway under their memory budget: 8 Mi blocks is
	// 8 TiB at 1 MiB blocks, 512 GiB at 64 KiB.
	MaxBlocks = 8 << 20
)

// ErrInvalid marks bad input: a bad block size, a malformed manifest, a
// request that can never succeed as sent.
var ErrInvalid = errors.New("invalid")

// CheckBlockSize says what is wrong with a block size for a disk of size
// bytes, or returns nil.
func CheckBlockSize(blockSize int, size int64) error {
	if blockSize < MinBlockSize || blockSize > MaxBlockSize || blockSize&(blockSize-1) != 0 {
		return fmt.Errorf("%w: block size %d: want a power of two from 64KiB to 4MiB", ErrInvalid, blockSize)
	}
	if n := (size + int64(blockSize) - 1) / int64(blockSize); n > MaxBlocks {
		return fmt.Errorf("%w: a %d-byte disk has %d blocks of %d bytes, more than %d: use a larger block size", ErrInvalid, size, n, blockSize, MaxBlocks)
	}
	return nil
}

// Manifest lists the hash of every block of a disk (the zero Hash for an
// all-zero block). It costs 16 bytes per block in memory and on disk.
type Manifest struct {
	BlockSize int
	Size      int64
	Hashes    []wire.Hash
}

// NewManifest returns the manifest of an all-zero disk.
func NewManifest(size int64, blockSize int) *Manifest {
	return &Manifest{BlockSize: blockSize, Size: size, Hashes: make([]wire.Hash, blocksFor(size, blockSize))}
}

func blocksFor(size int64, bs int) int { return int((size + int64(bs) - 1) / int64(bs)) }

// BlockLen returns the length of block i (the last block may be short).
func (m *Manifest) BlockLen(i int) int {
	return int(min(int64(m.BlockSize), m.Size-int64(i)*int64(m.BlockSize)))
}

// Clone returns a deep copy.
func (m *Manifest) Clone() *Manifest {
	c := *m
	c.Hashes = append([]wire.Hash(nil), m.Hashes...)
	return &c
}

// Resize changes the disk size; new blocks are zero. A partial last block
// that grows gets an unknown hash, so that it is compared afresh.
func (m *Manifest) Resize(size int64) {
	n := blocksFor(size, m.BlockSize)
	if size > m.Size && m.Size%int64(m.BlockSize) != 0 && len(m.Hashes) > 0 {
		m.Hashes[len(m.Hashes)-1] = unknownHash
	}
	if n <= len(m.Hashes) {
		m.Hashes = m.Hashes[:n]
	} else {
		m.Hashes = append(m.Hashes, make([]wire.Hash, n-len(m.Hashes))...)
	}
	m.Size = size
}

// unknownHash never equals a real block hash (SumData never returns it as
// its low byte pattern would need a 2^-128 coincidence), so a block marked
// with it is always re-sent.
var unknownHash = wire.Hash{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}

// Digest identifies the manifest's content, so that an agent can tell whether
// the gateway holds the same manifest as it does without downloading it.
func (m *Manifest) Digest() string {
	h := xxh3.New()
	var hdr [16]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(m.BlockSize))
	binary.BigEndian.PutUint64(hdr[8:], uint64(m.Size))
	h.Write(hdr[:])
	for i := range m.Hashes {
		h.Write(m.Hashes[i][:])
	}
	s := h.Sum128()
	return fmt.Sprintf("%016x%016x", s.Hi, s.Lo)
}

// Diff returns the indexes of blocks whose hashes differ; manifests of
// different shapes differ everywhere the longer one has blocks.
func (m *Manifest) Diff(o *Manifest) []int {
	var out []int
	for i := range max(len(m.Hashes), len(o.Hashes)) {
		if i >= len(m.Hashes) || i >= len(o.Hashes) || m.Hashes[i] != o.Hashes[i] || m.BlockLen(i) != o.BlockLen(i) {
			out = append(out, i)
		}
	}
	return out
}

const manifestMagic = 0x464d_414e // "FMAN"

// WriteTo writes the binary form: a 32-byte header (magic, version, block
// size, size, count), the hashes, and an xxh3-64 of everything before it.
func (m *Manifest) WriteTo(w io.Writer) (int64, error) {
	h := xxh3.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 1<<16)
	var hdr [32]byte
	binary.BigEndian.PutUint32(hdr[0:], manifestMagic)
	binary.BigEndian.PutUint32(hdr[4:], 1)
	binary.BigEndian.PutUint32(hdr[8:], uint32(m.BlockSize))
	binary.BigEndian.PutUint64(hdr[16:], uint64(m.Size))
	binary.BigEndian.PutUint64(hdr[24:], uint64(len(m.Hashes)))
	bw.Write(hdr[:])
	for i := range m.Hashes {
		bw.Write(m.Hashes[i][:])
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], h.Sum64())
	if _, err := w.Write(sum[:]); err != nil {
		return 0, err
	}
	return int64(32 + 16*len(m.Hashes) + 8), nil
}

// ReadManifest reads what WriteTo wrote and checks it.
func ReadManifest(r io.Reader) (*Manifest, error) {
	h := xxh3.New()
	br := bufio.NewReaderSize(r, 1<<16)
	tr := io.TeeReader(br, h)
	var hdr [32]byte
	if _, err := io.ReadFull(tr, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: manifest header: %v", ErrInvalid, err)
	}
	if binary.BigEndian.Uint32(hdr[0:]) != manifestMagic || binary.BigEndian.Uint32(hdr[4:]) != 1 {
		return nil, fmt.Errorf("%w: not a version 1 manifest", ErrInvalid)
	}
	m := &Manifest{BlockSize: int(binary.BigEndian.Uint32(hdr[8:])), Size: int64(binary.BigEndian.Uint64(hdr[16:]))}
	count := binary.BigEndian.Uint64(hdr[24:])
	if m.Size < 0 {
		return nil, fmt.Errorf("%w: manifest size %d", ErrInvalid, m.Size)
	}
	if err := CheckBlockSize(m.BlockSize, m.Size); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if count != uint64(blocksFor(m.Size, m.BlockSize)) {
		return nil, fmt.Errorf("%w: manifest of %d bytes in %d-byte blocks lists %d blocks", ErrInvalid, m.Size, m.BlockSize, count)
	}
	m.Hashes = make([]wire.Hash, count)
	for i := range m.Hashes {
		if _, err := io.ReadFull(tr, m.Hashes[i][:]); err != nil {
			return nil, fmt.Errorf("%w: manifest truncated at block %d of %d", ErrInvalid, i, count)
		}
	}
	want := h.Sum64()
	var sum [8]byte
	if _, err := io.ReadFull(br, sum[:]); err != nil {
		return nil, fmt.Errorf("%w: manifest checksum missing", ErrInvalid)
	}
	if binary.BigEndian.Uint64(sum[:]) != want {
		return nil, fmt.Errorf("%w: manifest checksum mismatch (damaged file)", ErrInvalid)
	}
	return m, nil
}

// SaveManifest writes m to path atomically and durably.
func SaveManifest(path string, m *Manifest) error {
	return writeAtomic(path, func(w io.Writer) error { _, err := m.WriteTo(w); return err })
}

// LoadManifest reads a manifest file; a missing file is os.ErrNotExist.
func LoadManifest(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := ReadManifest(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// writeAtomic writes a file through a temporary file in the same directory,
// fsyncs it, renames it over path and fsyncs the directory, so that a crash
// leaves either the old or the new content, never a torn one.
func writeAtomic(path string, fill func(io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := fill(bw); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
