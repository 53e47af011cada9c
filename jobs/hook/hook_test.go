package hook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/hookdelivery"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// TestWebhookThatNeverAnswersTimesOut: each attempt ends at the hook's
// timeout, every attempt is logged, and a must-succeed hook reports the
// failure; the migration log hears of it.
func TestWebhookThatNeverAnswersTimesOut(t *testing.T) {
	ctx := context.Background()
	sys := viewer.SystemContext(ctx)
	db, err := database.Open(ctx, filepath.Join(t.TempDir(), "f.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := db.Client
	tn := c.Tenant.Create().SetName("T").SetSlug("t").SaveX(sys)
	h := c.Host.Create().SetTenantID(tn.ID).SetName("db1").SaveX(sys)
	hooks := []any{map[string]any{"name": "dns", "point": "after_cutover", "kind": "webhook", "url": "", "timeoutSeconds": 1, "retries": 1, "mustSucceed": true, "secretSealed": "k"}}
	block := make(chan struct{})
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer func() { close(block); ts.Close() }()
	hooks[0].(map[string]any)["url"] = ts.URL
	mig := c.Migration.Create().SetTenantID(tn.ID).SetHostID(h.ID).SetSettings(map[string]any{"hooks": hooks}).SaveX(sys)
	mig = c.Migration.GetX(sys, mig.ID) // settings as JSON reads them
	r := &Runner{Client: c, HTTP: ts.Client(), Backoff: 10 * time.Millisecond, Open: func(s string, _ int) ([]byte, error) { return []byte(s), nil }}
	var mu sync.Mutex
	var logged []string
	err = r.Run(ctx, ferry.HookAfterCutover, mig, func(level, msg string) { mu.Lock(); logged = append(logged, level+": "+msg); mu.Unlock() })
	if err == nil || !strings.Contains(err.Error(), "timed out after 1s") {
		t.Fatalf("run: %v; want the must-succeed hook timed out", err)
	}
	ds := c.HookDelivery.Query().Where(hookdelivery.MigrationID(mig.ID)).AllX(sys)
	if len(ds) != 2 || ds[0].Ok || !strings.Contains(ds[1].Error, "timed out") || ds[1].Attempt != 2 {
		t.Errorf("deliveries %+v; want two timed-out attempts", ds)
	}
	if len(logged) != 1 || !strings.HasPrefix(logged[0], "error: hook dns (after_cutover) failed and must succeed") {
		t.Errorf("log %q", logged)
	}
	// Hooks of another point do not run.
	if err := r.Run(ctx, ferry.HookBeforeSync, mig, func(string, string) {}); err != nil {
		t.Errorf("before_sync: %v", err)
	}
}

// TestScriptThatNeverExitsIsKilled: the agent script of a before_cutover
// hook goes out with the final pass's command and the agent's command runner
// kills it at its timeout; a must-succeed script's failure stops the pass.
func TestScriptThatNeverExitsIsKilled(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "stop-db"), []byte("#!/bin/sh\necho stopping\nexec sleep 600\n"), 0o755)
	r := &Runner{}
	mig := map[string]any{"hooks": []any{map[string]any{"point": "before_cutover", "kind": "script", "script": "stop-db", "timeoutSeconds": 1, "mustSucceed": true}}}
	b, _ := json.Marshal(mig)
	var settings map[string]any
	json.Unmarshal(b, &settings)
	hs, err := r.Scripts(context.Background(), ferry.HookBeforeCutover, migWith(settings))
	if err != nil || len(hs) != 1 || hs[0].Name != "stop-db" || hs[0].TimeoutSeconds != 1 || !hs[0].MustSucceed {
		t.Fatalf("scripts %+v, %v", hs, err)
	}
	if none, _ := r.Scripts(context.Background(), ferry.HookBeforeSync, migWith(settings)); len(none) != 0 {
		t.Fatalf("before_sync scripts %+v", none)
	}
	results := make(chan engine.CommandResult, 4)
	cr := &engine.CommandRunner{HooksDir: dir, StateDir: t.TempDir(), Report: func(res engine.CommandResult) { results <- res }}
	cmd, _ := json.Marshal(engine.SyncCommand{MigrationID: 1, Pass: 2, Final: true, Before: hs, Disks: []engine.SyncCommandDisk{{Name: "vda"}}})
	cr.Handle(context.Background(), "c1", engine.CommandSync, cmd)
	select {
	case res := <-results:
		if res.OK || !strings.Contains(res.Error, "timed out") || res.Stage != "before_cutover" || !strings.Contains(res.Output, "stopping") {
			t.Fatalf("result %+v; want a timed-out before_cutover hook with its output", res)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the hook was never killed")
	}
	cr.Wait()
	select {
	case res := <-results:
		t.Fatalf("the pass ran after a failed must-succeed hook: %+v", res)
	default:
	}
}

func migWith(settings map[string]any) *ent.Migration { return &ent.Migration{Settings: settings} }
