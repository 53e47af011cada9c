package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/ferry-migrate/ferry/discovery/agentapi"
	"github.com/ferry-migrate/ferry/ent/agent"
	"github.com/ferry-migrate/ferry/ent/disk"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/software"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// registerAgent registers an agent of c's tenant through the protocol of
// the in-process server.
func (ts *testServer) registerAgent(t *testing.T, c *client, hostname string) (*agentapi.Client, int) {
	t.Helper()
	d := c.mustGQL(createToken, map[string]any{"in": map[string]any{"name": hostname, "maxUses": 1}})
	ac := &agentapi.Client{Server: ts.URL, HTTP: &http.Client{Timeout: time.Minute}}
	reg, err := ac.Register(context.Background(), dig(d, "createRegistrationToken", "token").(string), agentapi.HostInfo{Hostname: hostname})
	if err != nil {
		t.Fatalf("register %s: %v", hostname, err)
	}
	ac.Credential = reg.Credential
	var id int
	fmt.Sscan(reg.AgentID, &id)
	return ac, id
}

// containerInventory is what an agent without root sees in a container:
// no DMI UUID, no MAC, only a name and an address.
func containerInventory(name, ip string) discovery.Inventory {
	return discovery.Inventory{Hostname: name, Kernel: "6.1", Arch: "x86_64", CPU: discovery.CPU{Threads: 2}, MemoryBytes: 4 << 30,
		NICs: []discovery.NIC{{Name: "eth0", Addresses: []string{ip + "/24"}}}}
}

// TestAgentRenamedHost: a host renamed and re-addressed keeps its host row
// (it was "UNIQUE constraint failed: hosts.agent_host" on every inventory
// after the rename); a different machine behind the same agent (another
// BIOS UUID) becomes its own host and the agent moves to it.
func TestAgentRenamedHost(t *testing.T) {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	ac, agentID := ts.registerAgent(t, admin, "app01")
	ctx := context.Background()
	sys := viewer.SystemContext(ctx)
	linked := func() *int {
		a := ts.App.DB.Client.Agent.Query().Where(agent.ID(agentID)).WithHost().OnlyX(sys)
		if a.Edges.Host == nil {
			return nil
		}
		return &a.Edges.Host.ID
	}
	if err := ac.UploadInventory(ctx, containerInventory("app01", "10.0.0.5")); err != nil {
		t.Fatal(err)
	}
	first := linked()
	for i, inv := range []discovery.Inventory{containerInventory("app01-renamed", "10.0.9.9"), containerInventory("app01-renamed", "10.0.9.9")} {
		if err := ac.UploadInventory(ctx, inv); err != nil {
			t.Fatalf("inventory %d after the rename: %v", i+1, err)
		}
	}
	hs := ts.App.DB.Client.Host.Query().AllX(sys)
	if len(hs) != 1 || hs[0].Name != "app01-renamed" || first == nil || *linked() != *first || hs[0].ID != *first {
		t.Fatalf("after the rename: %d hosts %v, agent on %v (was %v)", len(hs), hs, linked(), first)
	}

	// The same agent now reports another machine.
	other := containerInventory("db07", "10.0.3.3")
	other.BIOSUUID = "4c4c4544-0042-3510-8052-b3c04f4d0007"
	if err := ac.UploadInventory(ctx, other); err != nil {
		t.Fatal(err)
	}
	other.BIOSUUID = "4c4c4544-0042-3510-8052-b3c04f4d0008"
	other.Hostname = "db08"
	if err := ac.UploadInventory(ctx, other); err != nil {
		t.Fatalf("a machine with another BIOS UUID: %v", err)
	}
	now := ts.App.DB.Client.Host.GetX(sys, *linked())
	if now.Name != "db08" || ts.App.DB.Client.Host.Query().CountX(sys) != 2 {
		t.Fatalf("agent on %s, %d hosts; want db08 as a host of its own", now.Name, ts.App.DB.Client.Host.Query().CountX(sys))
	}
	if n := ts.App.DB.Client.Host.Query().Where(host.HasAgent()).CountX(sys); n != 1 {
		t.Fatalf("%d hosts hold the agent, want 1", n)
	}
}

