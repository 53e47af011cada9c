package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/bits"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferry-migrate/ferry/engine/wire"
)

// Error codes carried in the JSON body of a failed gateway request. The agent
// retries "busy" and transport failures, and stops on the others.
const (
	CodeInvalid      = "invalid"
	CodeUnauthorized = "unauthorized"
	CodeNotFound     = "not_found"
	CodeTooSmall     = "target_too_small"
	CodeBusy         = "busy"
	CodeConflict     = "conflict"
	CodeTruncated    = "truncated"
	CodeInternal     = "internal"
)

// GatewayOptions configures a Gateway.
type GatewayOptions struct {
	// Dir holds the credential key and per-disk sync state (state/ID.*).
	Dir string
	// Resolve maps a disk id to the path of its target file or device; the
	// default is Dir/disks/ID.img. It returns an error wrapping
	// os.ErrNotExist when the disk does not exist.
	Resolve func(diskID string) (string, error)
	// Create lets the gateway create a missing target (as a sparse file of the
	// source's size); standalone gateways do, driver-backed ones don't.
	Create bool
	// Grow lets the gateway extend a target smaller than the source.
	Grow bool
	// VerifyFull makes every end-of-sync check re-read the whole target.
	// Otherwise the gateway re-reads only what this sync wrote and trusts the
	// verified manifest for the rest, unless the sync was resumed or the
	// gateway restarted during it, when it re-reads everything.
	VerifyFull bool
	// CheckpointBytes is how much written data triggers an fsync and a
	// durable checkpoint (default 256 MiB); every stream also ends with one.
	CheckpointBytes int64
	// Now is the clock used for credential expiry (default time.Now).
	Now func() time.Time
	// Logf logs (default log.Printf).
	Logf func(format string, args ...any)
	// Authorize, when set, is asked whether a verified, unexpired
	// credential may still be used: when a request is admitted, and at
	// least every AuthorizeEvery (default 1 s) while its body is read. An
	// error wrapping ErrUnauthorized refuses it (401, or ends a frames
	// stream); any other error answers busy, which agents retry. The
	// control plane checks the credential's subject against revocation
	// (see gateway_auth.go and docs/security.md).
	Authorize      func(ctx context.Context, c Credential) error
	AuthorizeEvery time.Duration
}

// Gateway is the receiving end of the data path: an http.Handler serving
// /sync/v1/disks/{id}/... It verifies every frame, writes with pwrite, and
// keeps a durable checkpoint and manifest per disk.
type Gateway struct {
	opt   GatewayOptions
	key   CredentialKey
	mu    sync.Mutex
	disks map[string]*diskState
}

// diskState is the gateway's knowledge of one target disk.
type diskState struct {
	lock     sync.Mutex // held by whoever writes the target
	path     string
	manifest *Manifest // what the target holds, as far as verified writes go
	ckpt     checkpoint
	written  bitset           // blocks written by the current sync (1 bit per block)
	pending  map[int]struct{} // blocks rejected in the current sync, not yet re-sent
	hw       int64            // end of the furthest frame received in this sync
	exact    bool             // manifest is exact: verified baseline, no crash or resume since
	dirty    int64            // bytes written since the last checkpoint
	// pub is the last persisted checkpoint, readable while a stream holds
	// lock, so that progress queries never wait for a stream to end.
	pub atomic.Pointer[Checkpoint]
}

// checkpoint is persisted as state/ID.checkpoint (JSON) next to
// state/ID.manifest; see Checkpoint in the API for field meanings.
type checkpoint struct {
	SyncID   string `json:"sync_id,omitempty"`
	Offset   int64  `json:"offset"`
	Verified bool   `json:"verified"` // the manifest is the proven state of the target
	Updated  string `json:"updated,omitempty"`
	// Opened is when the sync SyncID opened its session (kept through its
	// resumes); VerifiedAt when a finish proved the target equal. The
	// control plane reads both to tell a pass that began after it was
	// asked for (GatewayClient.Session).
	Opened     string `json:"opened,omitempty"`
	VerifiedAt string `json:"verified_at,omitempty"`
	// Target identifies the target file as the gateway last left it, so that
	// a disk replaced or written behind the gateway's back is re-read rather
	// than trusted.
	Target *fileID `json:"target,omitempty"`
}

