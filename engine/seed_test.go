package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSeedThenDelta(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 16<<20, 3)
	seed := filepath.Join(dir, "disk.seed")
	if _, err := ExportSeedFile(context.Background(), src, 64<<10, seed, nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(seed); st.Size() >= 16<<20 {
		t.Errorf("seed of a half-empty 16 MiB disk is %d bytes", st.Size())
	}
	g := startGateway(t, GatewayOptions{Create: true})
	if err := g.ImportSeedFile(context.Background(), "s1", seed); err != nil {
		t.Fatal(err)
	}
	sameContent(t, src, g.diskPath("s1"))

	scribble(t, src, 10, 11)
	opt := g.syncOptions(t, src, "s1")
	p := runSync(t, opt) // no local state: the agent learns the baseline from the gateway
	sameContent(t, src, g.diskPath("s1"))
	if p.BlocksSent == 0 || p.BlocksSent > 10 {
		t.Errorf("sync after seeding sent %d blocks for 10 scattered writes", p.BlocksSent)
	}
}

func TestSeedDamaged(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 4<<20, 5)
	seed := filepath.Join(dir, "disk.seed")
	if _, err := ExportSeedFile(context.Background(), src, 64<<10, seed, nil); err != nil {
		t.Fatal(err)
	}
	m, err := HashFile(context.Background(), src, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	nonZero := 0
	for _, h := range m.Hashes {
		if !h.IsZero() {
			nonZero++
		}
	}
	b, _ := os.ReadFile(seed)
	for name, data := range map[string][]byte{
		"truncated": b[:len(b)/2],
		"flipped":   func() []byte { c := append([]byte(nil), b...); c[len(c)/3] ^= 0x40; return c }(),
	} {
		t.Run(name, func(t *testing.T) {
			g := startGateway(t, GatewayOptions{Create: true})
			p := filepath.Join(dir, name+".seed")
			os.WriteFile(p, data, 0o600)
			err := g.ImportSeedFile(context.Background(), "s2", p)
			if err == nil {
				t.Fatal("import of a damaged seed succeeded")
			}
			if !strings.Contains(err.Error(), "seed") {
				t.Errorf("error %q does not say it is about the seed file", err)
			}
			if !strings.Contains(err.Error(), "kept the") {
				t.Errorf("error %q does not say what the import kept", err)
			}
			// The damaged import is not trusted, but its good blocks are
			// kept: the repairing sync sends only what the seed did not
			// deliver, then proves the whole target.
			pr := runSync(t, g.syncOptions(t, src, "s2"))
			sameContent(t, src, g.diskPath("s2"))
			if pr.BlocksSent == 0 || pr.SentBytes > int64(len(b))*3/4 {
				t.Errorf("repairing sync sent %d blocks, %d bytes, for a %d-byte seed of %d non-zero blocks; want only what the import lost", pr.BlocksSent, pr.SentBytes, len(b), nonZero)
			}
		})
	}
}
