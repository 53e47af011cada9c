package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/engine/throttle"
	"github.com/ferry-migrate/ferry/engine/wire"
	"github.com/klauspost/compress/zstd"
)

// SyncOptions configures one agent-side sync of a source disk to a gateway.
type SyncOptions struct {
	Source      string // file or block device
	DiskID      string
	Gateway     string // base URL, https://host:port (http:// only without a fingerprint)
	Credential  string // bearer credential for DiskID
	Fingerprint string // SHA-256 of the gateway's certificate (required for https)
	BlockSize   int    // default DefaultBlockSize
	// StateDir keeps the manifest of the last completed sync and the id of a
	// sync in progress, so that the next run is incremental and a restarted
	// agent resumes the same sync. Empty: nothing is kept locally and the
	// gateway's manifest is downloaded each time.
	StateDir string
	Rate     throttle.Rate      // base rate cap; 0 means Unlimited here (use SetRate(0) to pause)
	Windows  *throttle.Schedule // optional transfer windows
	Clock    throttle.Clock     // default the wall clock
	Workers  int                // hashing/compression goroutines; default GOMAXPROCS
	// RetryFor is how long transport failures (gateway down, connection
	// reset, gateway busy) are retried before giving up; default 5 minutes.
	RetryFor time.Duration
	// BatchBytes is how many bytes of frames go in one POST (default 1 GiB;
	// the gateway checkpoints inside a stream by time, so this only bounds
	// how long rejected frames wait to be re-sent).
	BatchBytes    int64
	Progress      func(Progress)       // called at most every ProgressEvery, and at the end
	ProgressEvery time.Duration        // default 500 ms
	Logf          func(string, ...any) // default: discard
	// HTTPClient overrides the client (its transport must do the pinning).
	HTTPClient *http.Client
	// VerifyFull asks the gateway to re-read the whole target for the final
	// proof (a cutover's last pass, or a scheduled full verification).
	VerifyFull bool
	// Check, when set, is called about every second while the source is
	// read and before the final proof; an error (the snapshot being read
	// filled up or vanished) stops the sync, and is not retried.
	Check func() error
	// Consistency says how Source was taken (a snapshot, and of what); the
	// gateway records it with the proven state. nil: a live read, not a
	// point in time.
	Consistency *Consistency
	// Level fixes the zstd level (1 fastest … 3); 0 adapts it to the link.
	Level int
	// Protocol caps the data-path protocol (1: whole blocks only, as before
	// protocol 2); 0 uses the newest both ends speak.
	Protocol int

	// noResume starts a new sync rather than resume one an earlier run left
	// unfinished (RunPass: that run read another point in time).
	noResume bool
}

// Progress is a snapshot of a running sync.
type Progress struct {
	Total        int64 // source bytes
	Done         int64 // source bytes scanned (including resumed-over bytes)
	Resumed      int64 // offset this run resumed at
	SentBytes    int64 // bytes on the wire (frame headers + payloads)
	ChangedBytes int64 // uncompressed bytes of the blocks sent
	BlocksSent   int64
	BlocksZero   int64 // skipped: zero at source and target
	BlocksSame   int64 // skipped: unchanged since the target's manifest
	BlocksResent int64 // re-sent after the gateway rejected them or the final check
	// Protocol 2: blocks that travelled as their changed sub-blocks, blocks
	// the gateway copied from its content index instead, and the bytes of
	// those copies.
	BlocksPatched int64
	BlocksCopied  int64
	CopiedBytes   int64
	// PlainBytes is what went on the wire before compression (frame headers,
	// uncompressed payloads, content-index queries): the measure of how
	// little the delta sends, independent of how well the data compresses.
	PlainBytes int64
	Rate       float64       // bytes on the wire per second, over the last 20 s
	SendRate   float64       // bytes on the wire per second since the start
	ScanRate   float64       // source bytes scanned per second
	ETA        time.Duration // remaining wire bytes (estimated) at Rate, or the scan's, whichever is longer
	Elapsed    time.Duration
	Phase      string // "connect", "scan", "verify", "done"
	Level      int    // zstd level in use (1 fastest … 3)
	// After the final proof: what it covered, and how long the gateway took
	// to make it.
	Proof     FinishResult
	ProofTime time.Duration
}

