package agentstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/ferry-migrate/ferry/discovery/agentapi"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/ingest"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// BenchmarkHeartbeatIngest drives POST /agent/v1/heartbeat of a whole
// Ferry server (app.New: real SQLite file, the web middleware and access
// log, the agent handler and this Store) over loopback sockets, from
// FERRY_BENCH_AGENTS registered agents (default 20,000):
//
//   - paced: 20,000 agents per minute (≈333 req/s) for FERRY_BENCH_SECONDS
//     (default 15), each request from a different agent, latency per request;
//   - flat-out: 32 concurrent clients as fast as they go, same duration;
//   - mixed: paced again, while agents also post one inventory per second
//     (20,000 agents every 6 h is ~1/s) into an estate of as many hosts,
//     so heartbeats queue behind inventory merges for SQLite's write lock.
//
// Reported: p50/p99/max ms per request, achieved req/s, errors (and the
// inventories' own p50/max).
func BenchmarkHeartbeatIngest(b *testing.B) {
	agents := envInt("FERRY_BENCH_AGENTS", 20000)
	secs := envInt("FERRY_BENCH_SECONDS", 15)
	a, err := app.New(context.Background(), app.Config{
		DataDir: b.TempDir(), AdminEmail: "admin@example.com", AdminPassword: "bench-password-1", Migrate: true,
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Banner: io.Discard,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: a.Web}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + agentapi.PathHeartbeat

	creds := seedAgents(b, a.DB.Client, agents)
	body := []byte(`{"agent_version":"1.0.0","sent_at":"2026-11-23T12:00:00Z","buffered_batches":0,"buffered_bytes":0}`)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
	var next atomic.Int64
	beat := func() (time.Duration, error) {
		cred := creds[int(next.Add(1))%len(creds)]
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+cred)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != 200 {
			return d, fmt.Errorf("status %d", resp.StatusCode)
		}
		return d, nil
	}
	dur := time.Duration(secs) * time.Second
	b.ResetTimer()
	for range b.N {
		// Paced: one request every 3 ms, each on its own goroutine so a slow
		// answer does not slow the arrival rate (an open-loop generator).
		lat, errs, elapsed := run(dur, func(stop <-chan struct{}, out func(time.Duration, error)) {
			tick := time.NewTicker(time.Minute / 20000)
			defer tick.Stop()
			var wg sync.WaitGroup
			defer wg.Wait()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					wg.Add(1)
					go func() { defer wg.Done(); out(beat()) }()
				}
			}
		})
		report(b, "paced", lat, errs, elapsed)
		lat, errs, elapsed = run(dur, func(stop <-chan struct{}, out func(time.Duration, error)) {
			var wg sync.WaitGroup
			for range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
							out(beat())
						}
					}
				}()
			}
			wg.Wait()
		})
		report(b, "flat", lat, errs, elapsed)

		// Mixed: an estate of `agents` hosts, then paced heartbeats with an
		// inventory a second from the agent of host i.
		seedHosts(b, a, agents)
		invURL := "http://" + ln.Addr().String() + agentapi.PathInventory
		var invLat []time.Duration
		var invErrs atomic.Int64
		lat, errs, elapsed = run(dur, func(stop <-chan struct{}, out func(time.Duration, error)) {
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					body, _ := json.Marshal(benchInventory(i))
					req, _ := http.NewRequest("POST", invURL, bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+creds[i%len(creds)])
					start := time.Now()
					resp, err := hc.Do(req)
					if err != nil || resp.StatusCode != 204 {
						invErrs.Add(1)
						if resp != nil {
							resp.Body.Close()
						}
						continue
					}
					resp.Body.Close()
					invLat = append(invLat, time.Since(start))
				}
			}()
			tick := time.NewTicker(time.Minute / 20000)
			defer tick.Stop()
			defer wg.Wait()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					wg.Add(1)
					go func() { defer wg.Done(); out(beat()) }()
				}
			}
		})
		report(b, "mixed", lat, errs, elapsed)
		slices.Sort(invLat)
		if len(invLat) > 0 {
			b.ReportMetric(float64(invLat[len(invLat)/2])/float64(time.Millisecond), "mixed-inventory-p50-ms")
			b.ReportMetric(float64(invLat[len(invLat)-1])/float64(time.Millisecond), "mixed-inventory-max-ms")
		}
		b.ReportMetric(float64(invErrs.Load()), "mixed-inventory-errors")
	}
}

// seedHosts stores n hosts named host00000… with two disks each, the
// estate the mixed phase's inventories merge into.
func seedHosts(b *testing.B, a *app.App, n int) {
	b.Helper()
	ctx := viewer.SystemContext(context.Background())
	tenant := a.DB.Client.Tenant.Query().FirstX(ctx)
	recs := make([]discovery.Record, n)
	for i := range recs {
		r := &recs[i]
		r.Source = discovery.SourceRef{Kind: "rvtools", Name: "seed.xlsx", ObservedAt: time.Now()}
		r.Refs = []string{"seed:" + strconv.Itoa(i)}
		r.Name = fmt.Sprintf("host%05d", i)
		r.IPs = []string{fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}
		r.MemoryMiB, r.CPUs = 8192, 4
		r.Disks = []discovery.Disk{{Name: "disk0", ProvisionedBytes: 40 << 30}, {Name: "disk1", ProvisionedBytes: 100 << 30}}
	}
	if _, err := ingest.Apply(context.Background(), a.DB.Client, tenant.ID, ingest.Batch{Kind: "rvtools", Records: recs}, time.Now()); err != nil {
		b.Fatal(err)
	}
}

