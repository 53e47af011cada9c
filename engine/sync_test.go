package engine

import (
	"context"
	"path/filepath"
	"testing"
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