// Syncer runs one sync; SetRate and SetWindows change a running one.
type Syncer struct {
	opt     SyncOptions
	limiter *throttle.Limiter
	client  *http.Client
	base    *url.URL

	ad      adaptive
	checked time.Time
	id      string // this run's sync id

	mu      sync.Mutex
	prog    Progress
	last    time.Time
	t0      time.Time
	samples []rateSample // wire bytes over time, for Rate
}

type rateSample struct {
	at   time.Time
	sent int64
}

// NewSyncer validates opt.
func NewSyncer(opt SyncOptions) (*Syncer, error) {
	if opt.BlockSize == 0 {
		opt.BlockSize = DefaultBlockSize
	}
	if opt.Clock == nil {
		opt.Clock = throttle.RealClock{}
	}
	if opt.RetryFor == 0 {
		opt.RetryFor = 5 * time.Minute
	}
	if opt.BatchBytes <= 0 {
		opt.BatchBytes = 1 << 30
	}
	if opt.ProgressEvery <= 0 {
		opt.ProgressEvery = 500 * time.Millisecond
	}
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	if opt.Rate == 0 {
		opt.Rate = throttle.Unlimited
	}
	if !diskIDPattern.MatchString(opt.DiskID) {
		return nil, fmt.Errorf("%w: disk id %q: use letters, digits, '.', '_' and '-'", ErrInvalid, opt.DiskID)
	}
	if opt.Source == "" || opt.Credential == "" {
		return nil, fmt.Errorf("%w: a sync needs --source and --credential", ErrInvalid)
	}
	base, err := url.Parse(opt.Gateway)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("%w: gateway URL %q: want https://HOST:PORT", ErrInvalid, opt.Gateway)
	}
	s := &Syncer{opt: opt, base: base, limiter: throttle.NewLimiter(opt.Clock, opt.Rate, opt.Windows), t0: opt.Clock.Now()}
	s.client = opt.HTTPClient
	if s.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		switch {
		case base.Scheme == "https":
			cfg, err := PinnedTLSConfig(opt.Fingerprint)
			if err != nil {
				return nil, err
			}
			tr.TLSClientConfig = cfg
		case opt.Fingerprint != "":
			return nil, fmt.Errorf("%w: a fingerprint was given but the gateway URL %q is not https", ErrInvalid, opt.Gateway)
		}
		tr.DisableCompression = true
		s.client = &http.Client{Transport: tr}
	}
	return s, nil
}

// SetRate changes the base rate of the running sync (0 pauses).
func (s *Syncer) SetRate(r throttle.Rate) { s.limiter.SetRate(r) }

// SetWindows replaces the transfer windows of the running sync (nil: none).
func (s *Syncer) SetWindows(w *throttle.Schedule) { s.limiter.SetSchedule(w) }

// Progress returns the latest snapshot.
func (s *Syncer) Progress() Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshot()
}

