package agentstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/ferry-migrate/ferry/discovery/agentapi"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/agent"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/internal/agentstore"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// clock is an injected, hand-advanced clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	client     *ent.Client
	store      *agentstore.Store
	clock      *clock
	tenantA    int
	tenantB    int
	ctx        context.Context
	tokenCount int
}

// mustOpen opens a migrated SQLite file in a temp dir with two tenants.
func mustOpen(t *testing.T) *fixture { return mustOpenB(t) }

func mustOpenB(t testing.TB) *fixture {
	t.Helper()
	db, err := database.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sys := viewer.SystemContext(context.Background())
	a := db.Client.Tenant.Create().SetName("A").SetSlug("a").SaveX(sys)
	b := db.Client.Tenant.Create().SetName("B").SetSlug("b").SaveX(sys)
	clk := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	return &fixture{client: db.Client, clock: clk, tenantA: a.ID, tenantB: b.ID, ctx: context.Background(),
		store: &agentstore.Store{Client: db.Client, Now: clk.Now}}
}

// token creates a registration token row in tenantID and returns its claims.
func (f *fixture) token(t *testing.T, tenantID, maxUses int, ttl time.Duration) (agentapi.Claims, *ent.RegistrationToken) {
	return f.tokenB(t, tenantID, maxUses, ttl)
}

func (f *fixture) tokenB(t testing.TB, tenantID, maxUses int, ttl time.Duration) (agentapi.Claims, *ent.RegistrationToken) {
	t.Helper()
	f.tokenCount++
	id := "tok" + strconv.Itoa(f.tokenCount)
	exp := f.clock.Now().Add(ttl)
	row := f.client.RegistrationToken.Create().SetName("t").SetTokenID(id).SetExpiresAt(exp).SetMaxUses(maxUses).
		SaveX(viewer.TenantContext(f.ctx, tenantID))
	return agentapi.Claims{TenantID: strconv.Itoa(tenantID), TokenID: id, ExpiresAt: exp.Unix()}, row
}

func (f *fixture) register(t *testing.T, c agentapi.Claims, hostname string) agentapi.Agent {
	t.Helper()
	id, cred, err := f.store.RegisterAgent(f.ctx, c, agentapi.HostInfo{Hostname: hostname, AgentVersion: "1.0"})
	if err != nil {
		t.Fatalf("register %s: %v", hostname, err)
	}
	a, err := f.store.AuthenticateAgent(f.ctx, cred)
	if err != nil {
		t.Fatalf("authenticate %s: %v", hostname, err)
	}
	if a.ID != id || a.TenantID != c.TenantID {
		t.Fatalf("authenticated as %+v, registered %s in %s", a, id, c.TenantID)
	}
	return a
}

