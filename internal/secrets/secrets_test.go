package secrets_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-migrate/ferry/internal/secrets"
)

func TestSealOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "k")
	key, err := secrets.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode().Perm())
	}
	again, _ := secrets.LoadOrCreateKey(path)
	if !bytes.Equal(key, again) {
		t.Fatal("key changed on reload")
	}
	box, _ := secrets.New(key)
	ct := box.Seal([]byte("s3cret"), []byte("row:1"))
	if bytes.Contains(ct, []byte("s3cret")) {
		t.Fatal("plaintext visible")
	}
	if pt, err := box.Open(ct, []byte("row:1")); err != nil || string(pt) != "s3cret" {
		t.Fatalf("open: %q %v", pt, err)
	}
	if _, err := box.Open(ct, []byte("row:2")); err != secrets.ErrCorrupt {
		t.Fatalf("moved to another row: %v", err)
	}
	ct[len(ct)-1] ^= 1
	if _, err := box.Open(ct, []byte("row:1")); err != secrets.ErrCorrupt {
		t.Fatalf("tampered: %v", err)
	}
	if _, err := box.Open([]byte("x"), nil); err != secrets.ErrCorrupt {
		t.Fatalf("short: %v", err)
	}
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := secrets.LoadOrCreateKey(path); err == nil {
		t.Fatal("a corrupted key file was accepted")
	}
}