// snapshot computes the rates: Rate is the wire over the last 20 s (what
// the link does now, not what the scan of unchanged or empty blocks does),
// and the ETA is the larger of the remaining wire bytes at that rate
// (estimated from the wire bytes per scanned byte so far) and the rest of
// the scan at the scan rate.
func (s *Syncer) snapshot() Progress {
	p := s.prog
	p.Level = int(s.ad.lvl.Load()) + 1
	now := s.opt.Clock.Now()
	p.Elapsed = now.Sub(s.t0)
	if n := len(s.samples); n == 0 || now.Sub(s.samples[n-1].at) >= time.Second {
		s.samples = append(s.samples, rateSample{now, p.SentBytes})
	}
	for len(s.samples) > 2 && now.Sub(s.samples[1].at) > 20*time.Second {
		s.samples = s.samples[1:]
	}
	secs := p.Elapsed.Seconds()
	if secs <= 0 {
		return p
	}
	p.SendRate = float64(p.SentBytes) / secs
	p.ScanRate = float64(p.Done-p.Resumed) / secs
	p.Rate = p.SendRate
	if o := s.samples[0]; now.Sub(o.at) >= 2*time.Second {
		p.Rate = float64(p.SentBytes-o.sent) / now.Sub(o.at).Seconds()
	}
	var eta float64
	if p.ScanRate > 0 {
		eta = float64(p.Total-p.Done) / p.ScanRate
	}
	if scanned := p.Done - p.Resumed; scanned > 0 && p.Rate > 0 {
		wire := float64(p.Total-p.Done) * float64(p.SentBytes) / float64(scanned)
		eta = max(eta, wire/p.Rate)
	}
	p.ETA = time.Duration(eta * float64(time.Second))
	return p
}

func (s *Syncer) update(force bool, f func(p *Progress)) {
	s.mu.Lock()
	f(&s.prog)
	now := s.opt.Clock.Now()
	if s.opt.Progress == nil || (!force && now.Sub(s.last) < s.opt.ProgressEvery) {
		s.mu.Unlock()
		return
	}
	s.last = now
	p := s.snapshot()
	s.mu.Unlock()
	s.opt.Progress(p)
}

// Transient marks errors worth retrying: the gateway is unreachable, busy,
// restarting, or the stream broke.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// GatewayError is an error the gateway reported, with its code.
type GatewayError struct {
	Status int
	Code   string
	Msg    string
}

func (e *GatewayError) Error() string { return fmt.Sprintf("gateway: %s (%s)", e.Msg, e.Code) }

// Run syncs the source to the gateway and returns the final progress. It
// retries transport failures for RetryFor, resuming from the gateway's
// checkpoint each time.
func (s *Syncer) Run(ctx context.Context) (Progress, error) {
	s.mu.Lock()
	s.t0 = s.opt.Clock.Now()
	s.mu.Unlock()
	deadline := time.Now().Add(s.opt.RetryFor)
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := s.attempt(ctx)
		if err == nil {
			s.update(true, func(p *Progress) { p.Phase = "done" })
			return s.Progress(), nil
		}
		var te *transientError
		if !errors.As(err, &te) || ctx.Err() != nil {
			return s.Progress(), err
		}
		if time.Now().After(deadline) {
			return s.Progress(), fmt.Errorf("gave up after retrying for %s: %w", s.opt.RetryFor, err)
		}
		s.opt.Logf("sync %s: %v; retrying in %s", s.opt.DiskID, err, backoff)
		select {
		case <-time.After(backoff): // backoff between reconnects, not a wait for a condition
		case <-ctx.Done():
			return s.Progress(), ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (s *Syncer) path(op string) string {
	return strings.TrimSuffix(s.base.String(), "/") + "/sync/v1/disks/" + s.opt.DiskID + "/" + op
}

// do sends a request and decodes a JSON reply into out (or returns body).
func (s *Syncer) do(ctx context.Context, method, op, query string, body io.Reader, out any) ([]byte, error) {
	u := s.path(op)
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.opt.Credential)
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrFingerprint) {
			return nil, err
		}
		return nil, &transientError{fmt.Errorf("%s %s: %w", method, op, err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32+16*MaxBlocks+16))
	if err != nil {
		return nil, &transientError{fmt.Errorf("%s %s: reading reply: %w", method, op, err)}
	}
	if resp.StatusCode != http.StatusOK {
		var ae apiError
		if json.Unmarshal(b, &ae) != nil || ae.Code == "" {
			ae = apiError{Code: CodeInternal, Error: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))}
		}
		ge := &GatewayError{Status: resp.StatusCode, Code: ae.Code, Msg: ae.Error}
		switch {
		case ae.Code == CodeBusy, ae.Code == CodeTruncated, resp.StatusCode >= 500:
			return nil, &transientError{ge}
		}
		return nil, ge
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, &transientError{fmt.Errorf("%s %s: bad reply: %w", method, op, err)}
		}
	}
	return b, nil
}

