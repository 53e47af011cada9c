package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/revocationevent"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/internal/secrets"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// The revocation feed (GET /gateway/v1/revocations): remote gateways —
// those a cloud provider started in the customer's network, with no
// database — long-poll it upward with their own credential (the bearer
// their registration returned) and refuse the sync credentials of the
// subjects it lists (engine.RevocationWatch). The events are rows of
// revocation_events, written by the Agent hook whenever an agent's
// revoked_at is set (ent/schema/revocation.go); their id is the cursor, so
// every replica of the control plane answers the same.

const (
	// feedHeartbeat is how long an answer waits for an event before it
	// goes out empty (the heartbeat the gateway's silence timer needs).
	feedHeartbeat = 2 * time.Second
	// feedRing is how often a replica with waiting polls looks for new
	// events (one query per replica, however many gateways wait).
	feedRing = 200 * time.Millisecond
	// feedLookback re-sends, with the last page, the events of the last
	// feedLookback below the cursor: on PostgreSQL two concurrent inserts
	// may commit out of id order, and the set on the gateway makes a
	// repeated event harmless.
	feedLookback   = 10 * time.Second
	feedLookbackN  = 100
	feedPerGateway = 2 // concurrent polls of one gateway on one replica
)

// revocationFeed serves the feed.
type revocationFeed struct {
	client *ent.Client
	box    *secrets.Box
	// gateway authenticates a gateway's bearer (the Alibaba provider's).
	gateway func(ctx context.Context, header string) (account, migration string, err error)
	now     func() time.Time
	log     *slog.Logger
	bell    feedBell

	mu       sync.Mutex
	inflight map[string]int
}

func feedError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func (f *revocationFeed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		feedError(w, http.StatusMethodNotAllowed, "the revocation feed is read with GET")
		return
	}
	ctx := r.Context()
	acct, mid, err := f.gateway(ctx, r.Header.Get("Authorization"))
	if err != nil {
		feedError(w, http.StatusUnauthorized, "a gateway's credential is required (its registration's bearer)")
		return
	}
	st, err := openCloudStore(ctx, f.client, f.box, acct)
	if err != nil {
		feedError(w, http.StatusUnauthorized, "a gateway's credential is required (its registration's bearer)")
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "after" && k != "wait" {
			feedError(w, http.StatusBadRequest, "query parameter %q: the feed takes after (the cursor) and wait", k)
			return
		}
	}
	if len(q["after"]) > 1 || len(q["wait"]) > 1 {
		feedError(w, http.StatusBadRequest, "after and wait are given once")
		return
	}
	after, err := engine.ParseRevocationCursor(q.Get("after"))
	if err != nil {
		feedError(w, http.StatusBadRequest, "after: %v", err)
		return
	}
	wait := feedHeartbeat
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > feedHeartbeat {
			feedError(w, http.StatusBadRequest, "wait %q: a duration from 0s to %s", s, feedHeartbeat)
			return
		}
		wait = d
	}
	key := acct + "/" + mid
	f.mu.Lock()
	if f.inflight == nil {
		f.inflight = map[string]int{}
	}
	if f.inflight[key] >= feedPerGateway {
		f.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		feedError(w, http.StatusTooManyRequests, "this gateway already has %d polls waiting", feedPerGateway)
		return
	}
	f.inflight[key]++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		if f.inflight[key]--; f.inflight[key] <= 0 {
			delete(f.inflight, key)
		}
		f.mu.Unlock()
	}()

	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		// Take the bell before reading, so an event committed after the
		// read rings it.
		ring, done := f.bell.listen(f.client, st.tenant)
		p, forward, err := f.page(ctx, st.tenant, after)
		if err != nil {
			done()
			f.log.WarnContext(ctx, "revocation feed", "error", err.Error())
			feedError(w, http.StatusServiceUnavailable, "the revocation feed cannot be read right now; retry")
			return
		}
		if forward > 0 || wait == 0 {
			done()
			f.reply(w, p)
			return
		}
		select {
		case <-ring:
			done()
			continue
		case <-deadline.C:
			done()
			wait = 0 // read once more and answer, events or a heartbeat
			continue
		case <-ctx.Done():
			done()
			return
		}
	}
}

func (f *revocationFeed) reply(w http.ResponseWriter, p engine.RevocationPage) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, p)
}

