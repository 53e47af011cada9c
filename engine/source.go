package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"

	"github.com/ferry-migrate/ferry/engine/wire"
	"github.com/klauspost/compress/zstd"
)

const (
	seekData = 3 // SEEK_DATA on Linux
	seekHole = 4 // SEEK_HOLE on Linux
)

// Source is a disk image or block device opened for reading blocks.
type Source struct {
	f    *os.File
	path string
	size int64
}

// OpenSource opens a file or block device and measures it (seeking to the
// end works for both, where Stat reports 0 for a device).
func OpenSource(path string) (*Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open source: %w", err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("measure source %s: %w", path, err)
	}
	return &Source{f: f, path: path, size: size}, nil
}

// Size is the source's size in bytes when it was opened.
func (s *Source) Size() int64 { return s.size }

// Close closes the source.
func (s *Source) Close() error { return s.f.Close() }

// ReadBlock reads len(buf) bytes at off. A short read means the source
// shrank or vanished under us, which is reported as such.
func (s *Source) ReadBlock(off int64, buf []byte) error {
	n, err := s.f.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("read source %s at offset %d: got %d of %d bytes: the source shrank or disappeared during the sync", s.path, off, n, len(buf))
	}
	return fmt.Errorf("read source %s at offset %d: %w", s.path, off, err)
}

// holes answers "is this range a hole?" with SEEK_DATA/SEEK_HOLE, caching the
// last data extent and the next data offset so that a disk costs a few
// syscalls per extent rather than per block.
type holes struct {
	f                  *os.File
	size               int64
	off                bool  // SEEK_DATA unsupported: everything is data
	dataFrom, dataTo   int64 // a known data extent
	holeFrom, nextData int64 // [holeFrom, nextData) is known to be a hole
}

func newHoles(f *os.File, size int64) *holes { return &holes{f: f, size: size} }

// isHole reports whether [a, b) holds no data at all.
func (h *holes) isHole(a, b int64) bool {
	if h.off {
		return false
	}
	if a >= h.dataFrom && a < h.dataTo {
		return false
	}
	if a >= h.holeFrom && b <= h.nextData {
		return true
	}
	d, err := h.f.Seek(a, seekData)
	if err != nil {
		if errors.Is(err, syscall.ENXIO) { // no data from a to the end...
			if st, err := h.f.Stat(); err != nil || (st.Mode().IsRegular() && st.Size() < b) {
				// ...or the file shrank: let the read report it.
				return false
			}
			h.holeFrom, h.nextData = a, h.size
			return true
		}
		h.off = true
		return false
	}
	if d >= b {
		h.holeFrom, h.nextData = a, d
		return true
	}
	e, err := h.f.Seek(d, seekHole)
	if err != nil {
		h.off = true
		return false
	}
	h.dataFrom, h.dataTo = d, e
	return false
}

// decision is what the scanner does with a block after hashing it.
type decision uint8

const (
	skipZero decision = iota
	skipUnchanged
	sendBlock
)

// block is one unit of work flowing through the scan pipeline.
type block struct {
	idx   int
	off   int64
	hash  wire.Hash
	what  decision
	frame wire.Frame
	raw   []byte // pooled buffer holding the block
	comp  []byte // pooled buffer holding the compressed payload
	err   error
	done  chan struct{}

	// Set by a sync's process hook (protocol 2).
	encoded bool // frame is ready to send
	offer   bool // ask the gateway's content index before sending the data
	have    bool // the content index holds it: send a copy frame
	plain   int  // bytes the frame carries before compression (accounting)
}

// scanner reads, hashes, compares and compresses blocks on several
// goroutines and hands them back in order. At most window blocks are in
// flight between the dispatcher and the consumer's release, each holding one
// block buffer and one payload buffer, which is what bounds the agent's
// memory whatever the disk size.
type scanner struct {
	src      *Source
	bs       int
	baseline *Manifest // what the target holds; nil means "don't compare, don't encode"
	workers  int
	window   int
	pool     chan []byte
	tokens   chan struct{}
	// process, when set, runs on a worker after a block has been read,
	// hashed and decided, in place of the default encoding; it may set the
	// block's frame (encoded) or leave that to a later stage.
	process func(b *block, ws *workerState)
}

// workerState is what one scan worker reuses from block to block.
type workerState struct {
	encs    map[zstd.EncoderLevel]*wire.Encoder
	subs    []uint32
	old     []uint32
	zero    []uint32
	rec     []byte
	scratch []byte
	raw     int // whole blocks in a row that did not compress
}

func (ws *workerState) encoder(l zstd.EncoderLevel) *wire.Encoder {
	if ws.encs == nil {
		ws.encs = map[zstd.EncoderLevel]*wire.Encoder{}
	}
	e := ws.encs[l]
	if e == nil {
		e = wire.NewEncoder(l)
		ws.encs[l] = e
	}
	return e
}

func newScanner(src *Source, bs int, baseline *Manifest, workers int) *scanner {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	window := max(4, min(512, (32<<20)/(2*bs)))
	return &scanner{src: src, bs: bs, baseline: baseline, workers: workers, window: window,
		pool: make(chan []byte, 2*window), tokens: make(chan struct{}, window)}
}

