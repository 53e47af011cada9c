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
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferry-migrate/ferry/engine/wire"
	"golang.org/x/sys/unix"
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
	// CheckpointEvery bounds what a crash can lose: a stream that wrote
	// anything fsyncs the target and persists a checkpoint at least this
	// often (default 10 s), whatever the link's speed; every stream also
	// ends with one.
	CheckpointEvery time.Duration
	// CheckpointBytes, when positive, also checkpoints after this much
	// written data (progress granularity for a control plane).
	CheckpointBytes int64
	// FullVerifyEvery makes the end-of-sync proof re-read the whole target
	// when its last full verification is older than this (default 7 days;
	// negative: never on a schedule). VerifyTarget runs one on demand.
	FullVerifyEvery time.Duration
	// NoDedup turns the content index off: every block a target lacks is
	// sent over the wire even when another disk of the tenant holds it.
	NoDedup bool
	// IndexEntries caps each tenant's content index (default 4 Mi entries,
	// about 80 MiB: 4 TiB of distinct 1 MiB blocks); past it new blocks are
	// not indexed.
	IndexEntries int
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
	index *contentIndex
}

// diskState is the gateway's knowledge of one target disk.
type diskState struct {
	lock     sync.Mutex // held by whoever writes the target
	id       string
	path     string
	manifest *Manifest // what the target holds, as far as verified writes go
	ckpt     checkpoint
	written  bitset           // blocks written by the current sync (1 bit per block)
	pending  map[int]struct{} // blocks rejected in the current sync, not yet re-sent
	hw       int64            // end of the furthest frame received in this sync
	exact    bool             // manifest is exact: verified baseline, no crash or resume since
	dirty    int64            // bytes written since the last checkpoint
	lastCkpt time.Time        // when the last checkpoint was persisted
	// pub is the last persisted checkpoint, readable while a stream holds
	// lock, so that progress queries never wait for a stream to end.
	pub atomic.Pointer[Checkpoint]
	// sess is the open sync session, readable without lock so that "have"
	// queries run alongside the frames stream that holds it.
	sess atomic.Pointer[session]
}

// session is what the gateway knows of an open sync.
type session struct {
	syncID   string
	tenant   string
	protocol int
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
	// Tenant is the tenant the disk is bound to (by its first session);
	// nil: not bound yet.
	Tenant *string `json:"tenant,omitempty"`
	// WireBytes counts the frame bytes received in the current sync.
	WireBytes int64 `json:"wire_bytes,omitempty"`
	// FullVerified is when a re-read of the whole target last proved it
	// (RFC 3339).
	FullVerified string `json:"full_verified,omitempty"`
	// Consistency says how the source of the last completed sync was read.
	Consistency *Consistency `json:"consistency,omitempty"`
	// Damage records a full verification that found the target differing
	// from its proven state; the next sync repairs it.
	Damage string `json:"damage,omitempty"`
}

// fresh is the checkpoint of a new sync: the disk's lasting facts (tenant,
// last full verification, how its last point was read) carry over.
func (c checkpoint) fresh(syncID string) checkpoint {
	return checkpoint{SyncID: syncID, Tenant: c.Tenant, FullVerified: c.FullVerified, Consistency: c.Consistency, Damage: c.Damage}
}