// page reads the tenant's events after the cursor (at most
// engine.RevocationPageLimit) and, on the last page, the recent ones below
// it; forward counts the events after the cursor.
func (f *revocationFeed) page(ctx context.Context, tenantID int, after int64) (engine.RevocationPage, int, error) {
	tctx := viewer.TenantContext(ctx, tenantID)
	evs, err := f.client.RevocationEvent.Query().Where(revocationevent.IDGT(int(after))).
		Order(ent.Asc(revocationevent.FieldID)).Limit(engine.RevocationPageLimit + 1).All(tctx)
	if err != nil {
		return engine.RevocationPage{}, 0, err
	}
	p := engine.RevocationPage{Events: []engine.Revocation{}, Cursor: engine.FormatRevocationCursor(after)}
	if len(evs) > engine.RevocationPageLimit {
		evs, p.More = evs[:engine.RevocationPageLimit], true
	}
	if !p.More && after > 0 {
		back, err := f.client.RevocationEvent.Query().Where(revocationevent.IDLTE(int(after)),
			revocationevent.CreatedAtGT(f.now().Add(-feedLookback))).
			Order(ent.Desc(revocationevent.FieldID)).Limit(feedLookbackN).All(tctx)
		if err != nil {
			return engine.RevocationPage{}, 0, err
		}
		for i := len(back) - 1; i >= 0; i-- {
			p.Events = append(p.Events, engine.Revocation{Subject: back[i].Subject, RevokedAt: back[i].RevokedAt})
		}
	}
	for _, e := range evs {
		p.Events = append(p.Events, engine.Revocation{Subject: e.Subject, RevokedAt: e.RevokedAt})
		p.Cursor = engine.FormatRevocationCursor(int64(e.ID))
	}
	t, err := f.client.Tenant.Query().Where(tenant.ID(tenantID)).Select(tenant.FieldDisabled).Only(viewer.SystemContext(ctx))
	if ent.IsNotFound(err) {
		err = fmt.Errorf("tenant %d: %w", tenantID, cloud.ErrNotFound)
	}
	if err != nil {
		return engine.RevocationPage{}, 0, err
	}
	p.TenantDisabled = t.Disabled
	return p, len(evs), nil
}

// feedBell rings the polls waiting on one replica when an event of their
// tenant is written: one query every feedRing while anyone waits (none
// otherwise), and only the polls of the tenants concerned read again.
type feedBell struct {
	mu      sync.Mutex
	chans   map[int]chan struct{} // by tenant
	waiters int
	running bool
}

// listen returns a channel closed at the next event of the tenant, and the
// function to call when no longer listening.
func (b *feedBell) listen(client *ent.Client, tenantID int) (<-chan struct{}, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.chans == nil {
		b.chans = map[int]chan struct{}{}
	}
	ch := b.chans[tenantID]
	if ch == nil {
		ch = make(chan struct{})
		b.chans[tenantID] = ch
	}
	b.waiters++
	if !b.running {
		b.running = true
		go b.run(client)
	}
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			b.waiters--
			b.mu.Unlock()
		})
	}
}

// ring wakes the tenants' polls (all of them when tenants is nil).
func (b *feedBell) ring(tenants map[int]bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for t, ch := range b.chans {
		if tenants == nil || tenants[t] {
			close(ch)
			delete(b.chans, t)
		}
	}
}

const feedRingBatch = 1000

func (b *feedBell) run(client *ent.Client) {
	last := -1 // not read yet
	t := time.NewTicker(feedRing)
	defer t.Stop()
	for range t.C {
		b.mu.Lock()
		if b.waiters <= 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(viewer.SystemContext(context.Background()), 5*time.Second)
		if last < 0 {
			id, err := client.RevocationEvent.Query().Order(ent.Desc(revocationevent.FieldID)).FirstID(ctx)
			cancel()
			if ent.IsNotFound(err) {
				id, err = 0, nil
			}
			if err == nil {
				// An event may have landed between a listener's page and
				// this poller's start: everyone reads once more.
				last = id
				b.ring(nil)
			}
			continue
		}
		evs, err := client.RevocationEvent.Query().Where(revocationevent.IDGT(last)).Order(ent.Asc(revocationevent.FieldID)).
			Limit(feedRingBatch).Select(revocationevent.FieldID, revocationevent.FieldTenantID).All(ctx)
		cancel()
		if err != nil || len(evs) == 0 {
			continue
		}
		last = evs[len(evs)-1].ID
		if len(evs) == feedRingBatch {
			b.ring(nil)
			continue
		}
		tenants := map[int]bool{}
		for _, e := range evs {
			tenants[e.TenantID] = true
		}
		b.ring(tenants)
	}
}
