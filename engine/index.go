package engine

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ferry-migrate/ferry/engine/wire"
)

// contentIndex is the gateway's map from block hash to a place where one of
// its disks holds that block, so that a block one disk already holds is
// copied locally instead of crossing the wire again.
//
// It is one independent table per tenant, and nothing else: a query or a
// copy of tenant A reads A's table and A's disks only, so neither the answer
// nor the work done for it (and so its timing) depends on what another
// tenant holds. A shared table filtered by tenant would leak through the
// probe lengths and the filtering branch; separate tables have no such path.
//
// Entries are hints. Every copy re-reads its source and checks the full
// hash before writing, so a stale entry (the source block was overwritten,
// the gateway crashed between a write and its checkpoint, the disk was
// damaged) costs one re-sent block, never a wrong one.
type contentIndex struct {
	g       *Gateway
	max     int // entries per tenant before the table stops growing
	mu      sync.Mutex
	tenants map[string]*tenantIndex
}

// tenantIndex is one tenant's table. The key is the first 8 bytes of the
// block hash (collisions only cost a failed copy check); the value packs a
// disk reference (24 bits) and the block's byte offset in 4 KiB units (40
// bits, 4 PiB).
type tenantIndex struct {
	mu     sync.Mutex
	byHash map[uint64]uint64
	disks  []string
	refs   map[string]uint32
	max    int
	// lookups counts the queries this table answered; tests use it to show
	// that one tenant's traffic never consults another tenant's table.
	lookups atomic.Int64
}

func newContentIndex(g *Gateway, max int) *contentIndex {
	return &contentIndex{g: g, max: max, tenants: map[string]*tenantIndex{}}
}

func hashKey(h wire.Hash) uint64 { return binary.BigEndian.Uint64(h[:8]) }

// tenant returns the tenant's table, building it on first use from the
// persisted manifests of the disks bound to the tenant. It is first used
// by a session of one of the tenant's disks, before any write of the
// tenant in this process, so later writes keep it current.
func (ci *contentIndex) tenant(t string) *tenantIndex {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	if ti, ok := ci.tenants[t]; ok {
		return ti
	}
	ti := &tenantIndex{byHash: map[uint64]uint64{}, refs: map[string]uint32{}, max: ci.max}
	ci.tenants[t] = ti
	dir := filepath.Join(ci.g.opt.Dir, "state")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".checkpoint")
		if !ok || strings.HasPrefix(id, ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		var cp checkpoint
		if err != nil || json.Unmarshal(b, &cp) != nil || cp.Tenant == nil || *cp.Tenant != t {
			continue
		}
		m, err := LoadManifest(ci.g.statePath(id, "manifest"))
		if err != nil {
			continue
		}
		ti.addManifest(id, m)
	}
	return ti
}

func (ti *tenantIndex) ref(disk string) uint32 {
	r, ok := ti.refs[disk]
	if !ok {
		r = uint32(len(ti.disks))
		ti.disks = append(ti.disks, disk)
		ti.refs[disk] = r
	}
	return r
}

func pack(ref uint32, off int64) uint64 { return uint64(ref)<<40 | uint64(off>>12) }

func (ti *tenantIndex) addManifest(disk string, m *Manifest) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	r := ti.ref(disk)
	for i, h := range m.Hashes {
		if h.IsZero() || h == unknownHash {
			continue
		}
		if len(ti.byHash) >= ti.max {
			return
		}
		ti.byHash[hashKey(h)] = pack(r, int64(i)*int64(m.BlockSize))
	}
}

// wrote records that disk now holds h at off where it held old: old's entry
// goes if it pointed here, h's entry points here (the newest copy is the
// likeliest to be intact).
func (ti *tenantIndex) wrote(disk string, off int64, old, h wire.Hash) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	r := ti.ref(disk)
	here := pack(r, off)
	if !old.IsZero() {
		if k := hashKey(old); ti.byHash[k] == here {
			delete(ti.byHash, k)
		}
	}
	if h.IsZero() || h == unknownHash {
		return
	}
	if _, ok := ti.byHash[hashKey(h)]; ok || len(ti.byHash) < ti.max {
		ti.byHash[hashKey(h)] = here
	}
}

// lookup returns where the tenant holds h.
func (ti *tenantIndex) lookup(h wire.Hash) (disk string, off int64, ok bool) {
	ti.lookups.Add(1)
	ti.mu.Lock()
	defer ti.mu.Unlock()
	v, ok := ti.byHash[hashKey(h)]
	if !ok {
		return "", 0, false
	}
	return ti.disks[v>>40], int64(v&(1<<40-1)) << 12, true
}

// forget drops h's entry if it still points at disk:off (its copy check
// failed there).
func (ti *tenantIndex) forget(h wire.Hash, disk string, off int64) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	if r, ok := ti.refs[disk]; ok && ti.byHash[hashKey(h)] == pack(r, off) {
		delete(ti.byHash, hashKey(h))
	}
}

func (ti *tenantIndex) len() int {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return len(ti.byHash)
}

func (ti *tenantIndex) has(disk string) bool {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	_, ok := ti.refs[disk]
	return ok
}