// Consistency says how a sync read its source, so that the recovery point
// taken from it can say whether it is a point in time.
type Consistency struct {
	// Consistent: the pass read a point-in-time snapshot (taken with the
	// source's filesystems frozen for the instant, where it had any).
	Consistent bool `json:"consistent"`
	// Method is the snapshot method ("btrfs-reflink", "qcow2-overlay",
	// "lvm", "dm-snapshot", …); empty for a live read.
	Method string `json:"method,omitempty"`
	// Note says what was frozen, or why no snapshot could be taken.
	Note string `json:"note,omitempty"`
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
	// WireBytes is how many frame bytes the current sync has delivered: the
	// transfer's progress on the wire, where Offset is the scan's.
	WireBytes int64 `json:"wire_bytes"`
	// FullVerified is when a full re-read last proved the target (RFC 3339).
	FullVerified string `json:"full_verified,omitempty"`
	// Consistency is how the source of the last completed sync was read
	// (nil: the agent did not say, so it was not a point in time).
	Consistency *Consistency `json:"consistency,omitempty"`
	// Damage is set when VerifyTarget found the target differing from its
	// proven state.
	Damage string `json:"damage,omitempty"`
	// Opened, VerifiedAt, Updated: see checkpoint (RFC 3339, gateway clock).
	Opened     string `json:"opened,omitempty"`
	VerifiedAt string `json:"verified_at,omitempty"`
	Updated    string `json:"updated,omitempty"`

	// Session replies only: the protocol version agreed for this session
	// (absent from a protocol 1 gateway), what it offers, and how many
	// blocks the tenant's content index holds (0: offering hashes is
	// pointless).
	Protocol    int      `json:"protocol,omitempty"`
	Features    []string `json:"features,omitempty"`
	IndexBlocks int      `json:"index_blocks,omitempty"`
}

// Features a protocol 2 gateway can offer in its session reply.
const (
	FeaturePatch = "patch" // patch frames
	FeatureDedup = "dedup" // the have query and copy frames
)

// StreamResult is the reply to a frames stream.
type StreamResult struct {
	Checkpoint int64   `json:"checkpoint"`
	Frames     uint64  `json:"frames"`
	Rejected   []int64 `json:"rejected,omitempty"` // offsets of frames that did not verify (send the whole block)
	Patched    uint64  `json:"patched,omitempty"`  // patch frames applied
	Copied     uint64  `json:"copied,omitempty"`   // copy frames served from the content index
}

