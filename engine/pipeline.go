package engine

import (
	"bytes"
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ferry-migrate/ferry/engine/wire"
	"github.com/klauspost/compress/zstd"
)

// The agent's data path after the scan (protocol 2):
//
//	scanner (read, hash, sub-hash, decide, encode patches; all cores)
//	  → offers  (blocks that would travel whole are first offered to the
//	             gateway's content index, in batches, several in flight)
//	  → encoder (whole blocks the index lacks are compressed; all cores)
//	  → sender  (frames in disk order, throttled, into the POST stream)
//
// Every stage keeps disk order and holds at most the scanner's window of
// blocks, so latency to the gateway overlaps with reading and compressing
// instead of adding up, and memory stays bounded.

// planner decides, on a scan worker, how a block travels.
type planner struct {
	s        *Syncer
	baseline *Manifest
	store    *subStore // nil without local state
	patch    bool      // the gateway applies patch frames
	dedup    bool      // offer whole blocks to the content index first
	sc       *scanner
}

// process runs on a scan worker for every block that was read.
func (p *planner) process(b *block, ws *workerState) {
	if b.what == skipZero {
		return
	}
	n := len(b.raw)
	old := p.baseline.Hashes[b.idx]
	if b.what == skipUnchanged {
		// Keep the sub-block store current for blocks it does not describe
		// yet (first syncs after an upgrade, a store lost with its disk).
		if p.store != nil {
			ws.grow(n, p.store.rec)
			if h, ok := p.store.read(b.idx, ws.old, ws.rec); !ok || h != b.hash {
				ws.subs = wire.SubSums(b.raw, ws.subs)
				p.store.write(b.idx, b.hash, ws.subs, ws.rec)
			}
		}
		return
	}
	if b.hash.IsZero() {
		return // the scanner sends a zero frame
	}
	if p.store != nil || p.patch {
		ws.grow(n, 0)
		if p.store != nil {
			ws.grow(n, p.store.rec)
		}
		ws.subs = wire.SubSums(b.raw, ws.subs)
		var base []uint32
		switch {
		case !p.patch:
		case old.IsZero():
			base = ws.zero[:len(ws.subs)]
		case old == unknownHash:
		case p.store != nil:
			if h, ok := p.store.read(b.idx, ws.old[:len(ws.subs)], ws.rec); ok && h == old {
				base = ws.old[:len(ws.subs)]
			}
		}
		if p.store != nil {
			p.store.write(b.idx, b.hash, ws.subs, ws.rec)
		}
		if base != nil {
			bm := make([]byte, wire.BitmapLen(n))
			for i, v := range ws.subs {
				if v != base[i] {
					bm[i/8] |= 1 << (i % 8)
				}
			}
			if size := wire.PatchSize(n, bm); size > 0 && size <= n*3/4 {
				t0 := time.Now()
				var f wire.Frame
				f, ws.scratch, b.comp = ws.encoder(p.s.level()).EncodePatch(uint64(b.off), b.raw, b.hash, old, bm, ws.scratch, p.sc.buf())
				p.s.ad.enc.Add(int64(time.Since(t0)))
				if len(f.Payload) >= 20+len(bm)+size {
					p.s.ad.raw.Add(1) // did not compress
				} else {
					p.s.ad.packed.Add(1)
				}
				b.frame, b.encoded = f, true
				b.plain = wire.HeaderSize + 20 + len(bm) + size
				return
			}
		}
	}
	if p.dedup {
		b.offer = true // encoded once the content index has answered
		return
	}
	p.encodeWhole(b, ws)
}

// encodeWhole builds a whole-block frame. Data that does not compress
// (media, encrypted or already compressed files) is not run through zstd
// again and again: after a few raw blocks in a row, a worker only probes
// every 16th block until one compresses.
func (p *planner) encodeWhole(b *block, ws *workerState) {
	b.encoded, b.plain = true, wire.HeaderSize+len(b.raw)
	if ws.raw >= 4 && ws.raw%16 != 0 {
		ws.raw++
		b.frame = wire.Frame{Kind: wire.KindRaw, Offset: uint64(b.off), Length: uint32(len(b.raw)), Hash: b.hash, Payload: b.raw}
		p.s.ad.raw.Add(1)
		return
	}
	t0 := time.Now()
	b.frame, b.comp = ws.encoder(p.s.level()).Encode(uint64(b.off), b.raw, b.hash, p.sc.buf())
	p.s.ad.enc.Add(int64(time.Since(t0)))
	if b.frame.Kind == wire.KindRaw {
		ws.raw++
		p.s.ad.raw.Add(1)
	} else {
		ws.raw = 0
		p.s.ad.packed.Add(1)
	}
}

