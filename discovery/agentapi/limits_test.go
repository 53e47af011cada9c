package agentapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-migrate/ferry/discovery"
)

// busyStore answers every write as a database held by others would.
type busyStore struct{ *memStore }

func (s busyStore) Heartbeat(context.Context, Agent, Heartbeat) error {
	return fmt.Errorf("heartbeat: %w: database is locked", ErrBusy)
}

// TestInventoryLimits: an inventory over a list limit is refused with 413
// naming the list, read element by element (the server stops at the first
// entry over the limit); one at the limits, and every other field, arrive
// whole.
func TestInventoryLimits(t *testing.T) {
	store := newMemStore()
	_, c := newServer(t, store, Config{})
	reg := register(t, store, c)
	c.Credential = reg.Credential
	ctx := context.Background()
	L := InventoryLimits

	full := discovery.Inventory{Hostname: "web01", Kernel: "6.1", CPU: discovery.CPU{Threads: 8}, OS: discovery.OSRelease{PrettyName: "Debian 12"}}
	full.Software = make([]discovery.Software, L.Software)
	full.Connections = make([]discovery.Connection, L.Connections)
	full.NICs = []discovery.NIC{{Name: "eth0", Addresses: make([]string, L.Addresses)}}
	if err := c.UploadInventory(ctx, full); err != nil {
		t.Fatalf("an inventory at the limits: %v", err)
	}
	store.mu.Lock()
	got := store.inventories[reg.AgentID][0]
	store.mu.Unlock()
	if got.Hostname != "web01" || got.Kernel != "6.1" || got.CPU.Threads != 8 || got.OS.PrettyName != "Debian 12" ||
		len(got.Software) != L.Software || len(got.Connections) != L.Connections || len(got.NICs[0].Addresses) != L.Addresses {
		t.Fatalf("stored inventory lost fields: %s %s %+v %+v, %d software, %d connections", got.Hostname, got.Kernel, got.CPU, got.OS, len(got.Software), len(got.Connections))
	}

	for _, tc := range []struct {
		name string
		inv  func(*discovery.Inventory)
		want string
	}{
		{"software", func(i *discovery.Inventory) { i.Software = make([]discovery.Software, L.Software+1) }, "software has more than 10000"},
		{"block devices", func(i *discovery.Inventory) { i.BlockDevices = make([]discovery.BlockDevice, L.BlockDevices+1) }, "block_devices has more than"},
		{"partitions", func(i *discovery.Inventory) {
			i.BlockDevices = []discovery.BlockDevice{{}, {Partitions: make([]discovery.Partition, L.Partitions+1)}}
		}, "block_devices[1].partitions has more than"},
		{"addresses", func(i *discovery.Inventory) {
			i.NICs = []discovery.NIC{{Addresses: make([]string, L.Addresses+1)}}
		}, "nics[0].addresses has more than"},
		{"connections", func(i *discovery.Inventory) { i.Connections = make([]discovery.Connection, L.Connections+1) }, "connections has more than 50000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := discovery.Inventory{Hostname: "web01"}
			tc.inv(&inv)
			var e *Error
			err := c.UploadInventory(ctx, inv)
			if !errors.As(err, &e) || e.Status != http.StatusRequestEntityTooLarge || e.Code != CodeTooLarge || !strings.Contains(e.Message, tc.want) {
				t.Fatalf("got %v; want 413 saying %q", err, tc.want)
			}
		})
	}
	// A key sent twice counts against the same limit.
	half := make([]string, 0, L.Software/2+1)
	for range L.Software/2 + 1 {
		half = append(half, `{"name":"p"}`)
	}
	list := "[" + strings.Join(half, ",") + "]"
	req, _ := http.NewRequest("POST", c.Server+PathInventory, strings.NewReader(`{"hostname":"h","software":`+list+`,"software":`+list+`}`))
	req.Header.Set("Authorization", "Bearer "+c.Credential)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("software sent twice, %d entries in all: status %d", L.Software+2, resp.StatusCode)
	}
	for _, body := range []string{`[1,2]`, `{"hostname":"h"} {}`, `{"hostname":"h","software":{"a":1}}`, `{"hostname":`} {
		req, _ := http.NewRequest("POST", c.Server+PathInventory, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+c.Credential)
		resp, err := c.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("body %s: status %d, want 400", body, resp.StatusCode)
		}
	}
}

// TestTrimInventory: the agent cuts what the server would refuse and says
// so in the inventory's warnings.
func TestTrimInventory(t *testing.T) {
	L := InventoryLimits
	inv := discovery.Inventory{
		Software:    make([]discovery.Software, L.Software+5),
		Connections: make([]discovery.Connection, L.Connections+1),
		NICs:        []discovery.NIC{{Name: "eth0", Addresses: make([]string, L.Addresses+2)}},
		Warnings:    []string{"not root: no DMI UUID"},
	}
	TrimInventory(&inv)
	if len(inv.Software) != L.Software || len(inv.Connections) != L.Connections || len(inv.NICs[0].Addresses) != L.Addresses {
		t.Fatalf("trimmed to %d software, %d connections, %d addresses", len(inv.Software), len(inv.Connections), len(inv.NICs[0].Addresses))
	}
	want := []string{
		"not root: no DMI UUID",
		"software: 10000 of 10005 entries sent (the server accepts 10000)",
		"nics.eth0.addresses: 256 of 258 entries sent (the server accepts 256)",
		"connections: 50000 of 50001 entries sent (the server accepts 50000)",
	}
	if diff := cmp.Diff(want, inv.Warnings); diff != "" {
		t.Fatalf("warnings (-want +got):\n%s", diff)
	}
}

// TestBusyIsRetryable: a store that cannot write now makes the protocol
// answer 503 with Retry-After, which the agent retries; never 500.
func TestBusyIsRetryable(t *testing.T) {
	store := newMemStore()
	srv, c := newServer(t, busyStore{store}, Config{})
	c.Credential = register(t, store, c).Credential
	_, err := c.Heartbeat(context.Background(), Heartbeat{})
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || e.Code != CodeBusy || !errors.Is(err, ErrBusy) || !Retryable(err) {
		t.Fatalf("busy heartbeat: %v", err)
	}
	req, _ := http.NewRequest("POST", srv.URL+PathHeartbeat, strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+c.Credential)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After = %q", resp.Header.Get("Retry-After"))
	}
}
