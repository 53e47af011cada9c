package ingest

import (
	"context"
	"fmt"
	"hash/maphash"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/host"
)

// Identities caches, per tenant, the identity keys of the stored hosts, so
// that a batch finds the hosts it can touch without reading every host:
// each use reads only the hosts updated since the last one (updated_at
// moves on every write; a margin covers clock jitter). Deleted hosts may
// linger as keys; they only cost a lookup that finds nothing.
//
// Keys are kept as 64-bit hashes in an inverted index (key → hosts), about
// 100 bytes per host: a hash collision can only add a candidate that the
// normaliser then declines, never merge two hosts. At most MaxKeys keys are
// kept over all tenants; the tenants used least recently are dropped first
// (and read again in full when next used). The zero value is ready to use;
// share one per database.
type Identities struct {
	// MaxKeys bounds the keys cached over all tenants (DefaultMaxIdentityKeys
	// when zero). The tenant in use is never dropped, however large.
	MaxKeys int

	mu      sync.Mutex
	tenants map[int]*identityIndex
	clock   uint64 // use counter for least-recently-used eviction
}

// DefaultMaxIdentityKeys bounds the identity cache at about 100 MiB
// (4 million keys: 20,000-host tenants hold about 100,000 each).
const DefaultMaxIdentityKeys = 4_000_000

// refreshMargin re-reads hosts updated this long before the newest one seen.
const refreshMargin = time.Second

// identityKey is a hashed identity key. The lowest bit is set for IP keys,
// through which the candidate search takes no second step.
type identityKey uint64

var keySeed = maphash.MakeSeed()

func hashKey(k string) identityKey {
	h := identityKey(maphash.String(keySeed, k)) &^ 1
	if strings.HasPrefix(k, "ip:") {
		h |= 1
	}
	return h
}

func (k identityKey) isIP() bool { return k&1 == 1 }

type identityIndex struct {
	mu    sync.Mutex
	keys  map[int][]identityKey // host id → its keys
	one   map[identityKey]int   // key → the host holding it …
	more  map[identityKey][]int // … or every host, once more than one holds it
	since time.Time             // newest updated_at read
	maxID int                   // highest host id read
	used  uint64                // Identities.clock at the last use
}

func newIdentityIndex() *identityIndex {
	return &identityIndex{keys: map[int][]identityKey{}, one: map[identityKey]int{}, more: map[identityKey][]int{}}
}

func (s *Identities) index(tenantID int) *identityIndex {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tenants == nil {
		s.tenants = map[int]*identityIndex{}
	}
	s.clock++
	x := s.tenants[tenantID]
	if x == nil {
		x = newIdentityIndex()
		s.tenants[tenantID] = x
	}
	x.used = s.clock
	s.evictLocked(tenantID)
	return x
}

// evictLocked drops the least recently used tenants' indexes while the
// cache holds more than MaxKeys keys; keep is never dropped.
func (s *Identities) evictLocked(keep int) {
	limit := s.MaxKeys
	if limit <= 0 {
		limit = DefaultMaxIdentityKeys
	}
	for {
		total, victim, oldest := 0, 0, ^uint64(0)
		for id, x := range s.tenants {
			total += x.size()
			if id != keep && x.used < oldest {
				victim, oldest = id, x.used
			}
		}
		if total <= limit || oldest == ^uint64(0) {
			return
		}
		delete(s.tenants, victim)
	}
}

// size is the number of keys x holds; read without x.mu, it is an estimate.
func (x *identityIndex) size() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.one) + len(x.more)
}

// set replaces a host's keys, read from the database. Call with x.mu held.
func (x *identityIndex) set(id int, keys []string) {
	x.put(id, keys)
	x.maxID = max(x.maxID, id)
}

// put replaces a host's keys. Call with x.mu held.
func (x *identityIndex) put(id int, keys []string) {
	for _, k := range x.keys[id] {
		x.remove(k, id)
	}
	hs := make([]identityKey, 0, len(keys))
	for _, s := range keys {
		k := hashKey(s)
		hs = append(hs, k)
		x.add(k, id)
	}
	x.keys[id] = hs
}

func (x *identityIndex) add(k identityKey, id int) {
	if ids, ok := x.more[k]; ok {
		for _, h := range ids {
			if h == id {
				return
			}
		}
		x.more[k] = append(ids, id)
		return
	}
	h, ok := x.one[k]
	switch {
	case !ok:
		x.one[k] = id
	case h != id:
		delete(x.one, k)
		x.more[k] = []int{h, id}
	}
}

func (x *identityIndex) remove(k identityKey, id int) {
	if h, ok := x.one[k]; ok {
		if h == id {
			delete(x.one, k)
		}
		return
	}
	ids := x.more[k]
	for i, h := range ids {
		if h == id {
			ids = append(ids[:i], ids[i+1:]...)
			break
		}
	}
	switch len(ids) {
	case 0:
		delete(x.more, k)
	case 1:
		delete(x.more, k)
		x.one[k] = ids[0]
	default:
		x.more[k] = ids
	}
}

// holders calls fn with every host holding k.
func (x *identityIndex) holders(k identityKey, fn func(id int)) {
	if h, ok := x.one[k]; ok {
		fn(h)
		return
	}
	for _, h := range x.more[k] {
		fn(h)
	}
}

