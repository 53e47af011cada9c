package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// benchHostsQuery is the inventory screen's first request: a filtered, sorted
// first page with nested fields (disks, application) and the total count.
const benchHostsQuery = `query($env: HostEnvironment!) { hosts(first: 50, where: {environment: $env, cpusGTE: 2},
	orderBy: [{field: NAME}]) { totalCount pageInfo { hasNextPage endCursor }
	edges { node { id name os cpus memoryMib environment criticality
		disks { name sizeBytes } application { name } } } } }`

// BenchmarkAPIHostsPage measures issue 2's number: with 20,000 hosts in one
// tenant, the first page of hosts with a filter and nested fields under 64
// concurrent clients on loopback, next to a bare chi handler returning a
// constant, measured in the same run with the same client. Each iteration
// runs the whole load; use -benchtime 1x. BENCH_HOSTS, BENCH_CLIENTS and
// BENCH_REQUESTS override 20000, 64 and 4000.
func BenchmarkAPIHostsPage(b *testing.B) {
	hosts, clients, requests := envInt("BENCH_HOSTS", 20000), envInt("BENCH_CLIENTS", 64), envInt("BENCH_REQUESTS", 4000)
	ts := mustStart(b)
	// A tenant owner, as a customer's browser or script would be: the
	// platform operator's view carries no tenant filter and is not the hot path.
	admin := ts.login(b, "admin@example.com", adminPassword)
	admin.mustGQL(`mutation { createTenant(input: {name: "Bench", slug: "bench"}, ownerEmail: "owner@bench.example", ownerPassword: "bench-password-1") { tenant { id } } }`, nil)
	seedBulk(b, ts, "bench", hosts)
	c := ts.login(b, "owner@bench.example", "bench-password-1")
	secret, _ := dig(c.mustGQL(`mutation { createAPIToken(name: "bench") { secret } }`, nil), "createAPIToken", "secret").(string)
	if secret == "" {
		b.Fatal("no API token")
	}
	body, _ := json.Marshal(map[string]any{"query": benchHostsQuery, "variables": map[string]any{"env": "production"}})
	// The same page without totalCount and pageInfo (entgql counts the
	// matching rows for either): counting the 3,750 matches is most of the
	// database's work, so the split is worth knowing.
	noCount, _ := json.Marshal(map[string]any{"query": strings.Replace(benchHostsQuery, "totalCount pageInfo { hasNextPage endCursor }", "", 1), "variables": map[string]any{"env": "production"}})

	// The same request must succeed and return a full page before we time it.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, DisableCompression: true}}
	check := do(b, hc, ts.URL+"/graphql", secret, body)
	var page struct {
		Data struct {
			Hosts struct {
				TotalCount int
				Edges      []json.RawMessage
			}
		}
		Errors []any
	}
	if err := json.Unmarshal(check, &page); err != nil || len(page.Errors) > 0 || len(page.Data.Hosts.Edges) != 50 {
		b.Fatalf("benchmark query failed: %v %s", err, check)
	}

	bare := chi.NewRouter()
	bare.Post("/graphql", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data":{"ok":true}}`))
	})
	bareSrv := httptest.NewServer(bare)
	defer bareSrv.Close()

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		apiLat, apiWall := load(b, hc, ts.URL+"/graphql", secret, body, clients, requests)
		ncLat, ncWall := load(b, hc, ts.URL+"/graphql", secret, noCount, clients, requests)
		bareLat, bareWall := load(b, hc, bareSrv.URL+"/graphql", secret, body, clients, requests)
		b.StopTimer()
		ap50, ap99 := pct(apiLat, 50), pct(apiLat, 99)
		bp50, bp99 := pct(bareLat, 50), pct(bareLat, 99)
		b.ReportMetric(ms(ap50), "p50-ms")
		b.ReportMetric(ms(ap99), "p99-ms")
		b.ReportMetric(float64(requests)/apiWall.Seconds(), "req/s")
		np50, np99 := pct(ncLat, 50), pct(ncLat, 99)
		b.ReportMetric(ms(np50), "nocount-p50-ms")
		b.ReportMetric(ms(np99), "nocount-p99-ms")
		b.ReportMetric(ms(bp50), "bare-p50-ms")
		b.ReportMetric(ms(bp99), "bare-p99-ms")
		b.ReportMetric(float64(requests)/bareWall.Seconds(), "bare-req/s")
		b.ReportMetric(float64(ap50)/float64(bp50), "p50-ratio")
		b.ReportMetric(float64(ap99)/float64(bp99), "p99-ratio")
		b.Logf("%d hosts (%d match the filter), %d clients, %d requests: API p50 %.2f ms p99 %.2f ms %.0f req/s; without count p50 %.2f ms p99 %.2f ms %.0f req/s; bare chi p50 %.3f ms p99 %.3f ms %.0f req/s; ratio p50 %.0f×, p99 %.0f×",
			hosts, page.Data.Hosts.TotalCount, clients, requests, ms(ap50), ms(ap99), float64(requests)/apiWall.Seconds(),
			ms(np50), ms(np99), float64(requests)/ncWall.Seconds(),
			ms(bp50), ms(bp99), float64(requests)/bareWall.Seconds(), float64(ap50)/float64(bp50), float64(ap99)/float64(bp99))
		b.StartTimer()
	}
}