// benchInventory is agent i's report about host i.
func benchInventory(i int) discovery.Inventory {
	return discovery.Inventory{
		CollectedAt: time.Now().UTC(), Hostname: fmt.Sprintf("host%05d", i),
		OS: discovery.OSRelease{PrettyName: "Debian GNU/Linux 12"}, Arch: "x86_64", BootMode: "uefi",
		CPU: discovery.CPU{Threads: 4}, MemoryBytes: 8 << 30,
		BlockDevices: []discovery.BlockDevice{{Name: "vda", SizeBytes: 40 << 30}, {Name: "vdb", SizeBytes: 100 << 30}},
		NICs:         []discovery.NIC{{Name: "eth0", MAC: fmt.Sprintf("52:54:00:%02x:%02x:%02x", i>>16&255, i>>8&255, i&255), Addresses: []string{fmt.Sprintf("10.%d.%d.%d/16", i>>16&255, i>>8&255, i&255)}}},
		Software:     []discovery.Software{{Name: "nginx", Source: "process"}},
		Listening:    []discovery.Socket{{Protocol: "tcp", Address: "0.0.0.0", Port: 443}},
		Connections: []discovery.Connection{{Protocol: "tcp", LocalAddress: "10.0.0.1", LocalPort: 40000,
			RemoteAddress: fmt.Sprintf("10.%d.%d.%d", (i+1)>>16&255, (i+1)>>8&255, (i+1)&255), RemotePort: 5432, State: "ESTABLISHED", Process: "java"}},
	}
}

// run drives gen for d and collects latencies and errors.
func run(d time.Duration, gen func(stop <-chan struct{}, out func(time.Duration, error))) ([]time.Duration, int, time.Duration) {
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	stop := make(chan struct{})
	start := time.Now()
	time.AfterFunc(d, func() { close(stop) })
	gen(stop, func(l time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs++
			return
		}
		lat = append(lat, l)
	})
	return lat, errs, time.Since(start)
}

func report(b *testing.B, name string, lat []time.Duration, errs int, elapsed time.Duration) {
	slices.Sort(lat)
	pct := func(p int) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, len(lat)*p/100)]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), name+"-req/s")
	b.ReportMetric(pct(50), name+"-p50-ms")
	b.ReportMetric(pct(99), name+"-p99-ms")
	b.ReportMetric(pct(100), name+"-max-ms")
	b.ReportMetric(float64(errs), name+"-errors")
}

// seedAgents registers n agents in the default tenant directly (the
// registration path is not what is measured) and returns their credentials.
func seedAgents(b *testing.B, client *ent.Client, n int) []string {
	b.Helper()
	ctx := viewer.SystemContext(context.Background())
	tenant := client.Tenant.Query().FirstX(ctx)
	tctx := viewer.TenantContext(context.Background(), tenant.ID)
	creds := make([]string, n)
	for start := 0; start < n; start += 1000 {
		bulk := make([]*ent.AgentCreate, 0, 1000)
		for i := start; i < min(n, start+1000); i++ {
			c, err := agentapi.NewCredential()
			if err != nil {
				b.Fatal(err)
			}
			creds[i] = c
			bulk = append(bulk, client.Agent.Create().SetName("host"+strconv.Itoa(i)).SetHostname("host"+strconv.Itoa(i)).
				SetCredentialHash([]byte(agentapi.HashCredential(c))))
		}
		if err := client.Agent.CreateBulk(bulk...).Exec(tctx); err != nil {
			b.Fatal(err)
		}
	}
	return creds
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkSaveInventory is one agent's inventory merged into a tenant
// that already holds FERRY_BENCH_HOSTS hosts (default 20,000, two disks
// each): what an agent's report costs the server, all inside one write
// transaction.
func BenchmarkSaveInventory(b *testing.B) {
	f := mustOpenB(b)
	n := envInt("FERRY_BENCH_HOSTS", 20000)
	recs := make([]discovery.Record, n)
	for i := range recs {
		r := &recs[i]
		r.Source = discovery.SourceRef{Kind: "rvtools", Name: "seed.xlsx", ObservedAt: f.clock.Now()}
		r.Refs = []string{"seed:" + strconv.Itoa(i)}
		r.Name = fmt.Sprintf("vm%05d", i)
		r.IPs = []string{fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}
		r.MemoryMiB, r.CPUs = 8192, 4
		r.Disks = []discovery.Disk{{Name: "disk0", ProvisionedBytes: 40 << 30}, {Name: "disk1", ProvisionedBytes: 100 << 30}}
	}
	if _, err := ingest.Apply(context.Background(), f.client, f.tenantA, ingest.Batch{Kind: "rvtools", Records: recs}, f.clock.Now()); err != nil {
		b.Fatal(err)
	}
	f.store.Identities = &ingest.Identities{}
	claims, _ := f.tokenB(b, f.tenantA, 1, time.Hour)
	id, cred, err := f.store.RegisterAgent(f.ctx, claims, agentapi.HostInfo{Hostname: "vm00042"})
	if err != nil {
		b.Fatal(err)
	}
	a := agentapi.Agent{ID: id, TenantID: claims.TenantID}
	_ = cred
	inv := inventory("vm00042")
	b.ResetTimer()
	for range b.N {
		if err := f.store.SaveInventory(f.ctx, a, inv); err != nil {
			b.Fatal(err)
		}
	}
}