// match returns the ids of the hosts the given records and connections can
// touch (see candidates) and how many hosts the index knows: hosts sharing
// an identity key with a record or an endpoint, hosts named by a "db:" ref,
// the given extra ids, and, one step further, hosts sharing a key other
// than an IP with those. Call with x.mu held.
func (x *identityIndex) match(records []discovery.Record, conns []discovery.ObservedConnection, extra []int) (map[int]bool, int) {
	ids := map[int]bool{}
	for _, id := range extra {
		ids[id] = true
	}
	var want []identityKey
	for i := range records {
		r := &records[i]
		for _, k := range identityKeys(r.Name, r.FQDN, r.BIOSUUID, r.IPs, r.MACs) {
			want = append(want, hashKey(k))
		}
	}
	for _, oc := range conns {
		for _, e := range []discovery.Endpoint{oc.Src, oc.Dst} {
			if id, ok := strings.CutPrefix(e.Ref, "db:"); ok {
				if n, err := strconv.Atoi(id); err == nil {
					ids[n] = true
				}
			}
			for _, k := range endpointKeys(e) {
				want = append(want, hashKey(k))
			}
		}
	}
	seen := map[identityKey]bool{}
	for round := 0; round < 2 && len(want) > 0; round++ {
		var found []int
		for _, k := range want {
			if seen[k] {
				continue
			}
			seen[k] = true
			x.holders(k, func(id int) {
				if !ids[id] {
					ids[id] = true
					found = append(found, id)
				}
			})
		}
		want = want[:0]
		for _, id := range found {
			for _, k := range x.keys[id] {
				if !k.isIP() { // an IP alone never merges differently named hosts: no further step through it
					want = append(want, k)
				}
			}
		}
	}
	return ids, len(x.keys)
}

// learn records the keys of a host this batch just wrote, so the next
// chunk merges with it without waiting for a refresh. It does not move
// the id mark: should the transaction roll back, a host created with
// that id later by someone else is still read as new.
func (x *identityIndex) learn(id int, nh discovery.Host) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.put(id, identityKeys(nh.Name, nh.FQDN, nh.BIOSUUID, nh.IPs, nh.MACs))
}

// advance moves the id mark past hosts a committed chunk created. Every
// host with a lower id was read by that chunk's refreshNew (which ran under
// the same write lock, before the chunk's own inserts) or is one of these.
func (x *identityIndex) advance(created []int) {
	if len(created) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range created {
		x.maxID = max(x.maxID, id)
	}
}

// identityColumns are what the index reads of a host.
var identityColumns = []string{host.FieldID, host.FieldName, host.FieldFqdn, host.FieldBiosUUID, host.FieldIps, host.FieldMacs, host.FieldUpdatedAt}

// refreshNew reads the identity columns of hosts with an id above every id
// the index knows (cheap under the write lock: a primary key range).
func (x *identityIndex) refreshNew(ctx context.Context, c *ent.Client) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.read(ctx, c.Host.Query().Where(host.IDGT(x.maxID)))
}

// refresh reads the identity columns of hosts changed since the last
// refresh (all of them the first time).
func (x *identityIndex) refresh(ctx context.Context, c *ent.Client) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	q := c.Host.Query()
	if !x.since.IsZero() {
		q = q.Where(host.UpdatedAtGTE(x.since.Add(-refreshMargin)))
	}
	return x.read(ctx, q)
}

// read pages through q by id, so that a first read of a large estate does
// not hold every row at once. Call with x.mu held.
func (x *identityIndex) read(ctx context.Context, q *ent.HostQuery) error {
	const page = 5000
	after := 0
	for {
		hs, err := q.Clone().Where(host.IDGT(after)).Order(ent.Asc(host.FieldID)).Limit(page).Select(identityColumns...).All(ctx)
		if err != nil {
			return fmt.Errorf("load host identities: %w", err)
		}
		for _, h := range hs {
			x.set(h.ID, identityKeys(h.Name, h.Fqdn, h.BiosUUID, h.Ips, h.Macs))
			if h.UpdatedAt.After(x.since) {
				x.since = h.UpdatedAt
			}
			after = h.ID
		}
		if len(hs) < page {
			return nil
		}
	}
}

// identityKeys are the keys the normaliser merges hosts by, prefixed by kind.
func identityKeys(name, fqdn, bios string, ips, macs []string) []string {
	var ks []string
	if u := discovery.CanonicalUUID(bios); u != "" {
		ks = append(ks, "uuid:"+u)
	}
	for _, m := range macs {
		if cm := discovery.CanonicalMAC(m); cm != "" {
			ks = append(ks, "mac:"+cm)
		}
	}
	short := discovery.ShortName(name)
	if short != "" {
		ks = append(ks, "name:"+short)
	}
	if sn := discovery.ShortName(fqdn); sn != "" && sn != short {
		ks = append(ks, "name:"+sn)
	}
	for _, ip := range ips {
		if a, err := netip.ParseAddr(strings.TrimSpace(ip)); err == nil {
			ks = append(ks, "ip:"+a.Unmap().String())
		}
	}
	return ks
}

// endpointKeys are the keys a connection endpoint can resolve to a host by.
func endpointKeys(e discovery.Endpoint) []string {
	var ks []string
	for _, v := range []string{e.Name, e.Address} {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if ap, err := netip.ParseAddrPort(v); err == nil {
			ks = append(ks, "ip:"+ap.Addr().Unmap().String())
		} else if a, err := netip.ParseAddr(v); err == nil {
			ks = append(ks, "ip:"+a.Unmap().String())
		} else if sn := discovery.ShortName(v); sn != "" {
			ks = append(ks, "name:"+sn)
		}
	}
	return ks
}

// Keys is how many identity keys the cache holds over all tenants.
func (s *Identities) Keys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, x := range s.tenants {
		n += x.size()
	}
	return n
}