// TestAgentManyPackagesAndDisks: more packages and disks than one SQL
// statement can carry are stored (it was "too many SQL variables"), and
// replaced, not added to, by the next inventory; over the list limits the
// inventory is refused with 413 naming the list.
func TestAgentManyPackagesAndDisks(t *testing.T) {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	ac, _ := ts.registerAgent(t, admin, "big01")
	ctx := context.Background()
	sys := viewer.SystemContext(ctx)
	inv := containerInventory("big01", "10.0.0.7")
	for i := range 8000 {
		inv.Software = append(inv.Software, discovery.Software{Name: fmt.Sprintf("pkg-%05d", i), Source: "package"})
	}
	for i := range 1000 {
		inv.BlockDevices = append(inv.BlockDevices, discovery.BlockDevice{Name: fmt.Sprintf("sd%04d", i), SizeBytes: 1 << 30})
	}
	for _, n := range []int{8000, 7000} {
		inv.Software = inv.Software[:n]
		if err := ac.UploadInventory(ctx, inv); err != nil {
			t.Fatalf("inventory with %d packages, 1000 disks: %v", n, err)
		}
		h := ts.App.DB.Client.Host.Query().Where(host.Name("big01")).OnlyX(sys)
		if got := ts.App.DB.Client.Software.Query().Where(software.HasHostWith(host.ID(h.ID))).CountX(sys); got != n {
			t.Fatalf("%d packages stored, want %d", got, n)
		}
		if got := ts.App.DB.Client.Disk.Query().Where(disk.HasHostWith(host.ID(h.ID))).CountX(sys); got != 1000 {
			t.Fatalf("%d disks stored, want 1000", got)
		}
		if h.DiskProvisionedBytes != 1000<<30 {
			t.Fatalf("provisioned %d bytes", h.DiskProvisionedBytes)
		}
	}
	inv.BlockDevices = append(inv.BlockDevices, make([]discovery.BlockDevice, agentapi.InventoryLimits.BlockDevices)...)
	var e *agentapi.Error
	if err := ac.UploadInventory(ctx, inv); !errors.As(err, &e) || e.Status != 413 || !strings.Contains(e.Message, "block_devices has more than 1024") {
		t.Fatalf("inventory over the disk limit: %v", err)
	}
}

// TestUploadMalformedRows: through the upload endpoint, an unterminated
// quote, a bare quote, bytes that are not UTF-8 and a NUL are each
// reported with file, row and column; every other row is stored (the run
// is partial, not succeeded), and the rows add up.
func TestUploadMalformedRows(t *testing.T) {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	dir := t.TempDir()
	csv := "id,name,ip,os,owner\n" +
		"h1,web01,10.0.0.1,Linux,ops\n" +
		"h2,\"web02,10.0.0.2,Linux,ops\n" +
		"h3,web03,10.0.0.3,Linux,ops\n" +
		"h4,web04,10.0.0.4,Li\"nux,ops\n" +
		"h5,web\xff05,10.0.0.5,Linux,ops\n" +
		"h6,web06,10.0.0.6,Linux,o\x00ps\n" +
		"h7,web07,10.0.0.7,Linux,=cmd|' /C calc'!A0\n"
	path := filepath.Join(dir, "hosts.csv")
	os.WriteFile(path, []byte(csv), 0o600)
	status, body := upload(t, admin, "hosts.csv", path)
	var res struct {
		ImportRun                        struct{ Status string }
		Rows, RowsImported, HostsCreated int
		Files                            []struct{ Rows, Accepted, Rejected int }
		Errors                           []struct {
			File, Column, Message string
			Row                   int
		}
	}
	if err := json.Unmarshal(body, &res); err != nil || status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	type rowErr struct {
		Row    int
		Column string
	}
	var got []rowErr
	for _, e := range res.Errors {
		if e.File != "hosts.csv" || e.Message == "" {
			t.Fatalf("error %+v", e)
		}
		got = append(got, rowErr{e.Row, e.Column})
	}
	want := []rowErr{{3, ""}, {5, "os"}, {6, "name"}, {7, "owner"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("errors at %v, want %v: %s", got, want, body)
	}
	f := res.Files[0]
	if res.ImportRun.Status != "partial" || res.HostsCreated != 3 || f.Rows != 7 || f.Accepted != 3 || f.Rejected != 4 || f.Accepted+f.Rejected != f.Rows {
		t.Fatalf("result %+v", res)
	}
	sys := viewer.SystemContext(context.Background())
	names := ts.App.DB.Client.Host.Query().Order(host.ByName()).Select(host.FieldName).StringsX(sys)
	if fmt.Sprint(names) != "[web01 web03 web07]" {
		t.Fatalf("stored hosts %v", names)
	}
	// A formula is stored as the text it is (exports escape it).
	if h := ts.App.DB.Client.Host.Query().Where(host.Name("web07")).OnlyX(sys); h.Owner != "=cmd|' /C calc'!A0" {
		t.Fatalf("owner %q", h.Owner)
	}
}