func (s *scanner) buf() []byte {
	select {
	case b := <-s.pool:
		return b
	default:
		return make([]byte, s.bs+s.bs/64+1024)
	}
}

func (s *scanner) put(b []byte) {
	if b == nil {
		return
	}
	select {
	case s.pool <- b[:cap(b)]:
	default:
	}
}

// release returns a block's buffers and its window slot; the consumer of
// run calls it once it is done with the block.
func (s *scanner) release(b *block) {
	s.put(b.raw)
	s.put(b.comp)
	b.raw, b.comp = nil, nil
	<-s.tokens
}

// run scans blocks [from, to) and calls emit for each in order; emit owns
// the block and must release it (at once or later). A read error stops the
// scan.
func (s *scanner) run(ctx context.Context, from, to int, emit func(b *block) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	size := s.src.Size()
	jobs := make(chan *block, s.window)
	ordered := make(chan *block, s.window)
	hs := newHoles(s.src.f, size)

	go func() { // dispatcher
		defer close(ordered)
		defer close(jobs)
		for i := from; i < to; i++ {
			select {
			case s.tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			off := int64(i) * int64(s.bs)
			n := int(min(int64(s.bs), size-off))
			b := &block{idx: i, off: off, done: make(chan struct{})}
			if hs.isHole(off, off+int64(n)) {
				b.what = s.decide(i, wire.Hash{})
				close(b.done)
			} else {
				b.raw = s.buf()[:n]
				select {
				case jobs <- b:
				case <-ctx.Done():
					return
				}
			}
			select {
			case ordered <- b:
			case <-ctx.Done():
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for range s.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ws workerState
			for b := range jobs {
				if b.err = s.src.ReadBlock(b.off, b.raw); b.err == nil {
					b.hash = wire.Sum(b.raw)
					b.what = s.decide(b.idx, b.hash)
					switch {
					case s.process != nil:
						s.process(b, &ws)
					case b.what == sendBlock && s.baseline != nil:
						b.frame, b.comp = ws.encoder(zstd.SpeedFastest).Encode(uint64(b.off), b.raw, b.hash, s.buf())
						b.encoded = true
					}
				}
				close(b.done)
			}
		}()
	}
	defer wg.Wait()
	defer cancel()

	for b := range ordered {
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b.err != nil {
			return b.err
		}
		if b.what == sendBlock && b.hash.IsZero() {
			b.frame = wire.Frame{Kind: wire.KindZero, Offset: uint64(b.off), Length: uint32(s.blockLen(b.idx))}
			b.encoded = true
		}
		if err := emit(b); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (s *scanner) blockLen(i int) int {
	return int(min(int64(s.bs), s.src.Size()-int64(i)*int64(s.bs)))
}

func (s *scanner) decide(i int, h wire.Hash) decision {
	var old wire.Hash
	if s.baseline != nil && i < len(s.baseline.Hashes) {
		old = s.baseline.Hashes[i]
	}
	switch {
	case s.baseline == nil && h.IsZero():
		return skipZero
	case s.baseline == nil:
		return sendBlock
	case h == old && h.IsZero():
		return skipZero
	case h == old:
		return skipUnchanged
	}
	return sendBlock
}

// HashFile computes the manifest of a file or device by reading it (holes
// are not read), on all cores.
func HashFile(ctx context.Context, path string, blockSize int) (*Manifest, error) {
	return hashPrefix(ctx, path, blockSize, -1)
}

// hashPrefix is HashFile of the first size bytes (all of it when size < 0),
// so that a target larger than its source is compared on the source's extent
// with the same short last block.
func hashPrefix(ctx context.Context, path string, blockSize int, size int64) (*Manifest, error) {
	src, err := OpenSource(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if size >= 0 && size < src.size {
		src.size = size
	}
	if err := CheckBlockSize(blockSize, src.Size()); err != nil {
		return nil, err
	}
	m := NewManifest(src.Size(), blockSize)
	sc := newScanner(src, blockSize, nil, 0)
	err = sc.run(ctx, 0, len(m.Hashes), func(b *block) error {
		m.Hashes[b.idx] = b.hash
		sc.release(b)
		return nil
	})
	return m, err
}

// rehashBlocks re-reads the listed blocks of the file at path and stores
// their hashes in m, on all cores (each goroutine writes distinct entries).
func rehashBlocks(ctx context.Context, path string, m *Manifest, idxs []int) error {
	if len(idxs) == 0 {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	workers := min(runtime.GOMAXPROCS(0), len(idxs))
	next := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, m.BlockSize)
			for idx := range next {
				b := buf[:m.BlockLen(idx)]
				if _, err := f.ReadAt(b, int64(idx)*int64(m.BlockSize)); err != nil {
					errc <- fmt.Errorf("re-read target at block %d: %w", idx, err)
					for range next {
					}
					return
				}
				m.Hashes[idx] = wire.Sum(b)
			}
		}()
	}
	for _, idx := range idxs {
		if ctx.Err() != nil {
			break
		}
		next <- idx
	}
	close(next)
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	return ctx.Err()
}
