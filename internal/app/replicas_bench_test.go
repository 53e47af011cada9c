package app_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/pgtest"
	"github.com/ferry-migrate/ferry/internal/redistest"
)

// BenchmarkAPIReplicas measures requests per second of the inventory page
// (benchHostsQuery) at 20,000 hosts and 64 clients through a round-robin
// reverse proxy to one, then two `serve` replicas sharing one PostgreSQL
// database and one redis-server — the scale-out configuration — next to a
// bare chi handler behind the same proxy. Replicas run in this process, so
// on one machine the second replica adds no cores: the figure is the cost
// (or gain) of spreading the same CPU over two servers and two pools.
// BENCH_HOSTS, BENCH_CLIENTS and BENCH_REQUESTS as BenchmarkAPIHostsPage.
func BenchmarkAPIReplicas(b *testing.B) {
	hosts, clients, requests := envInt("BENCH_HOSTS", 20000), envInt("BENCH_CLIENTS", 64), envInt("BENCH_REQUESTS", 4000)
	dbURL := pgtest.Database(b)
	redisURL := redistest.Start(b)
	keys := filepath.Join(b.TempDir(), "keys")
	start := func() *testServer {
		return mustStart(b, func(c *app.Config) { c.DatabaseURL, c.RedisURL, c.KeysDir = dbURL, redisURL, keys })
	}
	a := start()
	admin := a.login(b, "admin@example.com", adminPassword)
	admin.mustGQL(`mutation { createTenant(input: {name: "Bench", slug: "bench"}, ownerEmail: "owner@bench.example", ownerPassword: "bench-password-1") { tenant { id } } }`, nil)
	seedBulk(b, a, "bench", hosts)
	c := a.login(b, "owner@bench.example", "bench-password-1")
	secret, _ := dig(c.mustGQL(`mutation { createAPIToken(name: "bench") { secret } }`, nil), "createAPIToken", "secret").(string)
	second := start()
	body, _ := json.Marshal(map[string]any{"query": benchHostsQuery, "variables": map[string]any{"env": "production"}})
	proxyTo := func(urls ...string) *httptest.Server {
		var targets []*url.URL
		for _, u := range urls {
			t, _ := url.Parse(u)
			targets = append(targets, t)
		}
		var n atomic.Uint64
		rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(targets[n.Add(1)%uint64(len(targets))]) },
			Transport: &http.Transport{MaxIdleConns: 2 * clients, MaxIdleConnsPerHost: clients}}
		return httptest.NewServer(rp)
	}
	one, two := proxyTo(a.URL), proxyTo(a.URL, second.URL)
	defer one.Close()
	defer two.Close()
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"data":{"ok":true}}`)) }))
	defer bare.Close()
	bareProxy := proxyTo(bare.URL)
	defer bareProxy.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, DisableCompression: true}}
	do(b, hc, two.URL+"/graphql", secret, body) // both replicas answer the token
	do(b, hc, two.URL+"/graphql", secret, body)
	b.ResetTimer()
	for range b.N {
		l1, w1 := load(b, hc, one.URL+"/graphql", secret, body, clients, requests)
		l2, w2 := load(b, hc, two.URL+"/graphql", secret, body, clients, requests)
		lb, wb := load(b, hc, bareProxy.URL+"/graphql", secret, body, clients, requests)
		b.StopTimer()
		b.ReportMetric(float64(requests)/w1.Seconds(), "1-replica-req/s")
		b.ReportMetric(float64(requests)/w2.Seconds(), "2-replica-req/s")
		b.ReportMetric(float64(requests)/wb.Seconds(), "bare-req/s")
		b.ReportMetric(ms(pct(l1, 99)), "1-replica-p99-ms")
		b.ReportMetric(ms(pct(l2, 99)), "2-replica-p99-ms")
		b.Logf("%d hosts, %d clients, %d requests through a reverse proxy, PostgreSQL + redis-server: one replica %.0f req/s (p50 %.1f ms, p99 %.1f ms); two replicas %.0f req/s (p50 %.1f ms, p99 %.1f ms); bare chi %.0f req/s (p99 %.2f ms)",
			hosts, clients, requests, float64(requests)/w1.Seconds(), ms(pct(l1, 50)), ms(pct(l1, 99)),
			float64(requests)/w2.Seconds(), ms(pct(l2, 50)), ms(pct(l2, 99)), float64(requests)/wb.Seconds(), ms(pct(lb, 99)))
		b.StartTimer()
	}
}