func (s *Syncer) statePath(ext string) string {
	return filepath.Join(s.opt.StateDir, s.opt.DiskID+"."+ext)
}

// syncID returns the id of the sync in progress for this disk, creating and
// persisting one if there is none.
func (s *Syncer) syncID(size int64) (string, error) {
	if s.id != "" {
		return s.id, nil
	}
	if s.opt.StateDir != "" && !s.opt.noResume {
		if b, err := os.ReadFile(s.statePath("sync")); err == nil {
			var st struct {
				ID        string `json:"id"`
				Size      int64  `json:"size"`
				BlockSize int    `json:"block_size"`
			}
			if json.Unmarshal(b, &st) == nil && st.Size == size && st.BlockSize == s.opt.BlockSize && st.ID != "" {
				s.id = st.ID
				return st.ID, nil
			}
		}
	}
	b := make([]byte, 12)
	rand.Read(b)
	id := hex.EncodeToString(b)
	if s.opt.StateDir != "" {
		if err := os.MkdirAll(s.opt.StateDir, 0o700); err != nil {
			return "", err
		}
		js, _ := json.Marshal(map[string]any{"id": id, "size": size, "block_size": s.opt.BlockSize})
		if err := writeAtomic(s.statePath("sync"), func(w io.Writer) error { _, err := w.Write(js); return err }); err != nil {
			return "", err
		}
	}
	s.id = id
	return id, nil
}