type fileID struct {
	Ino     uint64 `json:"ino"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
}

func statID(path string) *fileID {
	st, err := os.Stat(path)
	if err != nil {
		return nil
	}
	id := &fileID{Size: st.Size(), MtimeNs: st.ModTime().UnixNano()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		id.Ino = sys.Ino
	}
	return id
}

// Checkpoint is what GET .../checkpoint and POST .../session return.
type Checkpoint struct {
	SyncID         string `json:"sync_id"`
	Offset         int64  `json:"offset"` // resume here: everything before is durably applied
	Size           int64  `json:"size"`
	BlockSize      int    `json:"block_size"`
	ManifestDigest string `json:"manifest_digest"`
	Verified       bool   `json:"verified"`
	// Opened, VerifiedAt, Updated: see checkpoint (RFC 3339, gateway clock).
	Opened     string `json:"opened,omitempty"`
	VerifiedAt string `json:"verified_at,omitempty"`
	Updated    string `json:"updated,omitempty"`
}

// StreamResult is the reply to a frames stream.
type StreamResult struct {
	Checkpoint int64   `json:"checkpoint"`
	Frames     uint64  `json:"frames"`
	Rejected   []int64 `json:"rejected,omitempty"` // offsets of frames whose hash did not verify
}

// FinishResult is the reply to a finish request.
type FinishResult struct {
	Equal      bool    `json:"equal"`
	Mismatched []int64 `json:"mismatched,omitempty"` // block offsets; capped at maxMismatches
	More       bool    `json:"more,omitempty"`       // more mismatches than listed
	FullRead   bool    `json:"full_read"`            // the whole target was re-read
}

const maxMismatches = 4096

type apiError struct {
	Code  string `json:"code"`
	Error string `json:"error"`
}

var diskIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// NewGateway opens (creating) Dir and its credential key.
func NewGateway(opt GatewayOptions) (*Gateway, error) {
	if opt.Dir == "" {
		return nil, fmt.Errorf("%w: gateway needs a data directory", ErrInvalid)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logf == nil {
		opt.Logf = log.Printf
	}
	if opt.CheckpointBytes <= 0 {
		opt.CheckpointBytes = 256 << 20
	}
	if opt.Resolve == nil {
		dir := filepath.Join(opt.Dir, "disks")
		opt.Resolve = func(id string) (string, error) { return filepath.Join(dir, id+".img"), nil }
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(opt.Dir, "state"), 0o700); err != nil {
		return nil, err
	}
	key, err := LoadOrCreateCredentialKey(filepath.Join(opt.Dir, "credential.key"))
	if err != nil {
		return nil, err
	}
	return &Gateway{opt: opt, key: key, disks: map[string]*diskState{}}, nil
}

// IssueCredential issues a credential for disk valid for ttl.
func (g *Gateway) IssueCredential(disk string, ttl time.Duration) (string, error) {
	if !diskIDPattern.MatchString(disk) {
		return "", fmt.Errorf("%w: disk id %q: use letters, digits, '.', '_' and '-'", ErrInvalid, disk)
	}
	return g.key.Issue(disk, g.opt.Now(), ttl)
}

func (g *Gateway) statePath(id, ext string) string {
	return filepath.Join(g.opt.Dir, "state", id+"."+ext)
}

// ServeHTTP routes /sync/v1/disks/{id}/{session,checkpoint,manifest,frames,finish}.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/sync/v1/disks/")
	id, op, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		writeErr(w, http.StatusNotFound, CodeNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	if !diskIDPattern.MatchString(id) {
		writeErr(w, http.StatusBadRequest, CodeInvalid, fmt.Sprintf("disk id %q is not valid", id))
		return
	}
	if r, ok = g.admit(w, r, id); !ok { // gateway_auth.go
		return
	}
	var err error
	switch {
	case op == "session" && r.Method == http.MethodPost:
		err = g.openSession(w, r, id)
	case op == "checkpoint" && r.Method == http.MethodGet:
		err = g.getCheckpoint(w, id)
	case op == "manifest" && r.Method == http.MethodGet:
		err = g.getManifest(w, id)
	case op == "frames" && r.Method == http.MethodPost:
		err = g.receive(w, r, id)
	case op == "finish" && r.Method == http.MethodPost:
		err = g.finish(w, r, id)
	default:
		writeErr(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no %s %s", r.Method, r.URL.Path))
		return
	}
	if err != nil {
		status, code := classify(err)
		if status == http.StatusInternalServerError {
			g.opt.Logf("gateway: disk %s %s: %v", id, op, err)
		}
		writeErr(w, status, code, err.Error())
	}
}

// codedError carries an HTTP status and API code to the one place that maps
// errors to responses.
type codedError struct {
	status int
	code   string
	err    error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func coded(status int, code string, format string, args ...any) error {
	return &codedError{status, code, fmt.Errorf(format, args...)}
}

func classify(err error) (int, string) {
	var ce *codedError
	switch {
	case errors.As(err, &ce):
		return ce.status, ce.code
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, CodeInvalid
	case errors.Is(err, os.ErrNotExist):
		return http.StatusNotFound, CodeNotFound
	}
	return http.StatusInternalServerError, CodeInternal
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(apiError{Code: code, Error: msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// disk returns the state of disk id, loading it from Dir on first use. The
// caller must hold ds.lock to read or change anything but path.
func (g *Gateway) disk(id string) (*diskState, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ds, ok := g.disks[id]; ok {
		return ds, nil
	}
	path, err := g.opt.Resolve(id)
	if err != nil {
		return nil, fmt.Errorf("disk %s: %w", id, err)
	}
	ds := &diskState{path: path}
	m, err := LoadManifest(g.statePath(id, "manifest"))
	switch {
	case err == nil:
		ds.manifest = m
	case errors.Is(err, ErrInvalid):
		// A damaged state file costs a re-read of the target, not the sync.
		g.opt.Logf("gateway: disk %s: %v; the target will be re-read", id, err)
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	if b, err := os.ReadFile(g.statePath(id, "checkpoint")); err == nil {
		if err := json.Unmarshal(b, &ds.ckpt); err != nil {
			g.opt.Logf("gateway: disk %s: checkpoint damaged (%v); the target will be re-read", id, err)
			ds.manifest, ds.ckpt = nil, checkpoint{}
		}
	}
	// A manifest that was verified and has seen no sync since is exact;
	// anything loaded mid-sync is not (the gateway may have died after pwrites
	// it never recorded).
	ds.exact = ds.manifest != nil && ds.ckpt.Verified
	g.disks[id] = ds
	return ds, nil
}

// lockDisk takes the disk's write lock, or reports busy.
func lockDisk(ds *diskState, id string) error {
	if !ds.lock.TryLock() {
		return coded(http.StatusConflict, CodeBusy, "disk %s: another sync stream is using it; retry shortly", id)
	}
	return nil
}

type sessionRequest struct {
	SyncID    string `json:"sync_id"`
	Size      int64  `json:"size"`
	BlockSize int    `json:"block_size"`
}

func (g *Gateway) openSession(w http.ResponseWriter, r *http.Request, id string) error {
	var req sessionRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		return fmt.Errorf("%w: session request: %v", ErrInvalid, err)
	}
	if req.SyncID == "" || len(req.SyncID) > 64 || req.Size <= 0 {
		return fmt.Errorf("%w: session request needs a sync id and a positive size", ErrInvalid)
	}
	if err := CheckBlockSize(req.BlockSize, req.Size); err != nil {
		return err
	}
	ds, err := g.disk(id)
	if err != nil {
		return err
	}
	if err := lockDisk(ds, id); err != nil {
		return err
	}
	defer ds.lock.Unlock()
	created, err := g.prepareTarget(ds, id, req.Size)
	if err != nil {
		return err
	}
	if ds.manifest != nil && !created && ds.ckpt.Target != nil {
		now, was := statID(ds.path), *ds.ckpt.Target
		if now != nil && !ds.ckpt.Verified {
			// Mid-sync, writes after the last checkpoint move mtime: expected
			// after a crash, and the sync's final proof re-reads everything
			// (exact is false). A different file is still a different file.
			was.MtimeNs = now.MtimeNs
		}
		if now == nil || *now != was {
			g.opt.Logf("gateway: disk %s: the target changed outside the gateway; re-reading it", id)
			ds.manifest = nil
		}
	}
	if ds.manifest == nil || ds.manifest.BlockSize != req.BlockSize {
		if created {
			ds.manifest = NewManifest(req.Size, req.BlockSize)
			ds.exact = true
		} else {
			// Unknown content (a disk made by someone else, or synced with
			// another block size): learn it by reading it.
			g.opt.Logf("gateway: disk %s: hashing the target to learn its content", id)
			m, err := hashPrefix(r.Context(), ds.path, req.BlockSize, req.Size)
			if err != nil {
				return err
			}
			ds.manifest, ds.exact = m, true
		}
		ds.manifest.Resize(req.Size)
		ds.ckpt = checkpoint{Verified: true}
		if err := g.persist(id, ds); err != nil {
			return err
		}
	}
	if ds.manifest.Size != req.Size {
		ds.manifest.Resize(req.Size)
	}
	if ds.ckpt.SyncID == req.SyncID && !ds.ckpt.Verified {
		ds.exact = false // resuming: pwrites after the last checkpoint are unaccounted
		g.opt.Logf("gateway: disk %s: sync %s resumes at offset %d", id, req.SyncID, ds.ckpt.Offset)
	} else {
		if !ds.ckpt.Verified {
			ds.exact = false // the previous sync never finished
		}
		ds.ckpt = checkpoint{SyncID: req.SyncID, Opened: g.opt.Now().UTC().Format(time.RFC3339Nano)}
		ds.written = nil
		if err := g.persist(id, ds); err != nil {
			return err
		}
	}
	ds.hw, ds.pending = ds.ckpt.Offset, map[int]struct{}{}
	if ds.written == nil {
		ds.written = newBitset(len(ds.manifest.Hashes))
	}
	ds.written.grow(len(ds.manifest.Hashes))
	writeJSON(w, g.checkpointOf(ds))
	return nil
}

// prepareTarget makes sure the target exists and holds size bytes.
func (g *Gateway) prepareTarget(ds *diskState, id string, size int64) (created bool, err error) {
	st, err := os.Stat(ds.path)
	if errors.Is(err, os.ErrNotExist) {
		if !g.opt.Create {
			return false, coded(http.StatusNotFound, CodeNotFound, "target disk %s does not exist at %s (the driver must create it first)", id, ds.path)
		}
		f, err := os.OpenFile(ds.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return false, fmt.Errorf("create target disk %s: %w", id, err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			return false, fmt.Errorf("size target disk %s: %w", id, err)
		}
		ds.manifest = nil
		return true, f.Sync()
	}
	if err != nil {
		return false, fmt.Errorf("target disk %s: %w", id, err)
	}
	cur := st.Size()
	if !st.Mode().IsRegular() {
		f, err := os.Open(ds.path)
		if err != nil {
			return false, fmt.Errorf("target disk %s: %w", id, err)
		}
		cur, err = f.Seek(0, io.SeekEnd)
		f.Close()
		if err != nil {
			return false, fmt.Errorf("measure target disk %s: %w", id, err)
		}
	}
	if cur < size {
		if !g.opt.Grow || !st.Mode().IsRegular() {
			return false, coded(http.StatusConflict, CodeTooSmall, "target disk %s is %d bytes, the source is %d bytes: grow the target disk to at least the source size", id, cur, size)
		}
		if err := os.Truncate(ds.path, size); err != nil {
			return false, fmt.Errorf("grow target disk %s to %d bytes: %w", id, size, err)
		}
		g.opt.Logf("gateway: disk %s grown from %d to %d bytes", id, cur, size)
	}
	return false, nil
}

func (g *Gateway) checkpointOf(ds *diskState) Checkpoint {
	return Checkpoint{SyncID: ds.ckpt.SyncID, Offset: ds.ckpt.Offset, Size: ds.manifest.Size,
		BlockSize: ds.manifest.BlockSize, ManifestDigest: ds.manifest.Digest(), Verified: ds.ckpt.Verified,
		Opened: ds.ckpt.Opened, VerifiedAt: ds.ckpt.VerifiedAt, Updated: ds.ckpt.Updated}
}

// persist writes the manifest, then the checkpoint that refers to it. A
// crash between the two leaves a newer manifest with an older offset, which
// only makes the agent re-compare a little more.
func (g *Gateway) persist(id string, ds *diskState) error {
	if err := SaveManifest(g.statePath(id, "manifest"), ds.manifest); err != nil {
		return err
	}
	ds.ckpt.Updated = g.opt.Now().UTC().Format(time.RFC3339Nano)
	ds.ckpt.Target = statID(ds.path)
	b, _ := json.Marshal(ds.ckpt)
	if err := writeAtomic(g.statePath(id, "checkpoint"), func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return err
	}
	cp := g.checkpointOf(ds)
	ds.pub.Store(&cp)
	return nil
}

func (g *Gateway) getCheckpoint(w http.ResponseWriter, id string) error {
	cp, err := g.Checkpoint(id)
	if err != nil {
		return err
	}
	writeJSON(w, cp)
	return nil
}

func (g *Gateway) getManifest(w http.ResponseWriter, id string) error {
	ds, err := g.disk(id)
	if err != nil {
		return err
	}
	ds.lock.Lock()
	defer ds.lock.Unlock()
	if ds.manifest == nil {
		return coded(http.StatusNotFound, CodeNotFound, "disk %s has never been synced", id)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, err = ds.manifest.WriteTo(w)
	return err
}

// sessionDisk returns disk id locked for the request's open sync session
// (see checkSync); the caller unlocks ds.lock.
func (g *Gateway) sessionDisk(id string, r *http.Request) (*diskState, error) {
	ds, err := g.disk(id)
	if err != nil {
		return nil, err
	}
	if err := lockDisk(ds, id); err != nil {
		return nil, err
	}
	if err := g.checkSync(ds, id, r); err != nil {
		ds.lock.Unlock()
		return nil, err
	}
	return ds, nil
}

func (g *Gateway) checkSync(ds *diskState, id string, r *http.Request) error {
	if ds.manifest == nil || ds.ckpt.SyncID == "" || r.URL.Query().Get("sync") != ds.ckpt.SyncID || ds.ckpt.Verified {
		return coded(http.StatusConflict, CodeConflict, "disk %s: sync %q is not the open sync session; open a session first", id, r.URL.Query().Get("sync"))
	}
	return nil
}

// receive applies a stream of frames. Verified frames are written even if
// the stream later breaks; a frame whose hash fails is reported back for
// re-sending; a malformed header or a truncated stream ends the request
// with an error after a checkpoint of everything applied so far.
func (g *Gateway) receive(w http.ResponseWriter, r *http.Request, id string) error {
	ds, err := g.sessionDisk(id, r)
	if err != nil {
		return err
	}
	defer ds.lock.Unlock()
	f, err := os.OpenFile(ds.path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open target disk %s: %w", id, err)
	}
	defer f.Close()
	m := ds.manifest
	rd := wire.NewReader(r.Body)
	dec := wire.NewDecoder()
	var buf []byte
	var res StreamResult
	var streamErr error
	for {
		fr, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			streamErr = err
			break
		}
		off := int64(fr.Offset)
		idx := int(off / int64(m.BlockSize))
		if off%int64(m.BlockSize) != 0 || idx >= len(m.Hashes) || int(fr.Length) != m.BlockLen(idx) {
			streamErr = fmt.Errorf("%w: frame at offset %d length %d does not fit %d-byte blocks of a %d-byte disk", ErrInvalid, off, fr.Length, m.BlockSize, m.Size)
			break
		}
		data, err := dec.Decode(fr, buf)
		if errors.Is(err, wire.ErrHashMismatch) {
			res.Rejected = append(res.Rejected, off)
			ds.pending[idx] = struct{}{}
			continue
		}
		if err != nil {
			streamErr = err
			break
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
			streamErr = fmt.Errorf("write target disk %s at offset %d: %w", id, off, err)
			break
		}
		m.Hashes[idx] = fr.Hash
		ds.written.set(idx)
		delete(ds.pending, idx)
		ds.hw = max(ds.hw, off+int64(fr.Length))
		ds.dirty += int64(fr.Length)
		if ds.dirty >= g.opt.CheckpointBytes {
			if err := g.checkpointNow(f, id, ds); err != nil {
				return err
			}
		}
	}
	res.Frames = rd.Frames()
	if err := g.checkpointNow(f, id, ds); err != nil {
		return err
	}
	res.Checkpoint = ds.ckpt.Offset
	if streamErr != nil {
		if ce := streamRefusal(r); ce != nil { // the credential was taken back mid-stream
			return &codedError{ce.status, ce.code, fmt.Errorf("disk %s: %w (applied %d frames; resume at offset %d)", id, ce.err, res.Frames, res.Checkpoint)}
		}
		status, code := http.StatusBadRequest, CodeInvalid
		if errors.Is(streamErr, wire.ErrTruncated) {
			code = CodeTruncated
		} else if !errors.Is(streamErr, wire.ErrCorrupt) && !errors.Is(streamErr, ErrInvalid) {
			status, code = http.StatusInternalServerError, CodeInternal
		}
		return &codedError{status, code, fmt.Errorf("disk %s: %w (applied %d frames; resume at offset %d)", id, streamErr, res.Frames, res.Checkpoint)}
	}
	writeJSON(w, res)
	return nil
}

// checkpointNow makes everything written durable, then records how far the
// agent may skip on resume: up to the furthest frame received, but not past
// a rejected frame that has not been re-sent.
func (g *Gateway) checkpointNow(f *os.File, id string, ds *diskState) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync target disk %s: %w", id, err)
	}
	off := ds.hw
	for idx := range ds.pending {
		off = min(off, int64(idx)*int64(ds.manifest.BlockSize))
	}
	ds.ckpt.Offset = max(ds.ckpt.Offset, 0)
	ds.ckpt.Offset = off
	ds.dirty = 0
	return g.persist(id, ds)
}

// zeroRange makes [off, off+n) read as zeros: punch a hole (keeping the
// size), or write zeros where the filesystem or device cannot.
func zeroRange(f *os.File, off, n int64) error {
	const punchHole = 0x02 | 0x01 // FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
	if err := syscall.Fallocate(int(f.Fd()), punchHole, off, n); err == nil {
		return nil
	}
	_, err := f.WriteAt(make([]byte, n), off)
	return err
}

func (g *Gateway) finish(w http.ResponseWriter, r *http.Request, id string) error {
	ds, err := g.sessionDisk(id, r)
	if err != nil {
		return err
	}
	defer ds.lock.Unlock()
	src, err := ReadManifest(io.LimitReader(r.Body, 32+16*MaxBlocks+8+1))
	if err != nil {
		return fmt.Errorf("source manifest: %w", err)
	}
	if src.BlockSize != ds.manifest.BlockSize || src.Size != ds.manifest.Size {
		return fmt.Errorf("%w: source manifest is %d bytes in %d-byte blocks, the session is %d in %d", ErrInvalid, src.Size, src.BlockSize, ds.manifest.Size, ds.manifest.BlockSize)
	}
	target, full, err := g.targetManifest(r.Context(), ds)
	if err != nil {
		return err
	}
	ds.manifest = target // the truth, whatever we thought before
	diff := src.Diff(target)
	res := FinishResult{Equal: len(diff) == 0, FullRead: full}
	for i, idx := range diff {
		if i == maxMismatches {
			res.More = true
			break
		}
		res.Mismatched = append(res.Mismatched, int64(idx)*int64(src.BlockSize))
	}
	if res.Equal {
		ds.ckpt = checkpoint{Verified: true, Offset: src.Size, Opened: ds.ckpt.Opened, VerifiedAt: g.opt.Now().UTC().Format(time.RFC3339Nano)}
		ds.exact, ds.written = true, nil
	} else {
		ds.ckpt.Offset = 0
	}
	if err := g.persist(id, ds); err != nil {
		return err
	}
	writeJSON(w, res)
	return nil
}

// targetManifest returns the manifest of what the target holds, re-reading
// either everything or just the blocks this sync wrote.
func (g *Gateway) targetManifest(ctx context.Context, ds *diskState) (*Manifest, bool, error) {
	if g.opt.VerifyFull || !ds.exact {
		m, err := hashPrefix(ctx, ds.path, ds.manifest.BlockSize, ds.manifest.Size)
		if err != nil {
			return nil, true, err
		}
		if m.Size != ds.manifest.Size {
			return nil, true, fmt.Errorf("target %s is %d bytes, shorter than the %d-byte source: it shrank during the sync", ds.path, m.Size, ds.manifest.Size)
		}
		return m, true, nil
	}
	m := ds.manifest // updated in place: what is read from disk is the truth
	f, err := os.Open(ds.path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	buf := make([]byte, m.BlockSize)
	for idx := range ds.written.all() {
		if idx >= len(m.Hashes) {
			break // the source shrank since this sync began
		}
		b := buf[:m.BlockLen(idx)]
		if _, err := f.ReadAt(b, int64(idx)*int64(m.BlockSize)); err != nil {
			return nil, false, fmt.Errorf("re-read target at block %d: %w", idx, err)
		}
		m.Hashes[idx] = wire.Sum(b)
	}
	return m, false, nil
}

// Checkpoint returns the disk's sync state for the control plane: where an
// interrupted sync resumes, and whether the target is proven equal to the
// source of the last completed sync. It wraps os.ErrNotExist for a disk the
// gateway has never seen.
func (g *Gateway) Checkpoint(id string) (Checkpoint, error) {
	ds, err := g.disk(id)
	if err != nil {
		return Checkpoint{}, err
	}
	if cp := ds.pub.Load(); cp != nil {
		return *cp, nil
	}
	ds.lock.Lock()
	defer ds.lock.Unlock()
	if ds.manifest == nil {
		return Checkpoint{}, fmt.Errorf("disk %s has never been synced: %w", id, os.ErrNotExist)
	}
	return g.checkpointOf(ds), nil
}

// Manifest returns a copy of the manifest of what the target holds. After a
// completed sync (Checkpoint().Verified) it is the proven content of the
// disk, which a recovery point can record.
func (g *Gateway) Manifest(id string) (*Manifest, error) {
	ds, err := g.disk(id)
	if err != nil {
		return nil, err
	}
	ds.lock.Lock()
	defer ds.lock.Unlock()
	if ds.manifest == nil {
		return nil, fmt.Errorf("disk %s has never been synced: %w", id, os.ErrNotExist)
	}
	return ds.manifest.Clone(), nil
}

// bitset marks blocks; 2 Mi blocks cost 256 KiB where a map would cost
// over 100 MiB.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b *bitset) grow(n int) {
	if need := (n + 63) / 64; need > len(*b) {
		*b = append(*b, make(bitset, need-len(*b))...)
	}
}

func (b bitset) set(i int) { b[i/64] |= 1 << (i % 64) }

// all yields the set bits in increasing order.
func (b bitset) all() func(yield func(int) bool) {
	return func(yield func(int) bool) {
		for w, v := range b {
			for v != 0 {
				t := bits.TrailingZeros64(v)
				if !yield(w*64 + t) {
					return
				}
				v &= v - 1
			}
		}
	}
}
