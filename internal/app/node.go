package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/cloudaccount"
	entmigration "github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// Migrations on any worker (issue 11). A provider whose state lives on one
// node — the local cloud's directory and the in-process gateway that writes
// it, both held by the process that locked <DataDir>/cloud/owner.lock — has
// its migration steps routed to that node's queues (migration.NodeQueues),
// which only the holder serves: `serve --workers 0` with `ferry worker`s on
// the same data directory no longer leaves local migrations pending behind
// a driver another process owns. Providers whose state is in the database
// and the cloud (Alibaba: records, tickets, ECS) run on any worker.
//
// The node's name is in <DataDir>/cloud/node, written once by the first
// holder, so that every process on the data directory routes alike and a
// restarted holder keeps serving the queues its tasks wait in.

var nodePattern = regexp.MustCompile(`^[a-z0-9]{8,32}$`)

// nodeFile is where the local cloud's node name is kept.
func (a *App) nodeFile() string { return filepath.Join(a.Config.DataDir, "cloud", "node") }

// claimNode returns the node name of the local cloud this process holds,
// writing it on the first start.
func (a *App) claimNode() (string, error) {
	if n, err := readNode(a.nodeFile()); err == nil || !errors.Is(err, os.ErrNotExist) {
		return n, err
	}
	b := make([]byte, 6)
	rand.Read(b)
	n := hex.EncodeToString(b)
	tmp := a.nodeFile() + ".tmp"
	if err := os.WriteFile(tmp, []byte(n+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("node name: %w", err)
	}
	if err := os.Rename(tmp, a.nodeFile()); err != nil {
		return "", fmt.Errorf("node name: %w", err)
	}
	return n, nil
}

func readNode(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	n := strings.TrimSpace(string(b))
	if !nodePattern.MatchString(n) {
		return "", fmt.Errorf("%s: %q is not a node name (8 to 32 lowercase letters and digits)", path, n)
	}
	return n, nil
}

// localNode is the local cloud's node, read once it exists.
type localNode struct {
	mu   sync.Mutex
	name string
}

func (l *localNode) get(path string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.name != "" {
		return l.name, nil
	}
	n, err := readNode(path)
	if errors.Is(err, os.ErrNotExist) {
		// No process has held the local cloud yet: any worker takes the
		// task, and one that cannot open the driver leaves it to be retried.
		return "", nil
	}
	if err != nil {
		return "", err
	}
	l.name = n
	return n, nil
}

// migrationNode is the Lifecycle's Node hook: the local cloud's node for a
// migration on the local provider (no account, or a local one), "" for the
// others.
func (a *App) migrationNode(ctx context.Context, migID int) (string, error) {
	ctx = viewer.SystemContext(ctx)
	acc, err := a.DB.Client.Migration.Query().Where(entmigration.ID(migID)).QueryCloudAccount().
		Select(cloudaccount.FieldProvider).Only(ctx)
	switch {
	case ent.IsNotFound(err):
	case err != nil:
		return "", err
	case acc.Provider != cloudaccount.ProviderLocal:
		return "", nil
	}
	return a.local.get(a.nodeFile())
}
