package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/zeebo/xxh3"
	"golang.org/x/sys/unix"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

// Manifest file: "FERRYMF1", block size u32, reserved u32, disk size u64,
// entry count u64, then entries sorted by block index: index u64, xxh3-128
// hash (16 bytes, big-endian Hi then Lo). Blocks not listed are zero.
const (
	manifestMagic  = "FERRYMF1"
	manifestHeader = 32
	manifestEntry  = 24
)

type entry struct {
	idx uint64
	sum [16]byte
}

// Block codecs: the first byte of a stored block.
const (
	codecRaw  = 0
	codecZstd = 1
)

func encodeManifest(bs int, size int64, es []entry) []byte {
	b := make([]byte, manifestHeader+manifestEntry*len(es))
	copy(b, manifestMagic)
	binary.LittleEndian.PutUint32(b[8:], uint32(bs))
	binary.LittleEndian.PutUint64(b[16:], uint64(size))
	binary.LittleEndian.PutUint64(b[24:], uint64(len(es)))
	for i, e := range es {
		o := manifestHeader + manifestEntry*i
		binary.LittleEndian.PutUint64(b[o:], e.idx)
		copy(b[o+8:], e.sum[:])
	}
	return b
}

func decodeManifest(b []byte) (bs int, size int64, es []entry, err error) {
	if len(b) < manifestHeader || string(b[:8]) != manifestMagic {
		return 0, 0, nil, fmt.Errorf("no manifest header")
	}
	bs = int(binary.LittleEndian.Uint32(b[8:]))
	size = int64(binary.LittleEndian.Uint64(b[16:]))
	n := binary.LittleEndian.Uint64(b[24:])
	if uint64(len(b)-manifestHeader) != n*manifestEntry {
		return 0, 0, nil, fmt.Errorf("manifest says %d entries but holds %d bytes of entries", n, len(b)-manifestHeader)
	}
	es = make([]entry, n)
	for i := range es {
		o := manifestHeader + manifestEntry*i
		es[i].idx = binary.LittleEndian.Uint64(b[o:])
		copy(es[i].sum[:], b[o+8:o+24])
		if bs <= 0 || int64(es[i].idx)*int64(bs) >= size {
			return 0, 0, nil, fmt.Errorf("manifest entry %d: block %d lies past the disk's %d bytes", i, es[i].idx, size)
		}
	}
	return bs, size, es, nil
}

func digest(manifest []byte) string {
	s := sha256.Sum256(manifest)
	return "sha256:" + hex.EncodeToString(s[:])
}

func (d *Driver) blockPath(sum [16]byte) string {
	h := hex.EncodeToString(sum[:])
	return filepath.Join(d.dir, "blocks", h[:2], h)
}

func blockSum(b []byte) [16]byte { return xxh3.Hash128(b).Bytes() }

// scanResult is what one pass over a disk image produced.
type scanResult struct {
	entries   []entry
	newBlocks []string // block files this pass created (CAS only)
	stored    int64    // bytes those files hold
}

