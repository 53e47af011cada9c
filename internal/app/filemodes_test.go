package app_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/ent/recoverypoint"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// assertPrivate walks dir: every directory must be 0700 and no file may
// be readable by group or others. Each of want (paths relative to dir,
// glob patterns) must match at least one file, so that the walk covers
// what it claims to.
func assertPrivate(t *testing.T, dir string, want ...string) {
	t.Helper()
	var bad []string
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a temporary file went away during the walk
			}
			return err
		}
		info, err := d.Info()
		if os.IsNotExist(err) {
			return nil
		} else if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch perm := info.Mode().Perm(); {
		case d.IsDir() && perm != 0o700:
			bad = append(bad, rel+"/ "+perm.String())
		case !d.IsDir() && perm&0o077 != 0:
			bad = append(bad, rel+" "+perm.String())
		case !d.IsDir():
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("under the data directory, open to group or others:\n  %s", strings.Join(bad, "\n  "))
	}
	for _, pat := range want {
		if m, _ := filepath.Glob(filepath.Join(dir, pat)); len(m) == 0 {
			t.Errorf("no file matches %s: the walk did not see what it should check", pat)
		}
	}
	t.Logf("%d files and their directories checked under %s", files, dir)
}

// TestDataDirectoryIsPrivateUnderAnyUmask runs a server in this process
// under umask 000 and a whole sync through its gateway into the local
// cloud: the database, WAL, SHM, keys, target disks, recovery points and
// gateway state are all private, because each is created so, not because
// of a umask.
func TestDataDirectoryIsPrivateUnderAnyUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	w := newSyncWorld(t, 2<<20)
	s, err := engine.NewSyncer(engine.SyncOptions{Source: w.img, DiskID: w.cmd.DiskID, Gateway: w.ts.URL, Credential: w.cmd.Credential,
		BlockSize: 64 << 10, RetryFor: 30 * time.Second, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background()); err != nil {
		t.Fatalf("sync: %v", err)
	}
	sys := viewer.SystemContext(context.Background())
	deadline := time.Now().Add(30 * time.Second)
	for w.ts.App.DB.Client.RecoveryPoint.Query().Where(recoverypoint.HasMigration()).CountX(sys) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sync recorded no recovery point")
		}
		time.Sleep(50 * time.Millisecond) // polling the database with a deadline
	}
	assertPrivate(t, w.ts.App.Config.DataDir, append(sqliteFiles(), "keys/*.key",
		"cloud/disks/*.img", "cloud/meta/disks/*", "cloud/meta/points/*", "gateway/credential.key", "gateway/state/*.manifest", "gateway/state/*.checkpoint")...)
}

// TestServeAndMigrateLeaveAPrivateDataDirectory runs the real binaries,
// started from a process whose umask is 000: `ferry migrate` creates the
// database, `ferry serve` runs on it and takes a sign-in (a write through
// the WAL), and an upgrade from a 0755/0644 installation is tightened.
func TestServeAndMigrateLeaveAPrivateDataDirectory(t *testing.T) {
	bin := mustBuildFerry(t)
	data := filepath.Join(t.TempDir(), "var")
	old := syscall.Umask(0) // the children inherit it
	migrate := exec.Command(bin, "migrate", "--data-dir", data)
	migrate.Env = append(os.Environ(), "FERRY_DATABASE_URL="+databaseFor(t, data))
	out, err := migrate.CombinedOutput()
	if err != nil {
		syscall.Umask(old)
		t.Fatalf("ferry migrate: %v\n%s", err, out)
	}
	// An older installation left these open: serve must close them.
	os.Chmod(data, 0o755)
	if len(sqliteFiles()) > 0 {
		os.Chmod(filepath.Join(data, "ferry.db"), 0o644)
	}
	sp := startServe(t, bin, data)
	syscall.Umask(old)
	sp.login(t, "admin@example.com", adminPassword)
	assertPrivate(t, data, append(sqliteFiles(), "keys/secrets.key", "keys/hmac.key", "cloud/owner.lock", "gateway/credential.key")...)
}

// sqliteFiles are the database's files in the data directory: none when
// the suite runs on PostgreSQL.
func sqliteFiles() []string {
	if testDatabase == "postgres" {
		return nil
	}
	return []string{"ferry.db", "ferry.db-wal", "ferry.db-shm"}
}
