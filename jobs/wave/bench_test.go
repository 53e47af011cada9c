package wave

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent/wave"
	"github.com/ferry-migrate/ferry/ent/wavemember"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/jobs/migration"
)

// BenchmarkTick200 is one tick of a running wave of 200 hosts, every one
// cutover-ready and waiting for the wave's time (the steady state of a
// wave between its initial copies and its window): what each wave costs
// every Tick. Rows on a real SQLite file; no queue is touched.
func BenchmarkTick200(b *testing.B) {
	ctx := context.Background()
	sys := viewer.SystemContext(ctx)
	db, err := database.Open(ctx, filepath.Join(b.TempDir(), "f.db"), true)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	c := db.Client
	tn := c.Tenant.Create().SetName("T").SetSlug("t").SaveX(sys)
	p := c.Plan.Create().SetTenantID(tn.ID).SetName("p").SaveX(sys)
	at := time.Now().Add(24 * time.Hour)
	w := c.Wave.Create().SetTenantID(tn.ID).SetPlan(p).SetOrdinal(1).SetStatus(wave.StatusReady).SetRunCutoverAt(at).
		SetRunSettings(map[string]any{"parallel": 10}).SaveX(sys)
	for i := 0; i < 200; i++ {
		h := c.Host.Create().SetTenantID(tn.ID).SetName(fmt.Sprintf("h%03d", i)).SaveX(sys)
		c.Agent.Create().SetTenantID(tn.ID).SetHostID(h.ID).SetCredentialHash([]byte(h.Name)).ExecX(sys)
		m := c.Migration.Create().SetTenantID(tn.ID).SetHostID(h.ID).SetState(ferry.MigrationCutoverReady).SaveX(sys)
		c.Step.Create().SetTenantID(tn.ID).SetMigrationID(m.ID).SetKind(migration.KindSync).SetStatus("waiting").ExecX(sys)
		c.WaveMember.Create().SetTenantID(tn.ID).SetWave(w).SetHost(h).SetMigrationID(m.ID).SetQueuePosition(i + 1).
			SetRunState(wavemember.RunStateStarted).ExecX(sys)
	}
	o := &Orchestrator{Client: c, Migrations: &migration.Lifecycle{Client: c}, Log: slog.New(slog.DiscardHandler)}
	tctx := viewer.TenantContext(ctx, tn.ID)
	if _, err := o.Advance(tctx, w.ID); err != nil { // first tick writes the messages
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := o.Advance(tctx, w.ID); err != nil {
			b.Fatal(err)
		}
	}
}