// FinishResult is the reply to a finish request.
type FinishResult struct {
	Equal      bool    `json:"equal"`
	Mismatched []int64 `json:"mismatched,omitempty"` // block offsets; capped at maxMismatches
	More       bool    `json:"more,omitempty"`       // more mismatches than listed
	FullRead   bool    `json:"full_read"`            // the whole target was re-read
	// What the proof covered: RereadBytes of the target were read back and
	// hashed; TrustedBytes were not, because an earlier full verification
	// (at LastFullVerify) proved them and the gateway has not written them
	// since. Reason says why a full read was made.
	RereadBytes    int64  `json:"reread_bytes"`
	TrustedBytes   int64  `json:"trusted_bytes"`
	LastFullVerify string `json:"last_full_verify,omitempty"`
	Reason         string `json:"reason,omitempty"`
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
	if opt.CheckpointEvery <= 0 {
		opt.CheckpointEvery = 10 * time.Second
	}
	if opt.FullVerifyEvery == 0 {
		opt.FullVerifyEvery = 7 * 24 * time.Hour
	}
	if opt.IndexEntries <= 0 {
		opt.IndexEntries = 4 << 20
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
	g := &Gateway{opt: opt, key: key, disks: map[string]*diskState{}}
	g.index = newContentIndex(g, opt.IndexEntries)
	return g, nil
}

// IssueCredential issues a credential for disk valid for ttl.
func (g *Gateway) IssueCredential(disk string, ttl time.Duration) (string, error) {
	if !diskIDPattern.MatchString(disk) {
		return "", fmt.Errorf("%w: disk id %q: use letters, digits, '.', '_' and '-'", ErrInvalid, disk)
	}
	return g.key.Issue(disk, g.opt.Now(), ttl)
}

// IssueTenantCredential issues a credential for disk of tenant: the disk is
// bound to the tenant on its first session, and the content index never
// shares blocks across tenants.
func (g *Gateway) IssueTenantCredential(disk, tenant string, ttl time.Duration) (string, error) {
	return g.IssueScopedCredential(disk, "", tenant, ttl)
}

// IssueScopedCredential issues a credential for disk naming its subject
// (see AgentSubject, for revocation) and its tenant (for the content index).
func (g *Gateway) IssueScopedCredential(disk, subject, tenant string, ttl time.Duration) (string, error) {
	if !diskIDPattern.MatchString(disk) {
		return "", fmt.Errorf("%w: disk id %q: use letters, digits, '.', '_' and '-'", ErrInvalid, disk)
	}
	return g.key.IssueScoped(disk, subject, tenant, g.opt.Now(), ttl)
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
	tenant := admittedCredential(r).Tenant
	var err error
	switch {
	case op == "session" && r.Method == http.MethodPost:
		err = g.openSession(w, r, id, tenant)
	case op == "have" && r.Method == http.MethodPost:
		err = g.have(w, r, id, tenant)
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
	ds := &diskState{id: id, path: path}
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
	// Protocol is the newest protocol the agent speaks (absent: 1).
	Protocol int `json:"protocol,omitempty"`
}

func (g *Gateway) openSession(w http.ResponseWriter, r *http.Request, id, tenant string) error {
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
	if ds.ckpt.Tenant != nil && *ds.ckpt.Tenant != tenant {
		return coded(http.StatusForbidden, CodeUnauthorized, "disk %s belongs to another tenant than this credential's", id)
	}
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
	relearned := false
	if ds.manifest == nil || ds.manifest.BlockSize != req.BlockSize {
		relearned = true
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
		// The manifest is now exactly what the target holds (created empty,
		// or just read whole): as good as a full verification.
		ds.ckpt = ds.ckpt.fresh("")
		ds.ckpt.Verified, ds.ckpt.FullVerified, ds.ckpt.Damage = true, g.opt.Now().UTC().Format(time.RFC3339), ""
		if err := g.persist(id, ds); err != nil {
			return err
		}
	}
	if ds.manifest.Size != req.Size {
		ds.manifest.Resize(req.Size)
	}
	bound := ds.ckpt.Tenant != nil
	t := tenant
	ds.ckpt.Tenant = &t
	if ds.ckpt.SyncID == req.SyncID && !ds.ckpt.Verified {
		ds.exact = false // resuming: pwrites after the last checkpoint are unaccounted
		g.opt.Logf("gateway: disk %s: sync %s resumes at offset %d", id, req.SyncID, ds.ckpt.Offset)
		if !bound {
			if err := g.persist(id, ds); err != nil {
				return err
			}
		}
	} else {
		if !ds.ckpt.Verified {
			ds.exact = false // the previous sync never finished
		}
		ds.ckpt = ds.ckpt.fresh(req.SyncID)
		ds.ckpt.Opened = g.opt.Now().UTC().Format(time.RFC3339Nano)
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
	proto := min(max(req.Protocol, 1), wire.Protocol)
	ds.sess.Store(&session{syncID: req.SyncID, tenant: tenant, protocol: proto})
	cp := g.checkpointOf(ds)
	if proto >= 2 {
		cp.Protocol, cp.Features = proto, []string{FeaturePatch}
		if !g.opt.NoDedup {
			ti := g.index.tenant(tenant)
			if relearned || !ti.has(id) {
				ti.addManifest(id, ds.manifest)
			}
			cp.Features = append(cp.Features, FeatureDedup)
			cp.IndexBlocks = ti.len()
		}
	}
	writeJSON(w, cp)
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
		WireBytes: ds.ckpt.WireBytes, FullVerified: ds.ckpt.FullVerified, Consistency: ds.ckpt.Consistency, Damage: ds.ckpt.Damage,
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
	ds.lastCkpt = g.opt.Now()
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
// the stream later breaks; a frame that does not verify (a damaged payload,
// a patch whose base or result does not hash right, a copy whose source is
// gone or damaged) is reported back, and the agent sends the whole block; a
// malformed header or a truncated stream ends the request with an error
// after a checkpoint of everything applied so far.
func (g *Gateway) receive(w http.ResponseWriter, r *http.Request, id string) error {
	ds, err := g.sessionDisk(id, r)
	if err != nil {
		return err
	}
	defer ds.lock.Unlock()
	f, err := os.OpenFile(ds.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open target disk %s: %w", id, err)
	}
	defer f.Close()
	ds.lastCkpt = g.opt.Now() // nothing of this stream is written yet
	var ti *tenantIndex
	if sess := ds.sess.Load(); sess != nil && !g.opt.NoDedup {
		ti = g.index.tenant(sess.tenant)
	}
	newApplier := func() *applier {
		return &applier{g: g, ds: ds, f: f, ti: ti, dec: wire.NewDecoder(), srcs: map[string]*os.File{}}
	}
	ap := newApplier()
	defer ap.close()
	m := ds.manifest
	rd := wire.NewReader(r.Body)
	var res StreamResult
	var streamErr error
	var unflushed int64

	// Patch and copy frames read the target (or another disk) before they
	// write, so they are applied by a pool of workers while the stream goes
	// on; whole frames are applied in line. mu guards the disk's state and
	// res from the workers; frames for a block already in flight wait for
	// it, and every checkpoint waits for all of them.
	var mu sync.Mutex
	var inflight sync.WaitGroup
	busy := map[int]chan struct{}{}
	type job struct {
		fr       wire.Frame
		off      int64
		idx      int
		finished chan struct{}
	}
	jobs := make(chan *job, 16)
	record := func(fr *wire.Frame, off int64, idx int, ok bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			if streamErr == nil {
				streamErr = err
			}
			return
		case !ok:
			res.Rejected = append(res.Rejected, off)
			ds.pending[idx] = struct{}{}
			return
		}
		switch fr.Kind {
		case wire.KindPatch:
			res.Patched++
		case wire.KindCopy:
			res.Copied++
		}
		if ti != nil {
			ti.wrote(id, off, m.Hashes[idx], fr.Hash)
		}
		m.Hashes[idx] = fr.Hash
		ds.written.set(idx)
		delete(ds.pending, idx)
		ds.hw = max(ds.hw, off+int64(fr.Length))
		ds.dirty += int64(fr.Length)
		unflushed += int64(fr.Length)
	}
	for range min(runtime.GOMAXPROCS(0), 4) {
		go func() {
			wa := newApplier()
			defer wa.close()
			for j := range jobs {
				ok, err := wa.apply(&j.fr, j.off)
				record(&j.fr, j.off, j.idx, ok, err)
				mu.Lock()
				delete(busy, j.idx)
				mu.Unlock()
				close(j.finished)
				inflight.Done()
			}
		}()
	}
	defer close(jobs)
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return streamErr != nil
	}
	for !failed() {
		fr, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			mu.Lock()
			streamErr = err
			mu.Unlock()
			break
		}
		off := int64(fr.Offset)
		idx := int(off / int64(m.BlockSize))
		if off%int64(m.BlockSize) != 0 || idx >= len(m.Hashes) || int(fr.Length) != m.BlockLen(idx) {
			mu.Lock()
			streamErr = fmt.Errorf("%w: frame at offset %d length %d does not fit %d-byte blocks of a %d-byte disk", ErrInvalid, off, fr.Length, m.BlockSize, m.Size)
			mu.Unlock()
			break
		}
		mu.Lock()
		ds.ckpt.WireBytes += int64(wire.HeaderSize + len(fr.Payload))
		wait := busy[idx]
		mu.Unlock()
		if wait != nil {
			<-wait
		}
		if fr.Kind == wire.KindPatch || fr.Kind == wire.KindCopy {
			j := &job{fr: *fr, off: off, idx: idx, finished: make(chan struct{})}
			j.fr.Payload = append([]byte(nil), fr.Payload...) // the reader reuses its buffer
			mu.Lock()
			busy[idx] = j.finished
			mu.Unlock()
			inflight.Add(1)
			jobs <- j
		} else {
			ok, err := ap.apply(fr, off)
			record(fr, off, idx, ok, err)
		}
		mu.Lock()
		startWriteback := unflushed >= 32<<20
		if startWriteback {
			unflushed = 0
		}
		due := (g.opt.CheckpointBytes > 0 && ds.dirty >= g.opt.CheckpointBytes) || g.opt.Now().Sub(ds.lastCkpt) >= g.opt.CheckpointEvery
		mu.Unlock()
		if startWriteback {
			// Start writing back what this stream wrote so far without
			// waiting for it, so that the disk works while the link does
			// and the checkpoint's fsync finds little left to do.
			unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
		}
		if due {
			inflight.Wait()
			if err := g.checkpointNow(f, id, ds); err != nil {
				return err
			}
		}
	}
	inflight.Wait()
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

// applier writes the frames of one stream to a target.
type applier struct {
	g    *Gateway
	ds   *diskState
	f    *os.File
	dec  *wire.Decoder
	ti   *tenantIndex // nil without dedup
	srcs map[string]*os.File
	buf  []byte // decompressed blocks
	cur  []byte // the target's block under a patch, or a copy source
	zbuf []byte // decompressed patch data
}

func (ap *applier) close() {
	for _, f := range ap.srcs {
		f.Close()
	}
}

// apply writes one frame at off. It returns false for a frame that did not
// verify (nothing was written), and an error for a broken stream or target.
func (ap *applier) apply(fr *wire.Frame, off int64) (bool, error) {
	id, n := ap.ds.id, int(fr.Length)
	var err error
	switch fr.Kind {
	case wire.KindZero:
		err = zeroRange(ap.f, off, int64(n))
	case wire.KindRaw, wire.KindZstd:
		data, derr := ap.dec.Decode(fr, ap.buf)
		if errors.Is(derr, wire.ErrHashMismatch) {
			return false, nil
		}
		if derr != nil {
			return false, derr
		}
		if fr.Kind == wire.KindZstd {
			ap.buf = data
		}
		_, err = ap.f.WriteAt(data, off)
	case wire.KindPatch:
		ap.cur = grow(ap.cur, n)
		if _, err := ap.f.ReadAt(ap.cur, off); err != nil {
			return false, fmt.Errorf("read target disk %s at offset %d: %w", id, off, err)
		}
		bm, z, perr := ap.dec.ApplyPatch(fr, ap.cur, ap.zbuf)
		ap.zbuf = z
		if errors.Is(perr, wire.ErrHashMismatch) {
			return false, nil
		}
		if perr != nil {
			return false, perr
		}
		err = wire.Runs(n, bm, func(a, b int) error {
			_, err := ap.f.WriteAt(ap.cur[a:b], off+int64(a))
			return err
		})
	case wire.KindCopy:
		data, ok := ap.copySource(fr.Hash, n)
		if !ok {
			return false, nil
		}
		_, err = ap.f.WriteAt(data, off)
	default:
		return false, fmt.Errorf("%w: a %s frame in a block stream", wire.ErrCorrupt, fr.Kind)
	}
	if err != nil {
		return false, fmt.Errorf("write target disk %s at offset %d: %w", id, off, err)
	}
	return true, nil
}

// copySource reads the block with hash h (n bytes) from wherever the
// tenant's index says one of its disks holds it, and returns it only if it
// still hashes to h; a source that does not is dropped from the index.
func (ap *applier) copySource(h wire.Hash, n int) ([]byte, bool) {
	if ap.ti == nil {
		return nil, false
	}
	disk, off, ok := ap.ti.lookup(h)
	if !ok {
		return nil, false
	}
	src := ap.f
	if disk != ap.ds.id {
		if src = ap.srcs[disk]; src == nil {
			path, err := ap.g.opt.Resolve(disk)
			if err == nil {
				src, err = os.Open(path)
			}
			if err != nil {
				ap.ti.forget(h, disk, off)
				return nil, false
			}
			ap.srcs[disk] = src
		}
	}
	ap.cur = grow(ap.cur, n)
	if k, err := src.ReadAt(ap.cur, off); k != n || (err != nil && !errors.Is(err, io.EOF)) || wire.Sum(ap.cur) != h {
		ap.g.opt.Logf("gateway: disk %s: content index entry for block %s at %s:%d did not verify; the agent re-sends it", ap.ds.id, h, disk, off)
		ap.ti.forget(h, disk, off)
		return nil, false
	}
	return ap.cur, true
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// have answers a protocol 2 agent's question "which of these blocks does
// my tenant hold?" with a bitmap, one bit per hash in the body. It reads
// only the tenant's own index (see contentIndex), and it does not need the
// disk's lock, so it runs alongside the session's frames stream.
func (g *Gateway) have(w http.ResponseWriter, r *http.Request, id, tenant string) error {
	if g.opt.NoDedup {
		return coded(http.StatusNotFound, CodeNotFound, "this gateway has no content index")
	}
	ds, err := g.disk(id)
	if err != nil {
		return err
	}
	sess := ds.sess.Load()
	if sess == nil || sess.syncID != r.URL.Query().Get("sync") || sess.tenant != tenant {
		return coded(http.StatusConflict, CodeConflict, "disk %s: sync %q is not the open sync session; open a session first", id, r.URL.Query().Get("sync"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxHave*16+1))
	if err != nil {
		return &codedError{http.StatusBadRequest, CodeTruncated, fmt.Errorf("have query: %w", err)}
	}
	if len(body) > maxHave*16 {
		return fmt.Errorf("%w: a have query asks for at most %d hashes", ErrInvalid, maxHave)
	}
	hs, err := wire.ParseHashes(body)
	if err != nil {
		return fmt.Errorf("%w: have query: %v", ErrInvalid, err)
	}
	ti := g.index.tenant(tenant)
	out := make([]byte, (len(hs)+7)/8)
	for i, h := range hs {
		if h.IsZero() {
			continue
		}
		if _, _, ok := ti.lookup(h); ok {
			out[i/8] |= 1 << (i % 8)
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, err = w.Write(out)
	return err
}

// maxHave bounds one have query (64 KiB of hashes).
const maxHave = 4096

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

// finish proves the target equal to the source manifest in the body. The
// query may carry verify=full (re-read everything: the agent's choice for
// a cutover's final pass) and how the agent read its source (consistent,
// snapshot, note), which the gateway records with the proven state.
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
	q := r.URL.Query()
	target, res, err := g.targetManifest(r.Context(), ds, q.Get("verify") == "full")
	if err != nil {
		return err
	}
	if res.FullRead && g.index != nil && !g.opt.NoDedup {
		if sess := ds.sess.Load(); sess != nil {
			g.index.tenant(sess.tenant).addManifest(id, target)
		}
	}
	ds.manifest = target // the truth, whatever we thought before
	diff := src.Diff(target)
	res.Equal = len(diff) == 0
	for i, idx := range diff {
		if i == maxMismatches {
			res.More = true
			break
		}
		res.Mismatched = append(res.Mismatched, int64(idx)*int64(src.BlockSize))
	}
	if res.Equal {
		now := g.opt.Now().UTC().Format(time.RFC3339)
		opened := ds.ckpt.Opened
		ds.ckpt = ds.ckpt.fresh("")
		ds.ckpt.Opened, ds.ckpt.VerifiedAt = opened, g.opt.Now().UTC().Format(time.RFC3339Nano)
		ds.ckpt.Verified, ds.ckpt.Offset, ds.ckpt.Damage = true, src.Size, ""
		if res.FullRead {
			ds.ckpt.FullVerified = now
		}
		res.LastFullVerify = ds.ckpt.FullVerified
		c := &Consistency{Consistent: q.Get("consistent") == "true", Method: q.Get("snapshot"), Note: q.Get("note")}
		if !q.Has("consistent") {
			c.Note = "the agent did not say how it read the source (protocol 1): a live read"
		}
		ds.ckpt.Consistency = c
		ds.exact, ds.written = true, nil
		ds.sess.Store(nil)
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
// either everything or just the blocks this sync wrote, and says which it
// did and why.
func (g *Gateway) targetManifest(ctx context.Context, ds *diskState, asked bool) (*Manifest, FinishResult, error) {
	var res FinishResult
	last, _ := time.Parse(time.RFC3339, ds.ckpt.FullVerified)
	switch {
	case asked:
		res.Reason = "full verification requested by the agent"
	case g.opt.VerifyFull:
		res.Reason = "the gateway verifies every sync in full (--verify full)"
	case !ds.exact:
		res.Reason = "the gateway cannot vouch for the target between syncs (resumed or crashed sync, or a target changed outside the gateway)"
	case ds.ckpt.FullVerified == "":
		res.Reason = "the target was never verified in full"
	case g.opt.FullVerifyEvery > 0 && g.opt.Now().Sub(last) >= g.opt.FullVerifyEvery:
		res.Reason = fmt.Sprintf("scheduled: the last full verification was at %s (every %s)", ds.ckpt.FullVerified, g.opt.FullVerifyEvery)
	}
	if res.Reason != "" {
		m, err := hashPrefix(ctx, ds.path, ds.manifest.BlockSize, ds.manifest.Size)
		if err != nil {
			return nil, res, err
		}
		if m.Size != ds.manifest.Size {
			return nil, res, fmt.Errorf("target %s is %d bytes, shorter than the %d-byte source: it shrank during the sync", ds.path, m.Size, ds.manifest.Size)
		}
		res.FullRead, res.RereadBytes = true, m.Size
		return m, res, nil
	}
	m := ds.manifest // updated in place: what is read from disk is the truth
	idxs := make([]int, 0, 1024)
	for idx := range ds.written.all() {
		if idx >= len(m.Hashes) {
			break // the source shrank since this sync began
		}
		idxs = append(idxs, idx)
		res.RereadBytes += int64(m.BlockLen(idx))
	}
	if err := rehashBlocks(ctx, ds.path, m, idxs); err != nil {
		return nil, res, err
	}
	res.TrustedBytes = m.Size - res.RereadBytes
	return m, res, nil
}

// VerifyTarget re-reads the whole target of disk id now and compares it
// with the state the last completed sync proved: the full verification a
// control plane schedules (weekly, and before every cutover). A difference
// is recorded (Checkpoint.Damage) and the manifest becomes what the target
// really holds, so that the next sync repairs exactly the damaged blocks.
// It returns ErrInvalid-wrapped errors for a disk with no completed sync and
// a busy error while a sync holds the disk.
func (g *Gateway) VerifyTarget(ctx context.Context, id string) (Verification, error) {
	ds, err := g.disk(id)
	if err != nil {
		return Verification{}, err
	}
	if err := lockDisk(ds, id); err != nil {
		return Verification{}, err
	}
	defer ds.lock.Unlock()
	if ds.manifest == nil || !ds.ckpt.Verified {
		return Verification{}, fmt.Errorf("%w: disk %s has no completed sync to verify against", ErrInvalid, id)
	}
	m, err := hashPrefix(ctx, ds.path, ds.manifest.BlockSize, ds.manifest.Size)
	if err != nil {
		return Verification{}, err
	}
	now := g.opt.Now().UTC()
	v := Verification{At: now, Bytes: m.Size}
	for _, idx := range ds.manifest.Diff(m) {
		v.Mismatched = append(v.Mismatched, int64(idx)*int64(m.BlockSize))
	}
	v.Equal = len(v.Mismatched) == 0
	if v.Equal {
		ds.ckpt.FullVerified, ds.ckpt.Damage = now.Format(time.RFC3339), ""
	} else {
		ds.ckpt.Damage = fmt.Sprintf("full verification at %s found %d blocks differing from the last proven state (first at offset %d)", now.Format(time.RFC3339), len(v.Mismatched), v.Mismatched[0])
		g.opt.Logf("gateway: disk %s: %s; the next sync repairs them", id, ds.ckpt.Damage)
		ds.manifest, ds.ckpt.Verified = m, false
		ds.ckpt.SyncID = ""
		ds.exact = true
	}
	return v, g.persist(id, ds)
}

// Verification is the result of VerifyTarget.
type Verification struct {
	Equal      bool
	Mismatched []int64 // offsets of blocks that differ from the proven state
	Bytes      int64   // bytes re-read
	At         time.Time
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
