package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func runSync(t *testing.T, opt SyncOptions) Progress {
	t.Helper()
	s, err := NewSyncer(opt)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Run(context.Background())
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return p
}

func TestFullThenIncremental(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 24<<20+12345, 1)
	g := startGateway(t, GatewayOptions{Create: true})
	opt := g.syncOptions(t, src, "d1")
	opt.StateDir = filepath.Join(dir, "state")

	p := runSync(t, opt)
	sameContent(t, src, g.diskPath("d1"))
	if p.BlocksZero == 0 || p.BlocksSent == 0 {
		t.Errorf("first sync: %+v; want both zero-skipped and sent blocks", p)
	}

	scribble(t, src, 20, 7)
	p2 := runSync(t, opt)
	sameContent(t, src, g.diskPath("d1"))
	if p2.BlocksSent == 0 || p2.BlocksSent > 20 {
		t.Errorf("incremental sync sent %d blocks after 20 scattered writes", p2.BlocksSent)
	}
	if p2.BlocksSame == 0 {
		t.Errorf("incremental sync skipped no unchanged blocks: %+v", p2)
	}

	// Nothing changed: nothing is sent.
	p3 := runSync(t, opt)
	if p3.BlocksSent != 0 || p3.SentBytes != 0 {
		t.Errorf("sync of an unchanged source sent %d blocks, %d bytes", p3.BlocksSent, p3.SentBytes)
	}
}

func TestGatewayCheckpointAPI(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 3<<20, 40)
	g := startGateway(t, GatewayOptions{Create: true})
	if _, err := g.Checkpoint("a1"); err == nil {
		t.Fatal("checkpoint of an unknown disk")
	}
	runSync(t, g.syncOptions(t, src, "a1"))
	cp, err := g.Checkpoint("a1")
	if err != nil {
		t.Fatal(err)
	}
	if !cp.Verified || cp.Size != 3<<20 || cp.Offset != 3<<20 {
		t.Errorf("checkpoint after a completed sync: %+v", cp)
	}
	m, err := g.Manifest("a1")
	if err != nil {
		t.Fatal(err)
	}
	want, err := HashFile(context.Background(), src, m.BlockSize)
	if err != nil {
		t.Fatal(err)
	}
	if d := m.Diff(want); len(d) != 0 {
		t.Errorf("gateway manifest differs from the source at blocks %v", d)
	}
}

func TestManifestFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 5<<20+77, 41)
	m, err := HashFile(context.Background(), src, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "m")
	if err := SaveManifest(p, m); err != nil {
		t.Fatal(err)
	}
	got, err := LoadManifest(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("manifest round trip (-want +got):\n%s", diff)
	}
	b, _ := os.ReadFile(p)
	if len(b) != 32+16*len(m.Hashes)+8 {
		t.Errorf("manifest file is %d bytes for %d blocks", len(b), len(m.Hashes))
	}
	b[40] ^= 1
	os.WriteFile(p, b, 0o600)
	if _, err := LoadManifest(p); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("damaged manifest: %v", err)
	}
	if err := CheckBlockSize(3000, 1<<20); err == nil {
		t.Error("block size 3000 accepted")
	}
	if err := CheckBlockSize(64<<10, 1<<40); err == nil {
		t.Error("a 1 TiB disk in 64 KiB blocks (16 Mi blocks) accepted")
	}
}