func TestRegisterAgent(t *testing.T) {
	f := mustOpen(t)
	claims, row := f.token(t, f.tenantA, 2, time.Hour)
	id, cred, err := f.store.RegisterAgent(f.ctx, claims, agentapi.HostInfo{Hostname: "web01", AgentVersion: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	ag := f.client.Agent.Query().Where(agent.ID(atoi(t, id))).WithRegistrationToken().OnlyX(viewer.SystemContext(f.ctx))
	if string(ag.CredentialHash) != agentapi.HashCredential(cred) || string(ag.CredentialHash) == cred {
		t.Fatalf("stored %q; want only the hash of the credential", ag.CredentialHash)
	}
	if ag.TenantID != f.tenantA || ag.Hostname != "web01" || ag.Version != "1.2.3" || ag.Edges.RegistrationToken.ID != row.ID {
		t.Fatalf("agent row: %+v", ag)
	}
	if n := f.client.RegistrationToken.GetX(viewer.SystemContext(f.ctx), row.ID).Uses; n != 1 {
		t.Fatalf("uses = %d, want 1", n)
	}

	f.register(t, claims, "web02")
	if _, _, err := f.store.RegisterAgent(f.ctx, claims, agentapi.HostInfo{Hostname: "web03"}); !errors.Is(err, agentapi.ErrTokenExhausted) {
		t.Fatalf("third use of a two-use token: %v, want ErrTokenExhausted", err)
	}

	revoked, row2 := f.token(t, f.tenantA, 5, time.Hour)
	f.client.RegistrationToken.UpdateOneID(row2.ID).SetRevokedAt(f.clock.Now()).ExecX(viewer.TenantContext(f.ctx, f.tenantA))
	if _, _, err := f.store.RegisterAgent(f.ctx, revoked, agentapi.HostInfo{Hostname: "x"}); !errors.Is(err, agentapi.ErrTokenRevoked) {
		t.Fatalf("revoked token: %v", err)
	}

	// A token id of tenant B presented under tenant A's claims reads as unknown.
	other, _ := f.token(t, f.tenantB, 5, time.Hour)
	other.TenantID = strconv.Itoa(f.tenantA)
	if _, _, err := f.store.RegisterAgent(f.ctx, other, agentapi.HostInfo{Hostname: "x"}); !errors.Is(err, agentapi.ErrTokenRevoked) {
		t.Fatalf("other tenant's token: %v", err)
	}
	unknown := agentapi.Claims{TenantID: strconv.Itoa(f.tenantA), TokenID: "nope", ExpiresAt: claims.ExpiresAt}
	if _, _, err := f.store.RegisterAgent(f.ctx, unknown, agentapi.HostInfo{Hostname: "x"}); !errors.Is(err, agentapi.ErrTokenRevoked) {
		t.Fatalf("unknown token: %v", err)
	}

	expiring, _ := f.token(t, f.tenantA, 5, time.Minute)
	f.clock.Add(2 * time.Minute)
	if _, _, err := f.store.RegisterAgent(f.ctx, expiring, agentapi.HostInfo{Hostname: "x"}); !errors.Is(err, agentapi.ErrTokenExpired) {
		t.Fatalf("expired token: %v", err)
	}
	// Refusals consumed nothing and created nothing.
	if n := f.client.Agent.Query().CountX(viewer.SystemContext(f.ctx)); n != 2 {
		t.Fatalf("%d agents, want 2", n)
	}
}

// TestRegisterAgentRace races more agents than a token has uses: exactly
// max_uses win.
func TestRegisterAgentRace(t *testing.T) {
	f := mustOpen(t)
	claims, row := f.token(t, f.tenantA, 3, time.Hour)
	var ok, exhausted atomic.Int32
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := f.store.RegisterAgent(f.ctx, claims, agentapi.HostInfo{Hostname: "h" + strconv.Itoa(i)})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, agentapi.ErrTokenExhausted):
				exhausted.Add(1)
			default:
				t.Errorf("register: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 3 || exhausted.Load() != 9 {
		t.Fatalf("%d registered, %d exhausted; want 3 and 9", ok.Load(), exhausted.Load())
	}
	if n := f.client.RegistrationToken.GetX(viewer.SystemContext(f.ctx), row.ID).Uses; n != 3 {
		t.Fatalf("uses = %d", n)
	}
}

func TestAuthenticateRevoked(t *testing.T) {
	f := mustOpen(t)
	claims, _ := f.token(t, f.tenantA, 1, time.Hour)
	id, cred, err := f.store.RegisterAgent(f.ctx, claims, agentapi.HostInfo{Hostname: "db01"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.AuthenticateAgent(f.ctx, cred); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.AuthenticateAgent(f.ctx, cred+"x"); !errors.Is(err, agentapi.ErrUnauthenticated) {
		t.Fatalf("wrong credential: %v", err)
	}
	f.client.Agent.UpdateOneID(atoi(t, id)).SetRevokedAt(f.clock.Now()).ExecX(viewer.TenantContext(f.ctx, f.tenantA))
	// The cache may answer for up to AuthTTL; after it, the revocation holds.
	f.clock.Add(agentstore.DefaultAuthTTL)
	if _, err := f.store.AuthenticateAgent(f.ctx, cred); !errors.Is(err, agentapi.ErrUnauthenticated) {
		t.Fatalf("revoked agent after %v: %v", agentstore.DefaultAuthTTL, err)
	}

	// Without a cache, revocation is immediate.
	f.store.AuthTTL = -1
	claims2, _ := f.token(t, f.tenantA, 1, time.Hour)
	id2, cred2, err := f.store.RegisterAgent(f.ctx, claims2, agentapi.HostInfo{Hostname: "db02"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.AuthenticateAgent(f.ctx, cred2); err != nil {
		t.Fatal(err)
	}
	f.client.Agent.UpdateOneID(atoi(t, id2)).SetRevokedAt(f.clock.Now()).ExecX(viewer.TenantContext(f.ctx, f.tenantA))
	if _, err := f.store.AuthenticateAgent(f.ctx, cred2); !errors.Is(err, agentapi.ErrUnauthenticated) {
		t.Fatalf("revoked agent: %v", err)
	}
}

func inventory(hostname string) discovery.Inventory {
	return discovery.Inventory{
		CollectedAt: time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC),
		Hostname:    hostname, BIOSUUID: "4c4c4544-0042-3510-8052-b3c04f4d3232",
		OS: discovery.OSRelease{PrettyName: "Debian GNU/Linux 12"}, Arch: "x86_64", BootMode: "uefi",
		Kernel: "6.1.0-26-amd64", MachineID: "0123456789abcdef0123456789abcdef",
		CPU: discovery.CPU{Threads: 4, Model: "AMD EPYC 9654"}, MemoryBytes: 8 << 30,
		BlockDevices: []discovery.BlockDevice{{Name: "vda", SizeBytes: 40 << 30}, {Name: "vdb", SizeBytes: 100 << 30}},
		Filesystems:  []discovery.Filesystem{{Device: "/dev/vda1", MountPoint: "/", UsedBytes: 5 << 30}},
		NICs:         []discovery.NIC{{Name: "eth0", MAC: "52:54:00:12:34:56", Addresses: []string{"10.0.0.5/24"}}},
		Software:     []discovery.Software{{Name: "PostgreSQL", Source: "process"}},
		Listening:    []discovery.Socket{{Protocol: "tcp", Address: "0.0.0.0", Port: 5432}},
		Connections: []discovery.Connection{
			{Protocol: "tcp", LocalAddress: "10.0.0.5", LocalPort: 41000, RemoteAddress: "10.0.0.9", RemotePort: 443, State: "ESTABLISHED", Process: "curl"},
			{Protocol: "tcp", LocalAddress: "10.0.0.5", LocalPort: 5432, RemoteAddress: "10.0.0.7", RemotePort: 50000, State: "ESTABLISHED", Process: "postgres"},
		},
	}
}

func TestSaveInventory(t *testing.T) {
	f := mustOpen(t)
	claims, _ := f.token(t, f.tenantA, 1, time.Hour)
	a := f.register(t, claims, "db01")
	if err := f.store.SaveInventory(f.ctx, a, inventory("db01")); err != nil {
		t.Fatal(err)
	}
	ctxA := viewer.TenantContext(f.ctx, f.tenantA)
	hs := f.client.Host.Query().WithDisks().WithSoftware().WithAgent().WithOutgoing().AllX(ctxA)
	if len(hs) != 1 {
		t.Fatalf("%d hosts, want 1", len(hs))
	}
	h := hs[0]
	if h.Name != "db01" || h.Source != "agent" || h.Cpus != 4 || h.MemoryMib != 8192 || h.BootMode != host.BootModeUefi || len(h.Edges.Disks) != 2 {
		t.Fatalf("host: %+v disks %d", h, len(h.Edges.Disks))
	}
	if h.Kernel != "6.1.0-26-amd64" || h.MachineID != "0123456789abcdef0123456789abcdef" || h.CPUModel != "AMD EPYC 9654" {
		t.Fatalf("agent-only facts: kernel %q machine id %q cpu %q", h.Kernel, h.MachineID, h.CPUModel)
	}
	if h.Edges.Agent == nil || strconv.Itoa(h.Edges.Agent.ID) != a.ID {
		t.Fatalf("agent not linked to its host")
	}
	if len(h.Edges.Software) != 1 || h.Edges.Software[0].Kind != "database" {
		t.Fatalf("software: %+v", h.Edges.Software)
	}
	var got []string
	for _, c := range h.Edges.Outgoing {
		got = append(got, c.DstAddress+"/"+strconv.Itoa(c.Port))
	}
	if diff := cmp.Diff([]string{"10.0.0.9:443/443"}, got); diff != "" {
		t.Fatalf("outgoing connections (-want +got):\n%s", diff)
	}
	// Tenant B sees nothing of it.
	if n := f.client.Host.Query().CountX(viewer.TenantContext(f.ctx, f.tenantB)); n != 0 {
		t.Fatalf("tenant B sees %d hosts", n)
	}

	// A second inventory (a disk removed) updates the same host.
	inv := inventory("db01")
	inv.BlockDevices = inv.BlockDevices[:1]
	inv.MemoryBytes = 16 << 30
	if err := f.store.SaveInventory(f.ctx, a, inv); err != nil {
		t.Fatal(err)
	}
	hs = f.client.Host.Query().WithDisks().AllX(ctxA)
	if len(hs) != 1 || hs[0].MemoryMib != 16384 || len(hs[0].Edges.Disks) != 1 {
		t.Fatalf("after the second inventory: %d hosts, memory %d, %d disks", len(hs), hs[0].MemoryMib, len(hs[0].Edges.Disks))
	}
	if n := f.client.ImportRun.Query().CountX(ctxA); n != 0 {
		t.Fatalf("agent inventories recorded %d import runs", n)
	}
}

func TestSaveSamples(t *testing.T) {
	f := mustOpen(t)
	claims, _ := f.token(t, f.tenantA, 1, time.Hour)
	a := f.register(t, claims, "app01")
	samples := func(cpu ...float64) []discovery.UtilisationSample {
		var s []discovery.UtilisationSample
		for i, c := range cpu {
			s = append(s, discovery.UtilisationSample{At: f.clock.Now().Add(time.Duration(i) * time.Minute), CPUPercent: c, MemoryPercent: c / 2})
		}
		return s
	}
	// Before any inventory a batch is accepted (and remembered) but has no host.
	if err := f.store.SaveSamples(f.ctx, a, agentapi.SamplesBatch{BatchID: "b0", Samples: samples(10)}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.SaveInventory(f.ctx, a, inventory("app01")); err != nil {
		t.Fatal(err)
	}
	cpu := make([]float64, 20)
	for i := range cpu {
		cpu[i] = float64(i + 1) // 1..20: nearest-rank p95 is 19
	}
	batch := agentapi.SamplesBatch{BatchID: "b1", Samples: samples(cpu...), ObservedAt: f.clock.Now(),
		Connections: []discovery.Connection{{Protocol: "tcp", LocalAddress: "10.0.0.5", LocalPort: 40000, RemoteAddress: "10.0.0.20", RemotePort: 6379, State: "ESTABLISHED", Process: "java"}}}
	if err := f.store.SaveSamples(f.ctx, a, batch); err != nil {
		t.Fatal(err)
	}
	ctxA := viewer.TenantContext(f.ctx, f.tenantA)
	h := f.client.Host.Query().WithOutgoing().OnlyX(ctxA)
	if h.CPUP95 == nil || *h.CPUP95 != 19 || h.MemoryP95 == nil || *h.MemoryP95 != 9.5 {
		t.Fatalf("p95 cpu %v memory %v, want 19 and 9.5", h.CPUP95, h.MemoryP95)
	}
	count := func() int64 {
		for _, c := range f.client.Host.Query().WithOutgoing().OnlyX(ctxA).Edges.Outgoing {
			if c.Port == 6379 {
				return c.Count
			}
		}
		return 0
	}
	if count() != 1 {
		t.Fatalf("the sampled connection was not stored")
	}
	// The same batch again (a retry after a lost response, even with other
	// contents) changes nothing.
	retry := batch
	retry.Samples = samples(90, 95, 99)
	if err := f.store.SaveSamples(f.ctx, a, retry); err != nil {
		t.Fatal(err)
	}
	h = f.client.Host.Query().OnlyX(ctxA)
	if *h.CPUP95 != 19 {
		t.Fatalf("a retried batch was counted again: p95 %v", *h.CPUP95)
	}
	ag := f.client.Agent.Query().OnlyX(ctxA)
	if diff := cmp.Diff([]string{"b0", "b1"}, ag.RecentBatches); diff != "" {
		t.Fatalf("recent batches (-want +got):\n%s", diff)
	}
	// Only the last batch ids are kept.
	for i := range 70 {
		if err := f.store.SaveSamples(f.ctx, a, agentapi.SamplesBatch{BatchID: "n" + strconv.Itoa(i), Samples: samples(50)}); err != nil {
			t.Fatal(err)
		}
	}
	if ag := f.client.Agent.Query().OnlyX(ctxA); len(ag.RecentBatches) != 64 || ag.RecentBatches[63] != "n69" {
		t.Fatalf("recent batches: %d, last %q", len(ag.RecentBatches), ag.RecentBatches[len(ag.RecentBatches)-1])
	}
}

func TestHeartbeatAndCommands(t *testing.T) {
	f := mustOpen(t)
	claims, _ := f.token(t, f.tenantA, 1, time.Hour)
	a := f.register(t, claims, "app01")
	if err := f.store.Heartbeat(f.ctx, a, agentapi.Heartbeat{AgentVersion: "2.0", BufferedBatches: 3}); err != nil {
		t.Fatal(err)
	}
	ag := f.client.Agent.Query().OnlyX(viewer.TenantContext(f.ctx, f.tenantA))
	if ag.LastHeartbeatAt == nil || !ag.LastHeartbeatAt.Equal(f.clock.Now()) || ag.Version != "2.0" || ag.BufferedBatches != 3 {
		t.Fatalf("after heartbeat: %+v", ag)
	}
	if cmds, err := f.store.NextCommands(f.ctx, a); err != nil || len(cmds) != 0 {
		t.Fatalf("no hook: %v %v", cmds, err)
	}
	var asked int
	f.store.Commands = func(ctx context.Context, agentID int) ([]agentapi.Command, error) {
		asked = agentID
		// The hook runs as the agent's tenant.
		if n := f.client.Agent.Query().CountX(ctx); n != 1 {
			t.Errorf("hook sees %d agents", n)
		}
		return []agentapi.Command{{ID: "c1", Type: agentapi.CommandCollectInventory}}, nil
	}
	cmds, err := f.store.NextCommands(f.ctx, a)
	if err != nil || len(cmds) != 1 || strconv.Itoa(asked) != a.ID {
		t.Fatalf("hook: %v %v asked %d", cmds, err, asked)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDisabledTenant: a disabled tenant's tokens and agents are refused.
func TestDisabledTenant(t *testing.T) {
	f := mustOpen(t)
	f.store.AuthTTL = -1
	claims, _ := f.token(t, f.tenantB, 2, time.Hour)
	_, cred, err := f.store.RegisterAgent(f.ctx, claims, agentapi.HostInfo{Hostname: "b1"})
	if err != nil {
		t.Fatal(err)
	}
	f.client.Tenant.UpdateOneID(f.tenantB).SetDisabled(true).ExecX(viewer.SystemContext(f.ctx))
	if _, err := f.store.AuthenticateAgent(f.ctx, cred); !errors.Is(err, agentapi.ErrUnauthenticated) {
		t.Fatalf("agent of a disabled tenant: %v", err)
	}
	if _, _, err := f.store.RegisterAgent(f.ctx, claims, agentapi.HostInfo{Hostname: "b2"}); !errors.Is(err, agentapi.ErrTokenRevoked) {
		t.Fatalf("token of a disabled tenant: %v", err)
	}
}
