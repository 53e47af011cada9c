package engine

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ferry-migrate/ferry/engine/wire"
)

// A seed file carries a whole disk offline: a header, one wire frame per
// non-zero block (zstd payloads, raw when incompressible), an end frame, and
// the disk's manifest. It is self-checking (every block is hashed, the
// manifest is checksummed) and needs nothing but this package to read.
const seedMagic = "FERRYSEED\x01"

// ExportSeed writes a seed file of the source at path to w and returns its
// manifest.
func ExportSeed(ctx context.Context, source string, blockSize int, w io.Writer, progress func(Progress)) (*Manifest, error) {
	if blockSize == 0 {
		blockSize = DefaultBlockSize
	}
	src, err := OpenSource(source)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if err := CheckBlockSize(blockSize, src.Size()); err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	hdr := make([]byte, len(seedMagic)+12)
	copy(hdr, seedMagic)
	binary.BigEndian.PutUint32(hdr[len(seedMagic):], uint32(blockSize))
	binary.BigEndian.PutUint64(hdr[len(seedMagic)+4:], uint64(src.Size()))
	bw.Write(hdr)
	m := NewManifest(src.Size(), blockSize)
	var frames uint64
	var p Progress
	p.Total, p.Phase = src.Size(), "scan"
	sc := newScanner(src, blockSize, NewManifest(src.Size(), blockSize), 0)
	err = sc.run(ctx, 0, len(m.Hashes), func(b *block) error {
		m.Hashes[b.idx] = b.hash
		p.Done += int64(m.BlockLen(b.idx))
		if b.what != sendBlock {
			p.BlocksZero++
		} else {
			n, err := wire.Write(bw, &b.frame)
			if err != nil {
				return fmt.Errorf("write seed: %w", err)
			}
			frames++
			p.BlocksSent++
			p.SentBytes += int64(n)
			p.ChangedBytes += int64(b.frame.Length)
		}
		sc.release(b)
		if progress != nil && b.idx%256 == 0 {
			progress(p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := wire.WriteEnd(bw, frames); err != nil {
		return nil, err
	}
	if _, err := m.WriteTo(bw); err != nil {
		return nil, err
	}
	if progress != nil {
		p.Phase = "done"
		progress(p)
	}
	return m, bw.Flush()
}

// ExportSeedFile writes a seed file atomically at out.
func ExportSeedFile(ctx context.Context, source string, blockSize int, out string, progress func(Progress)) (*Manifest, error) {
	var m *Manifest
	err := writeAtomic(out, func(w io.Writer) error {
		var err error
		m, err = ExportSeed(ctx, source, blockSize, w, progress)
		return err
	})
	return m, err
}

// ImportSeed loads a seed into the target of disk id and records its
// manifest as the target's verified state, so that the next network sync
// sends only what changed since the export. Blocks the seed does not carry
// are zeroed on an existing target.
//
// A damaged or truncated seed keeps what it delivered: every block that
// verified is written and recorded (durably, also every CheckpointEvery
// while the import runs), the others are marked unknown, and the disk is
// left unverified, so the next sync sends only the blocks the import did
// not deliver and then proves the whole target. A block whose payload is
// damaged is skipped and the import goes on; a broken frame header ends it.
func (g *Gateway) ImportSeed(ctx context.Context, id string, r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<20)
	hdr := make([]byte, len(seedMagic)+12)
	if _, err := io.ReadFull(br, hdr); err != nil || string(hdr[:len(seedMagic)]) != seedMagic {
		return fmt.Errorf("%w: not a Ferry seed file", ErrInvalid)
	}
	bs := int(binary.BigEndian.Uint32(hdr[len(seedMagic):]))
	size := int64(binary.BigEndian.Uint64(hdr[len(seedMagic)+4:]))
	if size <= 0 {
		return fmt.Errorf("%w: seed file for a disk of %d bytes", ErrInvalid, size)
	}
	if err := CheckBlockSize(bs, size); err != nil {
		return fmt.Errorf("seed file: %w", err)
	}
	ds, err := g.disk(id)
	if err != nil {
		return err
	}
	if err := lockDisk(ds, id); err != nil {
		return err
	}
	defer ds.lock.Unlock()
	if _, err := g.prepareTarget(ds, id, size); err != nil {
		return err
	}
	// From here on the target is being rewritten: say so durably first.
	// Nothing is known of any block until the seed delivers it.
	got := NewManifest(size, bs)
	for i := range got.Hashes {
		got.Hashes[i] = unknownHash
	}
	ds.manifest, ds.exact = got, false
	ds.ckpt = ds.ckpt.fresh("seed-import")
	if err := g.persist(id, ds); err != nil {
		return err
	}
	f, err := os.OpenFile(ds.path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open target disk %s: %w", id, err)
	}
	defer f.Close()
	// keep makes the blocks written so far durable and records them.
	keep := func() error {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync target disk %s: %w", id, err)
		}
		return g.persist(id, ds)
	}
	var good, damaged int
	var firstDamaged int64 = -1
	fail := func(err error) error {
		if kerr := keep(); kerr != nil {
			return errors.Join(err, kerr)
		}
		return fmt.Errorf("%w; kept the %d blocks that verified, the next sync sends the rest", err, good)
	}
	rd := wire.NewReader(br)
	dec := wire.NewDecoder()
	var buf []byte
	last := g.opt.Now()
	// A seed lists its blocks in increasing order and omits zero blocks, so
	// a gap between two frames is known to be zero at the source; that lets
	// a truncated seed keep its zeros too. Out-of-order input stops it.
	prev, ordered := -1, true
	gap := func(to int) error {
		if !ordered || to <= prev {
			ordered = false
			return nil
		}
		for i := prev + 1; i < to; i++ {
			if err := zeroRange(f, int64(i)*int64(bs), int64(got.BlockLen(i))); err != nil {
				return fmt.Errorf("zero target disk %s at block %d: %w", id, i, err)
			}
			got.Hashes[i] = wire.Hash{}
		}
		prev = to
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		fr, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(fmt.Errorf("seed file: %w", err))
		}
		off := int64(fr.Offset)
		idx := int(off / int64(bs))
		if off%int64(bs) != 0 || idx >= len(got.Hashes) || int(fr.Length) != got.BlockLen(idx) {
			return fail(fmt.Errorf("%w: seed frame at offset %d does not fit the disk", ErrInvalid, off))
		}
		if err := gap(idx); err != nil {
			return fail(err)
		}
		data, err := dec.Decode(fr, buf)
		if errors.Is(err, wire.ErrHashMismatch) {
			damaged++
			if firstDamaged < 0 {
				firstDamaged = off
			}
			continue
		}
		if err != nil {
			return fail(fmt.Errorf("seed file: %w", err))
		}
		if fr.Kind == wire.KindZstd {
			buf = data
		}
		if fr.Kind == wire.KindZero {
			err = zeroRange(f, off, int64(fr.Length))
		} else {
			_, err = f.WriteAt(data, off)
		}
		if err != nil {
			return fail(fmt.Errorf("write target disk %s at offset %d: %w", id, off, err))
		}
		got.Hashes[idx] = fr.Hash
		good++
		if now := g.opt.Now(); now.Sub(last) >= g.opt.CheckpointEvery {
			last = now
			if err := keep(); err != nil {
				return err
			}
		}
	}
	want, err := ReadManifest(br)
	if err != nil {
		return fail(fmt.Errorf("seed file manifest: %w", err))
	}
	if want.Size != size || want.BlockSize != bs {
		return fail(fmt.Errorf("%w: seed manifest does not describe the seed's disk", ErrInvalid))
	}
	for i := range got.Hashes {
		// The seed carries every non-zero block: a block it does not carry
		// is zero at the source. A damaged one stays unknown.
		if got.Hashes[i] == unknownHash && want.Hashes[i].IsZero() {
			if err := zeroRange(f, int64(i)*int64(bs), int64(got.BlockLen(i))); err != nil {
				return fail(fmt.Errorf("zero target disk %s at block %d: %w", id, i, err))
			}
			got.Hashes[i] = wire.Hash{}
		}
	}
	if damaged > 0 {
		return fail(fmt.Errorf("%w: seed file: %d damaged blocks (the first at offset %d)", ErrInvalid, damaged, firstDamaged))
	}
	if d := want.Diff(got); len(d) > 0 {
		for _, i := range d {
			got.Hashes[i] = unknownHash
		}
		return fail(fmt.Errorf("%w: seed blocks disagree with the seed manifest at %d blocks (first at offset %d)", ErrInvalid, len(d), int64(d[0])*int64(bs)))
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync target disk %s: %w", id, err)
	}
	ds.manifest, ds.exact = want, true
	ds.ckpt = ds.ckpt.fresh("")
	ds.ckpt.Verified, ds.ckpt.Offset = true, size
	return g.persist(id, ds)
}

// ImportSeedFile imports the seed file at path.
func (g *Gateway) ImportSeedFile(ctx context.Context, id, path string) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("seed file %s does not exist", path)
		}
		return err
	}
	defer f.Close()
	return g.ImportSeed(ctx, id, f)
}