// scan reads f (size bytes) block by block, skipping holes and all-zero
// blocks, hashing the rest in d.workers goroutines; with store set it also
// writes each block not yet in the store (compressed, via tmp + rename). The
// caller holds storeMu when store is set.
func (d *Driver) scan(ctx context.Context, f *os.File, size int64, store bool) (scanResult, error) {
	bs := int64(d.bs)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int64, d.workers*2)
	var prodErr error
	go func() {
		defer close(jobs)
		last := int64(-1)
		prodErr = dataExtents(f, size, func(start, end int64) error {
			for b := start / bs; b*bs < end; b++ {
				if b == last {
					continue
				}
				last = b
				select {
				case jobs <- b:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	}()

	var (
		mu       sync.Mutex
		res      scanResult
		firstErr error
		done     atomic.Int64
		inflight = map[[16]byte]bool{}
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	zero := make([]byte, bs)
	var wg sync.WaitGroup
	for w := 0; w < d.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, bs)
			for idx := range jobs {
				if ctx.Err() != nil {
					continue
				}
				off := idx * bs
				n := min(bs, size-off)
				if _, err := f.ReadAt(buf[:n], off); err != nil {
					fail(fmt.Errorf("read block %d at byte %d: %w", idx, off, err))
					continue
				}
				if !bytes.Equal(buf[:n], zero[:n]) {
					sum := blockSum(buf[:n])
					if store {
						mu.Lock()
						claim := !inflight[sum]
						inflight[sum] = true
						mu.Unlock()
						if claim {
							written, err := d.putBlock(sum, buf[:n])
							if err != nil {
								fail(fmt.Errorf("store block %d: %w", idx, err))
								continue
							}
							if written > 0 {
								mu.Lock()
								res.newBlocks = append(res.newBlocks, d.blockPath(sum))
								res.stored += written
								mu.Unlock()
							}
						}
					}
					mu.Lock()
					res.entries = append(res.entries, entry{idx: uint64(idx), sum: sum})
					mu.Unlock()
				}
				if h := d.testHookAfterBlock; h != nil {
					h(int(done.Add(1)))
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && prodErr != nil {
		firstErr = fmt.Errorf("walk data extents: %w", prodErr)
	}
	if err := ctx.Err(); firstErr == nil && err != nil {
		firstErr = err
	}
	if firstErr != nil {
		return res, firstErr
	}
	sort.Slice(res.entries, func(i, j int) bool { return res.entries[i].idx < res.entries[j].idx })
	return res, nil
}

// putBlock stores b under sum unless present; it returns the bytes written
// (0 when the block was already stored). The file is not fsynced here:
// syncBlocks does that before any manifest refers to it, and GC on open
// removes blocks a crash left unreferenced.
func (d *Driver) putBlock(sum [16]byte, b []byte) (int64, error) {
	path := d.blockPath(sum)
	if _, err := os.Stat(path); err == nil {
		return 0, nil
	}
	out := make([]byte, 1, len(b)/2+64)
	out[0] = codecRaw
	// Already-compressed or encrypted data is stored raw without paying for
	// a full encode (zstd's own probe of a small sample proved unreliable:
	// it declines to entropy-code 32 KiB of 3-bit text that compresses 2:1).
	if !looksIncompressible(b) {
		out[0] = codecZstd
		out = d.enc.EncodeAll(b, out)
	}
	if out[0] == codecRaw || len(out) >= len(b)+1 { // incompressible: store raw, skip decoding later
		out = append(out[:0], codecRaw)
		out = append(out, b...)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Join(d.dir, "tmp"), "blk-*")
	if err != nil {
		return 0, err
	}
	_, err = tmp.Write(out)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, err
	}
	return int64(len(out)), nil
}

// syncBlocks makes new block files and their directories durable. A few
// files are fsynced one by one; many are flushed with one syncfs(2) on the
// store's filesystem, which on ext4 costs one journal commit instead of one
// per file (measured: 512 fsyncs took ~8 s here).
func (d *Driver) syncBlocks(paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	if len(paths) > 8 {
		f, err := os.Open(filepath.Join(d.dir, "blocks"))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := unix.Syncfs(int(f.Fd())); err != nil {
			return fmt.Errorf("syncfs %s: %w", f.Name(), err)
		}
		return nil
	}
	dirs := map[string]bool{filepath.Join(d.dir, "blocks"): true}
	for _, p := range paths {
		dirs[filepath.Dir(p)] = true
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	for dir := range dirs {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// readBlock returns the verified content of a stored block of want bytes.
func (d *Driver) readBlock(sum [16]byte, want int64, dst []byte) ([]byte, error) {
	path := d.blockPath(sum)
	raw, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("block %x missing from the store: %w", sum, cloud.ErrCorrupt)
		}
		return nil, err
	}
	var b []byte
	switch {
	case len(raw) > 0 && raw[0] == codecRaw:
		b = raw[1:]
	case len(raw) > 0 && raw[0] == codecZstd:
		b, err = d.dec.DecodeAll(raw[1:], dst[:0])
		if err != nil {
			return nil, fmt.Errorf("block %s: decompress: %v: %w", path, err, cloud.ErrCorrupt)
		}
	default:
		return nil, fmt.Errorf("block %s: unknown codec: %w", path, cloud.ErrCorrupt)
	}
	if int64(len(b)) != want || blockSum(b) != sum {
		return nil, fmt.Errorf("block %s: content does not match its hash (%d bytes, want %d): %w", path, len(b), want, cloud.ErrCorrupt)
	}
	return b, nil
}

// materialise writes point p's bytes into f, which is already truncated to
// p.SizeBytes (so unlisted blocks stay holes).
func (d *Driver) materialise(ctx context.Context, p pointMeta, f *os.File) error {
	if p.Method == string(ModeReflink) {
		src, err := os.Open(filepath.Join(d.dir, "points", p.ID+".img"))
		if err != nil {
			return fmt.Errorf("open reflink copy of point %s: %w", p.ID, err)
		}
		defer src.Close()
		if err := cloneFile(f, src); err != nil {
			// Another filesystem (EXDEV) or no reflinks there: copy, keeping holes.
			if err := copySparse(ctx, f, src, p.SizeBytes); err != nil {
				return fmt.Errorf("copy point %s after clone failed: %w", p.ID, err)
			}
		}
		return nil
	}
	raw, err := os.ReadFile(filepath.Join(d.dir, "points", p.ID+".manifest"))
	if err != nil {
		return fmt.Errorf("read manifest of point %s: %w", p.ID, err)
	}
	if got := digest(raw); got != p.ManifestDigest {
		return fmt.Errorf("manifest of point %s has digest %s, recorded %s: %w", p.ID, got, p.ManifestDigest, cloud.ErrCorrupt)
	}
	bs, size, es, err := decodeManifest(raw)
	if err != nil || size != p.SizeBytes {
		return fmt.Errorf("manifest of point %s: %v (size %d, point %d): %w", p.ID, err, size, p.SizeBytes, cloud.ErrCorrupt)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan entry, d.workers*2)
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < d.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, bs)
			for e := range jobs {
				if ctx.Err() != nil {
					continue
				}
				off := int64(e.idx) * int64(bs)
				b, err := d.readBlock(e.sum, min(int64(bs), size-off), buf)
				if err == nil {
					_, err = f.WriteAt(b, off)
				}
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("point %s block %d: %w", p.ID, e.idx, err) })
					cancel()
				}
			}
		}()
	}
	for _, e := range es {
		if ctx.Err() != nil {
			break
		}
		jobs <- e
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// GC removes stored blocks that no recovery point's manifest references and
// returns how many and how many bytes. It runs on open and after deletions.
func (d *Driver) GC(ctx context.Context) (removed int, freed int64, err error) {
	d.storeMu.Lock()
	defer d.storeMu.Unlock()
	return d.gcLocked(ctx)
}

func (d *Driver) gcLocked(ctx context.Context) (removed int, freed int64, err error) {
	d.mu.Lock()
	var ids []string
	for id, p := range d.points {
		if p.Method == string(ModeCAS) {
			ids = append(ids, id)
		}
	}
	d.mu.Unlock()
	live := map[[16]byte]bool{}
	for _, id := range ids {
		raw, err := os.ReadFile(filepath.Join(d.dir, "points", id+".manifest"))
		if err != nil {
			return 0, 0, fmt.Errorf("gc: read manifest of point %s: %w", id, err)
		}
		_, _, es, err := decodeManifest(raw)
		if err != nil {
			return 0, 0, fmt.Errorf("gc: manifest of point %s: %v: %w", id, err, cloud.ErrCorrupt)
		}
		for _, e := range es {
			live[e.sum] = true
		}
	}
	root := filepath.Join(d.dir, "blocks")
	shards, err := os.ReadDir(root)
	if err != nil {
		return 0, 0, err
	}
	for _, sh := range shards {
		if err := ctxErr(ctx); err != nil {
			return removed, freed, err
		}
		ents, err := os.ReadDir(filepath.Join(root, sh.Name()))
		if err != nil {
			return removed, freed, err
		}
		for _, e := range ents {
			var sum [16]byte
			if b, err := hex.DecodeString(e.Name()); err == nil && len(b) == 16 {
				copy(sum[:], b)
				if live[sum] {
					continue
				}
			}
			if info, err := e.Info(); err == nil {
				freed += info.Size()
			}
			if err := os.Remove(filepath.Join(root, sh.Name(), e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, freed, err
			}
			removed++
		}
	}
	return removed, freed, nil
}

// StoreStats counts the blocks in the store and the bytes they occupy.
func (d *Driver) StoreStats() (blocks int, bytes int64, err error) {
	err = filepath.WalkDir(filepath.Join(d.dir, "blocks"), func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		blocks++
		bytes += info.Size()
		return nil
	})
	return blocks, bytes, err
}

var _ io.ReaderAt = (*os.File)(nil)

// looksIncompressible estimates the order-0 entropy of up to 64 KiB sampled
// from b; above 7.9 bits per byte zstd would gain nothing (it can still win
// on long repeats, which a page of random bytes does not have).
func looksIncompressible(b []byte) bool {
	var hist [256]int
	step := 1
	if len(b) > 64<<10 {
		step = len(b) / (64 << 10)
	}
	n := 0
	for i := 0; i < len(b); i += step {
		hist[b[i]]++
		n++
	}
	if n < 4096 {
		return false
	}
	h := 0.0
	for _, c := range hist {
		if c > 0 {
			p := float64(c) / float64(n)
			h -= p * math.Log2(p)
		}
	}
	return h > 7.9
}

// copySparse copies src's data extents into dst (already truncated to size),
// leaving holes and all-zero chunks unwritten.
func copySparse(ctx context.Context, dst, src *os.File, size int64) error {
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	return dataExtents(src, size, func(start, end int64) error {
		for off := start; off < end; off += int64(len(buf)) {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := min(int64(len(buf)), end-off)
			if _, err := src.ReadAt(buf[:n], off); err != nil {
				return err
			}
			if bytes.Equal(buf[:n], zero[:n]) {
				continue
			}
			if _, err := dst.WriteAt(buf[:n], off); err != nil {
				return err
			}
		}
		return nil
	})
}
