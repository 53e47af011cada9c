package engine

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-migrate/ferry/engine/wire"
)

// tenantOptions is syncOptions with a credential of tenant.
func (g *testGateway) tenantOptions(t testing.TB, source, disk, tenant string) SyncOptions {
	opt := g.syncOptions(t, source, disk)
	cred, err := g.IssueTenantCredential(disk, tenant, 3600e9)
	if err != nil {
		t.Fatal(err)
	}
	opt.Credential = cred
	return opt
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDedupAcrossDisks: a clone of a disk the tenant already synced sends
// its own changes, and the blocks it shares are copied at the gateway.
func TestDedupAcrossDisks(t *testing.T) {
	dir := t.TempDir()
	golden := filepath.Join(dir, "golden.img")
	makeImage(t, golden, 16<<20, 61)
	g := startGateway(t, GatewayOptions{Create: true})
	first := runSync(t, g.tenantOptions(t, golden, "c0", "t1"))

	clone := filepath.Join(dir, "clone.img")
	copyFile(t, golden, clone)
	changed := writeAt4K(t, clone, 8, 62)
	opt := g.tenantOptions(t, clone, "c1", "t1")
	p := runSync(t, opt)
	sameContent(t, clone, g.diskPath("c1"))
	t.Logf("golden: %d bytes on the wire; clone with %d changed bytes: %d on the wire, %d blocks copied at the gateway", first.SentBytes, changed, p.SentBytes, p.BlocksCopied)
	if p.BlocksCopied == 0 || p.SentBytes > first.SentBytes/4 {
		t.Errorf("clone sync: %+v; want most blocks copied at the gateway", p)
	}
}

// TestDedupTenantIsolation: a tenant cannot learn whether another tenant
// holds a block. Its queries are answered from its own table only (the
// other tenant's table is never consulted, so neither the answer nor the
// work behind it can depend on it), a block only the other tenant holds is
// answered exactly like a block nobody holds, and a copy frame naming it is
// refused like any unknown block.
func TestDedupTenantIsolation(t *testing.T) {
	dir := t.TempDir()
	golden := filepath.Join(dir, "golden.img")
	makeImage(t, golden, 8<<20, 63)
	g := startGateway(t, GatewayOptions{Create: true})
	runSync(t, g.tenantOptions(t, golden, "b0", "tenant-b"))
	m, err := HashFile(t.Context(), golden, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	// Tenant A has a disk of its own with different content, so that its
	// agent offers hashes at all.
	own := filepath.Join(dir, "own.img")
	makeImage(t, own, 8<<20, 64)
	runSync(t, g.tenantOptions(t, own, "a0", "tenant-a"))

	bTable := g.index.tenant("tenant-b")
	before := bTable.lookups.Load()
	// The raw query: B's hashes and never-seen hashes get the same answer.
	opt := g.tenantOptions(t, own, "a2", "tenant-a")
	s, _ := NewSyncer(opt)
	post := func(op, query string, body []byte) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPost, s.path(op)+query, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+opt.Credential)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, b := post("session", "", []byte(`{"sync_id":"q","size":8388608,"block_size":65536,"protocol":2}`)); code != 200 {
		t.Fatalf("session: %d %s", code, b)
	}
	var bHashes, nobody []wire.Hash
	for i, h := range m.Hashes {
		if !h.IsZero() && len(bHashes) < 64 {
			bHashes = append(bHashes, h)
			nobody = append(nobody, wire.SumData([]byte{byte(i), 1, 2, 3}))
		}
	}
	_, ansB := post("have", "?sync=q", wire.AppendHashes(nil, bHashes))
	_, ansNobody := post("have", "?sync=q", wire.AppendHashes(nil, nobody))
	if !bytes.Equal(ansB, ansNobody) || !bytes.Equal(ansB, make([]byte, (len(bHashes)+7)/8)) {
		t.Errorf("have answers: B's blocks %x, unknown blocks %x; want both all-zero", ansB, ansNobody)
	}
	// A copy frame for a block of B's is refused, and the target untouched.
	var stream bytes.Buffer
	wire.Write(&stream, &wire.Frame{Kind: wire.KindCopy, Offset: 0, Length: 64 << 10, Hash: bHashes[0]})
	wire.WriteEnd(&stream, 1)
	code, b := post("frames", "?sync=q", stream.Bytes())
	if code != 200 || !bytes.Contains(b, []byte(`"rejected":[0]`)) {
		t.Errorf("copy frame naming tenant B's block: HTTP %d %s; want it rejected", code, b)
	}
	if n := bTable.lookups.Load() - before; n != 0 {
		t.Errorf("tenant A's queries consulted tenant B's content index %d times", n)
	}
	// A whole sync of the same content by A copies nothing of B's.
	p := runSync(t, g.tenantOptions(t, golden, "a1", "tenant-a"))
	sameContent(t, golden, g.diskPath("a1"))
	if p.BlocksCopied != 0 {
		t.Errorf("tenant A's sync copied %d blocks that only tenant B holds", p.BlocksCopied)
	}
	if n := bTable.lookups.Load() - before; n != 0 {
		t.Errorf("tenant A's sync consulted tenant B's content index %d times", n)
	}

	// And a credential of another tenant cannot open a session on B's disk.
	cred, _ := g.IssueTenantCredential("b0", "tenant-a", 3600e9)
	opt.Credential, opt.DiskID, opt.Source = cred, "b0", golden
	sb, _ := NewSyncer(opt)
	if _, err := sb.Run(t.Context()); err == nil {
		t.Error("tenant A's credential synced tenant B's disk")
	}
}

// TestDedupSourceCorrupt: the block a dedup hit would copy is damaged on
// the gateway; the copy check catches it and the agent sends the data.
func TestDedupSourceCorrupt(t *testing.T) {
	dir := t.TempDir()
	golden := filepath.Join(dir, "golden.img")
	makeImage(t, golden, 8<<20, 65)
	g := startGateway(t, GatewayOptions{Create: true})
	runSync(t, g.tenantOptions(t, golden, "d0", "t"))
	// Damage every data block of d0's target behind the gateway's back.
	f, _ := os.OpenFile(g.diskPath("d0"), os.O_RDWR, 0)
	m, _ := HashFile(t.Context(), golden, 64<<10)
	damaged := 0
	for i, h := range m.Hashes {
		if !h.IsZero() {
			f.WriteAt([]byte("damaged"), int64(i)*64<<10+100)
			damaged++
		}
	}
	f.Close()
	p := runSync(t, g.tenantOptions(t, golden, "d1", "t"))
	sameContent(t, golden, g.diskPath("d1"))
	if p.BlocksCopied == 0 || p.BlocksResent < int64(damaged) {
		t.Errorf("sync over damaged dedup sources: %+v; want %d copies refused and re-sent", p, damaged)
	}
}
