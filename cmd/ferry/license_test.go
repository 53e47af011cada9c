//go:build !agent

package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/license"
)

func TestLicenseInspect(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	b, err := license.Sign(priv, license.Terms{ID: "L-9", Licensee: "Acme", IssuedAt: time.Now(), ExpiresAt: time.Now().AddDate(1, 0, 0),
		Default: license.Quota{MaxHostsUnderMigration: 50}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ferry.license")
	os.WriteFile(path, b, 0o600)
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		rootCmd.SetOut(&out)
		rootCmd.SetErr(&out)
		rootCmd.SetArgs(args)
		err := rootCmd.Execute()
		return out.String(), err
	}
	out, err := run("license", "inspect", path, "--key", base64.StdEncoding.EncodeToString(pub))
	if err != nil || !strings.Contains(out, "licence L-9 for Acme: signature ok, valid") || !strings.Contains(out, "default: hosts under migration 50, concurrent migrations unlimited") {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if _, err := run("license", "inspect", path, "--key", base64.StdEncoding.EncodeToString(other)); err == nil || !strings.Contains(err.Error(), "signed by another issuer") {
		t.Fatalf("inspect with another key: %v", err)
	}
}