// attempt is one connection's worth of sync: open a session, agree on a
// baseline, scan from the checkpoint, stream frames, prove the result.
func (s *Syncer) attempt(ctx context.Context) error {
	src, err := OpenSource(s.opt.Source)
	if err != nil {
		return err
	}
	defer src.Close()
	size := src.Size()
	if size == 0 {
		return fmt.Errorf("%w: source %s is empty", ErrInvalid, s.opt.Source)
	}
	if err := CheckBlockSize(s.opt.BlockSize, size); err != nil {
		return err
	}
	id, err := s.syncID(size)
	if err != nil {
		return err
	}
	s.update(true, func(p *Progress) { p.Phase, p.Total = "connect", size })
	proto := wire.Protocol
	if s.opt.Protocol > 0 {
		proto = min(proto, s.opt.Protocol)
	}
	js, _ := json.Marshal(sessionRequest{SyncID: id, Size: size, BlockSize: s.opt.BlockSize, Protocol: proto})
	var cp Checkpoint
	if _, err := s.do(ctx, http.MethodPost, "session", "", bytes.NewReader(js), &cp); err != nil {
		return err
	}
	baseline, err := s.baseline(ctx, cp)
	if err != nil {
		return err
	}
	if baseline.Size != size || baseline.BlockSize != s.opt.BlockSize {
		return &transientError{fmt.Errorf("gateway manifest is %d bytes in %d-byte blocks, expected %d in %d", baseline.Size, baseline.BlockSize, size, s.opt.BlockSize)}
	}
	if cp.Offset > 0 {
		s.opt.Logf("sync %s: resuming at offset %d of %d", s.opt.DiskID, cp.Offset, size)
	}
	// Blocks before the checkpoint hold what this sync already sent: their
	// hashes come from the gateway's manifest. The result is built in place
	// over the baseline (no second 16 B/block copy): block i's baseline hash
	// is read when block i is decided, which happens before block i is
	// emitted and overwritten, and no other block reads it.
	result := baseline
	start := int(min(cp.Offset/int64(s.opt.BlockSize), int64(len(result.Hashes))))
	s.update(true, func(p *Progress) { p.Phase, p.Resumed, p.Done = "scan", cp.Offset, cp.Offset })

	st := &stream{s: s, id: id, src: src, result: result}
	sc := newScanner(src, s.opt.BlockSize, baseline, s.opt.Workers)
	pl := &planner{s: s, baseline: baseline, sc: sc,
		patch: cp.Protocol >= 2 && slices.Contains(cp.Features, FeaturePatch),
		dedup: cp.Protocol >= 2 && slices.Contains(cp.Features, FeatureDedup) && cp.IndexBlocks > 0}
	if s.opt.StateDir != "" {
		if pl.store, err = openSubStore(s.statePath("subs"), s.opt.BlockSize); err != nil {
			s.opt.Logf("sync %s: %v; changed blocks travel whole", s.opt.DiskID, err)
		} else {
			defer pl.store.Close()
		}
	}
	sc.process = pl.process
	actx, stop := context.WithCancel(ctx)
	defer stop()
	go s.adapt(actx, sc.workers)
	err = pl.pump(ctx, st, start, len(result.Hashes), func(b *block) error {
		if err := s.check(false); err != nil {
			return err
		}
		result.Hashes[b.idx] = b.hash
		n := int64(result.BlockLen(b.idx))
		switch b.what {
		case skipZero:
			s.update(false, func(p *Progress) { p.BlocksZero++; p.Done += n })
			return nil
		case skipUnchanged:
			s.update(false, func(p *Progress) { p.BlocksSame++; p.Done += n })
			return nil
		}
		plain := b.plain
		if b.frame.Kind == wire.KindZero {
			plain = wire.HeaderSize
		}
		if err := st.send(ctx, &b.frame, plain); err != nil {
			return err
		}
		s.update(false, func(p *Progress) {
			p.BlocksSent++
			switch b.frame.Kind {
			case wire.KindPatch:
				p.BlocksPatched++
				p.ChangedBytes += int64(plain - wire.HeaderSize)
			case wire.KindCopy:
				p.BlocksCopied++
				p.CopiedBytes += n
			default:
				p.ChangedBytes += int64(b.frame.Length)
			}
			p.Done += n
		})
		return nil
	})
	if err != nil {
		st.abort(err)
		return err
	}
	if err := st.flush(ctx); err != nil {
		return err
	}
	if err := s.check(true); err != nil {
		return err
	}
	return s.finish(ctx, st, src, result)
}

// check calls the Check hook about once a second (always when now).
func (s *Syncer) check(now bool) error {
	if s.opt.Check == nil {
		return nil
	}
	if t := time.Now(); now || t.Sub(s.checked) >= time.Second {
		s.checked = t
		if err := s.opt.Check(); err != nil {
			return fmt.Errorf("source %s: %w", s.opt.Source, err)
		}
	}
	return nil
}