func (ws *workerState) grow(n, rec int) {
	k := wire.SubBlocks(n)
	if len(ws.old) < k {
		ws.old, ws.zero = make([]uint32, k), make([]uint32, k)
	}
	if len(ws.rec) < rec {
		ws.rec = make([]byte, rec)
	}
}

// offerBatch is a run of consecutive blocks, some of which are offered to
// the content index with one have query.
type offerBatch struct {
	blocks []*block
	offers []*block
	answer chan []byte // bitmap over offers; nil answer: treat all as missing
}

const maxOffers = 256

// pump runs the stages after the scan and calls emit for every block in
// disk order; it releases the blocks.
func (p *planner) pump(ctx context.Context, st *stream, from, to int, emit func(b *block) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sc := p.sc
	scanned := make(chan *block, sc.window)
	scanErr := make(chan error, 1)
	go func() {
		defer close(scanned)
		scanErr <- sc.run(ctx, from, to, func(b *block) error {
			select {
			case scanned <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	batches := make(chan *offerBatch, sc.window)
	go p.batch(ctx, st, scanned, batches)
	encoded := make(chan *block, sc.window)
	go p.encode(ctx, batches, encoded)
	var sendErr error
	for {
		t0 := time.Now()
		b, ok := <-encoded
		if !ok {
			break
		}
		p.s.ad.starved.Add(int64(time.Since(t0)))
		if sendErr == nil {
			if sendErr = emit(b); sendErr != nil {
				cancel()
			}
		}
		sc.release(b)
	}
	err := <-scanErr
	if sendErr != nil {
		return sendErr
	}
	return err
}

// batch groups scanned blocks and sends each group's offers as one have
// query, without waiting for the answer: the encoder stage waits, in order.
// A group closes when it has maxOffers offers or when the scan has nothing
// more ready, so a slow scan never holds blocks back.
func (p *planner) batch(ctx context.Context, st *stream, in <-chan *block, out chan<- *offerBatch) {
	defer close(out)
	var cur *offerBatch
	flush := func() bool {
		if cur == nil {
			return true
		}
		if len(cur.offers) > 0 {
			cur.answer = make(chan []byte, 1)
			go func(bt *offerBatch) { bt.answer <- p.ask(ctx, st, bt.offers) }(cur)
		}
		select {
		case out <- cur:
		case <-ctx.Done():
			return false
		}
		cur = nil
		return true
	}
	for {
		var b *block
		var ok bool
		select {
		case b, ok = <-in:
		default:
			if !flush() {
				return
			}
			select {
			case b, ok = <-in:
			case <-ctx.Done():
				return
			}
		}
		if !ok {
			flush()
			return
		}
		if cur == nil {
			cur = &offerBatch{}
		}
		cur.blocks = append(cur.blocks, b)
		if b.offer {
			cur.offers = append(cur.offers, b)
		}
		if len(cur.offers) >= maxOffers {
			if !flush() {
				return
			}
		}
	}
}

// ask sends one have query. A failed query is answered "none": the blocks
// then travel as data, which is never wrong.
func (p *planner) ask(ctx context.Context, st *stream, offers []*block) []byte {
	hs := make([]wire.Hash, len(offers))
	for i, b := range offers {
		hs[i] = b.hash
	}
	body := wire.AppendHashes(make([]byte, 0, 16*len(hs)), hs)
	if err := p.s.limiter.Wait(ctx, len(body)); err != nil {
		return nil
	}
	reply, err := p.s.do(ctx, http.MethodPost, "have", "sync="+st.id, bytes.NewReader(body), nil)
	n := int64(len(body) + len(reply))
	p.s.update(false, func(pr *Progress) { pr.SentBytes += n; pr.PlainBytes += n })
	if err != nil || len(reply) != (len(hs)+7)/8 {
		p.s.opt.Logf("sync %s: content index query failed (%v); sending the data", p.s.opt.DiskID, err)
		return nil
	}
	return reply
}

// encode applies each batch's answer in order and compresses, on all cores,
// the whole blocks the content index lacks.
func (p *planner) encode(ctx context.Context, in <-chan *offerBatch, out chan<- *block) {
	defer close(out)
	sc := p.sc
	jobs := make(chan *block, sc.window)
	type pending struct {
		b    *block
		done chan struct{}
	}
	order := make(chan pending, sc.window)
	for range sc.workers {
		go func() {
			var ws workerState
			for b := range jobs {
				p.encodeWhole(b, &ws)
				b.done <- struct{}{}
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(jobs)
		for bt := range in {
			var ans []byte
			if bt.answer != nil {
				select {
				case ans = <-bt.answer:
				case <-ctx.Done():
					return
				}
			}
			for i, b := range bt.offers {
				if ans != nil && ans[i/8]&(1<<(i%8)) != 0 {
					b.have = true
					b.frame = wire.Frame{Kind: wire.KindCopy, Offset: uint64(b.off), Length: uint32(len(b.raw)), Hash: b.hash}
					b.encoded, b.plain = true, wire.HeaderSize
				}
			}
			for _, b := range bt.blocks {
				pd := pending{b: b}
				if b.what == sendBlock && !b.encoded {
					pd.done = make(chan struct{}, 1)
					b.done = pd.done
					select {
					case jobs <- b:
					case <-ctx.Done():
						return
					}
				}
				select {
				case order <- pd:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	for pd := range order {
		if pd.done != nil {
			select {
			case <-pd.done:
			case <-ctx.Done():
				return
			}
		}
		select {
		case out <- pd.b:
		case <-ctx.Done():
			return
		}
	}
}

// adaptive holds what the compression level is chosen from: time the
// sender spent blocked on the link (rate limiter, socket), time it waited
// for the next block (the pipeline behind it is the bottleneck), and CPU
// time spent compressing.
type adaptive struct {
	link, starved, enc atomic.Int64 // nanoseconds
	raw, packed        atomic.Int64 // whole blocks sent raw / compressed
	lvl                atomic.Int32
}

// Compression levels the agent moves between: zstd's fastest on a fast
// link, stronger ones on a slow link while the CPU keeps up.
var levels = []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression}

func (s *Syncer) level() zstd.EncoderLevel { return levels[s.ad.lvl.Load()] }

// nextLevel moves one step up when the link is the bottleneck, the
// compressors are mostly idle and the data compresses at all (raw is the
// fraction of whole blocks that did not), one step down when the sender
// starves while the compressors are busy or when the data stopped
// compressing, and otherwise stays. The fractions are of one sampling
// interval (cpu: of all workers).
func nextLevel(cur int, link, starved, cpu, raw float64) int {
	switch {
	case raw > 0.8 && cur > 0:
		return cur - 1
	case link > 0.6 && starved < 0.1 && cpu < 0.5 && raw < 0.5 && cur < len(levels)-1:
		return cur + 1
	case starved > 0.3 && cpu > 0.7 && cur > 0:
		return cur - 1
	}
	return cur
}

// adapt samples the pipeline every second and sets the level, until ctx ends.
func (s *Syncer) adapt(ctx context.Context, workers int) {
	if s.opt.Level > 0 {
		s.ad.lvl.Store(int32(min(s.opt.Level, len(levels)) - 1))
		return
	}
	const every = time.Second
	t := time.NewTicker(every)
	defer t.Stop()
	var pl, ps, pe, pr, pp int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l, st, e, r, pk := s.ad.link.Load(), s.ad.starved.Load(), s.ad.enc.Load(), s.ad.raw.Load(), s.ad.packed.Load()
		f := func(d int64) float64 { return float64(d) / float64(every) }
		// A send blocked across several intervals is counted when it ends.
		link, starved, cpu := min(1, f(l-pl)), min(1, f(st-ps)), min(1, f(e-pe)/float64(workers))
		raw := 0.0
		if n := (r - pr) + (pk - pp); n > 0 {
			raw = float64(r-pr) / float64(n)
		}
		pl, ps, pe, pr, pp = l, st, e, r, pk
		cur := int(s.ad.lvl.Load())
		if next := nextLevel(cur, link, starved, cpu, raw); next != cur {
			s.ad.lvl.Store(int32(next))
			s.update(false, func(p *Progress) { p.Level = next + 1 })
			s.opt.Logf("sync %s: compression level %d (link-bound %.0f%% of the time, compressors %.0f%% busy)", s.opt.DiskID, next+1, 100*link, 100*cpu)
		}
	}
}
