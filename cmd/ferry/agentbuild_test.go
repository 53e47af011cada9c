package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The agent build (`go build -tags agent`, make agent) is what runs on
// customers' source hosts: it must carry no server code, so it stays small
// (≈ 12 MiB RSS for an inventory pass instead of ≈ 80 MiB).
func TestAgentBuildCarriesNoServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "agent", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := string(out)
	for _, banned := range []string{
		"github.com/ferry-migrate/ferry/ent\n",
		"github.com/ferry-migrate/ferry/graph\n",
		"github.com/ferry-migrate/ferry/internal/app\n",
		"github.com/ferry-migrate/ferry/frontend\n",
		"github.com/99designs/gqlgen/graphql\n",
		"github.com/hibiken/asynq\n",
		"github.com/mattn/go-sqlite3\n",
		"github.com/vmware/govmomi\n",
	} {
		if strings.Contains(deps, banned) {
			t.Errorf("the agent build imports %s", strings.TrimSpace(banned))
		}
	}
	for _, needed := range []string{"github.com/ferry-migrate/ferry/discovery/collect\n", "github.com/ferry-migrate/ferry/engine\n"} {
		if !strings.Contains(deps, needed) {
			t.Errorf("the agent build lacks %s", strings.TrimSpace(needed))
		}
	}
}
