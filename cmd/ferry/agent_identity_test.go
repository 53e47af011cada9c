package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/ferry-migrate/ferry/discovery/agentapi"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/agent"
	"github.com/ferry-migrate/ferry/internal/agentstore"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// machine is the inventory one physical machine reports to every agent on
// it: one hostname, machine id, BIOS UUID, MAC and address.
func machine() discovery.Inventory {
	return discovery.Inventory{CollectedAt: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), Hostname: "vm", FQDN: "vm.example.com",
		MachineID: "3d1219c7c4c5404aaa1f6d2a48adfda4", BIOSUUID: "4c4c4544-0042-3510-8052-b3c04f4d3232", Arch: "x86_64",
		NICs:         []discovery.NIC{{Name: "eth0", MAC: "02:fc:00:00:00:01", Up: true, Addresses: []string{"192.0.2.2/24"}}},
		BlockDevices: []discovery.BlockDevice{{Name: "vda", SizeBytes: 4 << 20}}}
}

// registerAll registers one agent per inventory through the agent store
// (the server side of `ferry agent register` and `run`), applying each
// identity as the agent would, and returns the number of hosts stored and
// each agent's host (0 for an agent whose host another agent took over).
func registerAll(t *testing.T, idents []hostIdentity, invs []discovery.Inventory) (int, []int) {
	t.Helper()
	db, err := database.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sys := viewer.SystemContext(context.Background())
	ten := db.Client.Tenant.Create().SetName("A").SetSlug("a").SaveX(sys)
	ctx := viewer.TenantContext(context.Background(), ten.ID)
	exp := time.Now().Add(time.Hour)
	db.Client.RegistrationToken.Create().SetName("t").SetTokenID("tok").SetExpiresAt(exp).SetMaxUses(len(invs)).SaveX(ctx)
	claims := agentapi.Claims{TenantID: strconv.Itoa(ten.ID), TokenID: "tok", ExpiresAt: exp.Unix()}
	st := &agentstore.Store{Client: db.Client}
	agents := make([]agentapi.Agent, len(invs))
	// Two rounds: the second inventory of each agent must leave the hosts
	// where the first put them (no host moving between agents).
	for round := 0; round < 2; round++ {
		for i, inv := range invs {
			if round == 0 {
				reg := inv
				idents[i].inventory(&reg)
				hi := hostInfoOf(reg)
				_, cred, err := st.RegisterAgent(context.Background(), claims, hi)
				if err != nil {
					t.Fatal(err)
				}
				if agents[i], err = st.AuthenticateAgent(context.Background(), cred); err != nil {
					t.Fatal(err)
				}
			}
			got, err := idents[i].wrap(func(context.Context) (discovery.Inventory, error) { return inv, nil })(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got.CollectedAt = got.CollectedAt.Add(time.Duration(round) * time.Hour)
			if err := st.SaveInventory(context.Background(), agents[i], got); err != nil {
				t.Fatal(err)
			}
		}
	}
	hosts := make([]int, len(agents))
	for i, a := range agents {
		id, _ := strconv.Atoi(a.ID)
		h, err := db.Client.Agent.Query().Where(agent.ID(id)).QueryHost().OnlyID(ctx)
		if err != nil && !ent.IsNotFound(err) {
			t.Fatal(err)
		}
		hosts[i] = h
	}
	return db.Client.Host.Query().CountX(ctx), hosts
}

// apart says whether every agent holds a host of its own.
func apart(hosts []int) bool {
	seen := map[int]bool{}
	for _, id := range hosts {
		if id == 0 || seen[id] {
			return false
		}
		seen[id] = true
	}
	return true
}

// TestHostnameOverrideKeepsHostsApart: the host identity an agent reports
// decides whether the control plane sees one host or several
// (discovery.Normalise merges by BIOS UUID, MAC, name, IP).
func TestHostnameOverrideKeepsHostsApart(t *testing.T) {
	// Cloned VMs: their own MACs and addresses, the template's hostname and
	// machine id, no BIOS UUID (unreadable without root).
	clone := func(i int) discovery.Inventory {
		inv := machine()
		inv.BIOSUUID = ""
		inv.NICs = []discovery.NIC{{Name: "eth0", MAC: fmt.Sprintf("52:54:00:00:00:%02x", i+1), Addresses: []string{fmt.Sprintf("10.0.0.%d/24", i+10)}}}
		return inv
	}
	clones := []discovery.Inventory{clone(0), clone(1), clone(2)}
	if n, _ := registerAll(t, make([]hostIdentity, 3), clones); n != 1 {
		t.Fatalf("three clones with one hostname gave %d hosts; this test assumes the name merges them", n)
	}
	named := []hostIdentity{{Hostname: "web-a"}, {Hostname: "web-b"}, {Hostname: "web-c.example.com"}}
	if n, hosts := registerAll(t, named, clones); n != 3 || !apart(hosts) {
		t.Fatalf("three clones with their own --hostname gave %d hosts (by agent %v), want 3 apart", n, hosts)
	}

	// Ten agents on one machine (each standing for a disk image): every
	// hardware id is shared, so a name alone is not enough.
	same := make([]discovery.Inventory, 10)
	byName := make([]hostIdentity, 10)
	bare := make([]hostIdentity, 10)
	for i := range same {
		same[i] = machine()
		byName[i] = hostIdentity{Hostname: fmt.Sprintf("src%02d", i)}
		bare[i] = hostIdentity{Hostname: fmt.Sprintf("src%02d", i), NoHardwareIDs: true}
	}
	if n, _ := registerAll(t, byName, same); n != 1 {
		t.Fatalf("ten agents sharing a BIOS UUID and a MAC gave %d hosts; the UUID should merge them", n)
	}
	if n, hosts := registerAll(t, bare, same); n != 10 || !apart(hosts) {
		t.Fatalf("ten agents with --hostname and --no-hardware-ids gave %d hosts (by agent %v), want 10 apart", n, hosts)
	}
}

func TestHostIdentityFlags(t *testing.T) {
	for _, bad := range []hostIdentity{{Hostname: " web"}, {Hostname: "a b"}, {Hostname: "a/b"}, {NoHardwareIDs: true}} {
		if err := bad.validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	inv := machine()
	hostIdentity{Hostname: "src01", NoHardwareIDs: true}.inventory(&inv)
	if inv.Hostname != "src01" || inv.FQDN != "" || inv.MachineID != "" || inv.BIOSUUID != "" || inv.NICs[0].MAC != "" ||
		inv.NICs[0].Addresses[0] != "192.0.2.2/24" || len(inv.BlockDevices) != 1 {
		t.Fatalf("inventory after the override: %+v", inv)
	}
	if m := machine(); m.NICs[0].MAC == "" {
		t.Fatal("the override changed the collector's NICs in place")
	}
	t.Setenv("FERRY_AGENT_HOSTNAME", "from-env")
	cmd := agentRunCommand()
	if f := cmd.Flags().Lookup("hostname"); f == nil || f.DefValue != "from-env" {
		t.Fatalf("--hostname default %v, want FERRY_AGENT_HOSTNAME", f)
	}
}
