package graph

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	entgo "entgo.io/ent"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// countCache remembers a connection's totalCount for a filter for a moment
// (countTTL), so that the inventory screen under many clients counts the
// matching hosts once per moment rather than once per request: the count
// is most of the database's work for a first page at 20,000 hosts
// (docs/benchmarks.md). Any host write in this process empties it; another
// replica's writes show within countTTL.
type countCache struct {
	mu  sync.Mutex
	m   map[string]countEntry
	gen atomic.Uint64
	ttl time.Duration
	now func() time.Time
}

type countEntry struct {
	n   int
	at  time.Time
	gen uint64
}

const countTTL = 2 * time.Second

func newCountCache() *countCache {
	return &countCache{m: map[string]countEntry{}, ttl: countTTL, now: time.Now}
}

// invalidate forgets every count (a write changed what they counted).
func (c *countCache) invalidate() { c.gen.Add(1) }

// key names a count: the viewer's tenant scope and the filter.
func countKey(ctx context.Context, what string, filter any) (string, bool) {
	v := viewer.FromContext(ctx)
	if v == nil {
		return "", false
	}
	b, err := json.Marshal(filter)
	if err != nil {
		return "", false
	}
	scope := strconv.Itoa(v.TenantID)
	if v.AllTenants() {
		scope = "all"
	}
	return what + "|" + scope + "|" + string(b), true
}

type countKeyCtx struct{}

// withCountKey marks ctx's Count queries as cacheable under key.
func withCountKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, countKeyCtx{}, key)
}

// interceptor answers a Count made under withCountKey from the cache when
// the cached count is fresh.
func (c *countCache) interceptor() ent.Interceptor {
	return ent.InterceptFunc(func(next ent.Querier) ent.Querier {
		return ent.QuerierFunc(func(ctx context.Context, q ent.Query) (ent.Value, error) {
			key, _ := ctx.Value(countKeyCtx{}).(string)
			if qc := entgo.QueryFromContext(ctx); key == "" || qc == nil || qc.Op != entgo.OpQueryCount {
				return next.Query(ctx, q)
			}
			gen := c.gen.Load()
			c.mu.Lock()
			e, ok := c.m[key]
			c.mu.Unlock()
			if ok && e.gen == gen && c.now().Sub(e.at) < c.ttl {
				return e.n, nil
			}
			v, err := next.Query(ctx, q)
			if n, isInt := v.(int); err == nil && isInt {
				c.mu.Lock()
				if len(c.m) > 10000 {
					c.m = map[string]countEntry{}
				}
				c.m[key] = countEntry{n: n, at: c.now(), gen: gen}
				c.mu.Unlock()
			}
			return v, err
		})
	})
}

// hostCountInvalidator empties cache on every host write.
func hostCountInvalidator(c *countCache) ent.Hook {
	return func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			v, err := next.Mutate(ctx, m)
			c.invalidate()
			return v, err
		})
	}
}