func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(name), &n); err == nil && n > 0 {
		return n
	}
	return def
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func pct(lat []time.Duration, p int) time.Duration {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	i := (len(lat)*p + 99) / 100
	if i > 0 {
		i--
	}
	return lat[i]
}

func do(b *testing.B, hc *http.Client, url, token string, body []byte) []byte {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		b.Fatalf("%s: status %d: %s", url, resp.StatusCode, out)
	}
	return out
}

// load sends requests from clients goroutines and returns every latency and
// the wall time of the whole run.
func load(b *testing.B, hc *http.Client, url, token string, body []byte, clients, requests int) ([]time.Duration, time.Duration) {
	lat := make([]time.Duration, requests)
	next := make(chan int, requests)
	for i := range requests {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	var once sync.Once
	var failure error
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := hc.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					once.Do(func() { failure = err })
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if failure != nil {
		b.Fatalf("load on %s: %v", url, failure)
	}
	return lat, wall
}

// seedBulk inserts n hosts into the tenant with slug in batches, each with two
// disks, spread over 200 applications and the environments, the way an
// RVTools import leaves them.
func seedBulk(b testing.TB, ts *testServer, slug string, n int) {
	b.Helper()
	client := ts.App.DB.Client
	tid, err := client.Tenant.Query().Where(tenant.Slug(slug)).OnlyID(viewer.SystemContext(b.Context()))
	if err != nil {
		b.Fatal(err)
	}
	ctx := viewer.TenantContext(b.Context(), tid)
	apps := make([]*ent.ApplicationCreate, 200)
	for i := range apps {
		apps[i] = client.Application.Create().SetName(fmt.Sprintf("app-%03d", i))
	}
	appRows := client.Application.CreateBulk(apps...).SaveX(ctx)
	envs := []host.Environment{host.EnvironmentProduction, host.EnvironmentTest, host.EnvironmentDevelopment, host.EnvironmentStaging}
	const batch = 1000
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		hs := make([]*ent.HostCreate, 0, end-start)
		for i := start; i < end; i++ {
			hs = append(hs, client.Host.Create().SetName(fmt.Sprintf("vm-%05d", i)).SetCpus(1+i%16).
				SetMemoryMib(int64(1024*(1+i%32))).SetOs("Red Hat Enterprise Linux 7 (64-bit)").
				SetEnvironment(envs[i%len(envs)]).SetApplicationID(appRows[i%len(appRows)].ID))
		}
		rows := client.Host.CreateBulk(hs...).SaveX(ctx)
		ds := make([]*ent.DiskCreate, 0, 2*len(rows))
		for _, h := range rows {
			for d := 0; d < 2; d++ {
				ds = append(ds, client.Disk.Create().SetName(fmt.Sprintf("disk%d", d)).SetSizeBytes(int64(40+d*60)<<30).SetHostID(h.ID))
			}
		}
		client.Disk.CreateBulk(ds...).ExecX(ctx)
	}
}