// baseline returns the manifest of what the target holds: the local one if
// the gateway says it has the same, else the gateway's.
func (s *Syncer) baseline(ctx context.Context, cp Checkpoint) (*Manifest, error) {
	if s.opt.StateDir != "" {
		if m, err := LoadManifest(s.statePath("manifest")); err == nil && m.Digest() == cp.ManifestDigest {
			return m, nil
		}
	}
	// Read the manifest straight off the response: at 2 TiB it is 32 MiB,
	// and buffering it first would double the agent's peak memory.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.path("manifest"), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.opt.Credential)
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrFingerprint) {
			return nil, err
		}
		return nil, &transientError{fmt.Errorf("GET manifest: %w", err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return nil, &transientError{fmt.Errorf("GET manifest: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))}
	}
	m, err := ReadManifest(resp.Body)
	if err != nil {
		return nil, &transientError{fmt.Errorf("gateway manifest: %w", err)}
	}
	return m, nil
}

// finish asks the gateway to prove the target equals result, re-sending
// whatever it reports different, a few rounds at most.
func (s *Syncer) finish(ctx context.Context, st *stream, src *Source, result *Manifest) error {
	for round := 0; ; round++ {
		s.update(true, func(p *Progress) { p.Phase = "verify" })
		// Stream the manifest rather than buffer it: at 2 TiB it is 32 MiB.
		pr, pw := io.Pipe()
		go func() { _, err := result.WriteTo(pw); pw.CloseWithError(err) }()
		var fr FinishResult
		t0 := time.Now()
		_, err := s.do(ctx, http.MethodPost, "finish", s.finishQuery(st.id), pr, &fr)
		s.update(false, func(p *Progress) { p.ProofTime += time.Since(t0) })
		pr.Close()
		if err != nil {
			return err
		}
		if fr.Equal {
			s.update(false, func(p *Progress) { p.Proof = fr })
			if s.opt.StateDir != "" {
				if err := SaveManifest(s.statePath("manifest"), result); err != nil {
					return fmt.Errorf("save manifest: %w", err)
				}
				os.Remove(s.statePath("sync"))
			}
			return nil
		}
		if round == 3 {
			return fmt.Errorf("target disk %s still differs from the source after %d rounds (%d blocks); is something else writing the target?", s.opt.DiskID, round, len(fr.Mismatched))
		}
		s.opt.Logf("sync %s: final check found %d differing blocks; re-sending", s.opt.DiskID, len(fr.Mismatched))
		if fr.More {
			// Too many to list: the gateway reset its manifest to the truth, so
			// a fresh attempt re-scans against it.
			return &transientError{fmt.Errorf("target differs in more than %d blocks; re-scanning", len(fr.Mismatched))}
		}
		if err := st.resend(ctx, fr.Mismatched); err != nil {
			return err
		}
		if err := st.flush(ctx); err != nil {
			return err
		}
	}
}

// finishQuery tells the gateway which proof to make and how the source was
// read.
func (s *Syncer) finishQuery(id string) string {
	q := url.Values{"sync": {id}}
	if s.opt.VerifyFull {
		q.Set("verify", "full")
	}
	c := s.opt.Consistency
	if c == nil {
		c = &Consistency{Note: "live read: no snapshot was asked for"}
	}
	q.Set("consistent", strconv.FormatBool(c.Consistent))
	if c.Method != "" {
		q.Set("snapshot", c.Method)
	}
	if c.Note != "" {
		q.Set("note", c.Note)
	}
	return q.Encode()
}

// ProofSummary says in a sentence what the final proof of p covered.
func ProofSummary(p Progress) string {
	f := p.Proof
	switch {
	case f.FullRead:
		return fmt.Sprintf("the whole target (%s) re-read and hashed (%s)", humanSize(f.RereadBytes), f.Reason)
	case f.LastFullVerify != "":
		return fmt.Sprintf("the %s this sync wrote re-read and hashed; the other %s trusted from the full verification of %s", humanSize(f.RereadBytes), humanSize(f.TrustedBytes), f.LastFullVerify)
	}
	return fmt.Sprintf("the %s this sync wrote re-read and hashed; the other %s trusted", humanSize(f.RereadBytes), humanSize(f.TrustedBytes))
}

func humanSize(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "KiB", "MiB", "GiB", "TiB"} {
		if f < 1024 || u == "TiB" {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1024
	}
	return ""
}

// stream batches frames into POST bodies, throttled, and re-sends what the
// gateway rejects.
type stream struct {
	s      *Syncer
	id     string
	src    *Source
	result *Manifest
	enc    *wire.Encoder

	pw      *io.PipeWriter
	done    chan postResult
	bytes   int64
	frames  uint64
	pending []int64 // offsets to re-send
	resent  map[int64]int
}

type postResult struct {
	res StreamResult
	err error
}

func (st *stream) open(ctx context.Context) {
	pr, pw := io.Pipe()
	st.pw, st.done, st.bytes, st.frames = pw, make(chan postResult, 1), 0, 0
	go func() {
		var r StreamResult
		_, err := st.s.do(ctx, http.MethodPost, "frames", "sync="+st.id, pr, &r)
		pr.CloseWithError(errors.New("request finished"))
		st.done <- postResult{r, err}
	}()
}

// send writes one frame; plain is its size before compression.
func (st *stream) send(ctx context.Context, f *wire.Frame, plain int) error {
	if st.pw == nil {
		st.open(ctx)
	}
	n := wire.HeaderSize + len(f.Payload)
	t0 := time.Now()
	defer func() { st.s.ad.link.Add(int64(time.Since(t0))) }()
	if err := st.s.limiter.Wait(ctx, n); err != nil {
		return err
	}
	if _, err := wire.Write(st.pw, f); err != nil {
		r := <-st.done
		st.pw = nil
		if r.err != nil {
			return r.err
		}
		return &transientError{fmt.Errorf("stream to gateway: %w", err)}
	}
	st.frames++
	st.bytes += int64(n)
	st.s.update(false, func(p *Progress) { p.SentBytes += int64(n); p.PlainBytes += int64(plain) })
	if st.bytes >= st.s.opt.BatchBytes {
		return st.close(ctx)
	}
	return nil
}

// close ends the current POST and collects its rejected frames.
func (st *stream) close(ctx context.Context) error {
	if st.pw == nil {
		return nil
	}
	err := wire.WriteEnd(st.pw, st.frames)
	st.pw.Close()
	r := <-st.done
	st.pw = nil
	if r.err != nil {
		return r.err
	}
	if err != nil {
		return &transientError{err}
	}
	st.pending = append(st.pending, r.res.Rejected...)
	return nil
}

func (st *stream) abort(err error) {
	if st.pw != nil {
		st.pw.CloseWithError(err)
		<-st.done
		st.pw = nil
	}
}

// flush closes the current POST and re-sends rejected frames until none are
// left.
func (st *stream) flush(ctx context.Context) error {
	for {
		if err := st.close(ctx); err != nil {
			return err
		}
		if len(st.pending) == 0 {
			return nil
		}
		offs := st.pending
		st.pending = nil
		st.s.opt.Logf("sync %s: gateway rejected %d frames (damaged in transit, or a patch or copy it could not verify); re-sending those blocks whole", st.s.opt.DiskID, len(offs))
		if err := st.resend(ctx, offs); err != nil {
			return err
		}
	}
}

// resend re-reads and re-sends the blocks at offs. A block rejected again and
// again points at something broken on the path, not bad luck.
func (st *stream) resend(ctx context.Context, offs []int64) error {
	if st.enc == nil {
		st.enc = wire.NewEncoder(zstd.SpeedFastest)
		st.resent = map[int64]int{}
	}
	m := st.result
	buf := make([]byte, m.BlockSize)
	var comp []byte
	for _, off := range offs {
		idx := int(off / int64(m.BlockSize))
		if off%int64(m.BlockSize) != 0 || idx >= len(m.Hashes) {
			return fmt.Errorf("gateway asked to re-send offset %d, which is not a block of this disk", off)
		}
		if st.resent[off]++; st.resent[off] > 5 {
			return fmt.Errorf("block at offset %d was rejected 5 times: the path to the gateway corrupts data", off)
		}
		b := buf[:m.BlockLen(idx)]
		if err := st.src.ReadBlock(off, b); err != nil {
			return err
		}
		h := wire.Sum(b)
		m.Hashes[idx] = h
		var f wire.Frame
		f, comp = st.enc.Encode(uint64(off), b, h, comp)
		if err := st.send(ctx, &f, wire.HeaderSize+len(b)); err != nil {
			return err
		}
		st.s.update(false, func(p *Progress) { p.BlocksResent++ })
	}
	return nil
}
