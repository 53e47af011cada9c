package migration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/quiesce"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/migration"
)

// BenchmarkCutoverDowntime is issue 16's downtime figure: a 2 GiB Debian
// server (the bootable test image) replicated and test-launched, then 1 %
// of its 4 KiB blocks changed (a file of that many random blocks written
// inside its filesystem), then the cutover: the agent quiesces the source
// (a stand-in systemctl stops its service), sends the final delta, the
// final recovery point is taken, and the live copy is made, adapted,
// booted and checked. Metrics: downtime-s (source quiesced → target
// healthy, as recorded on the Launch), final-s (quiesced → the cutover's
// launch recorded: the final delta and its point) and launch-s (that →
// healthy: materialise, adapt, boot, checks). Target: under 5 minutes.
//
//	go test -run '^$' -bench BenchmarkCutoverDowntime -benchtime 1x -timeout 40m ./jobs/migration/
func BenchmarkCutoverDowntime(b *testing.B) {
	for range b.N {
		downtime, final, launched := cutoverOnce(b)
		b.ReportMetric(downtime, "downtime-s")
		b.ReportMetric(final, "final-s")
		b.ReportMetric(launched, "launch-s")
	}
}

func cutoverOnce(b *testing.B) (downtime, final, launched float64) {
	e, _ := bootEnv(b)
	e.work(2)
	id := e.start()
	e.syncing(id)
	e.c.Migration.UpdateOneID(id).SetSettings(map[string]any{"quiesce": map[string]any{"mode": "services", "services": []any{"ferry-http.service"}}}).ExecX(e.sys)
	lid, err := e.l.TestLaunch(e.ctx, id, nil)
	if err != nil {
		b.Fatal(err)
	}
	waitFor(b, "the test launch", bootWait, func() bool {
		s := e.c.Launch.GetX(e.sys, lid).Status
		return s == launch.StatusSucceeded || s == launch.StatusFailed
	})
	if m := e.waitState(id, ferry.MigrationCutoverReady); m.State != ferry.MigrationCutoverReady {
		b.Fatalf("migration %s", m.State)
	}
	blocks := changeOnePercent(b, e.sources["vda"])
	b.Logf("%d blocks of 4 KiB changed since the last pass", blocks)

	fake, _ := stubSystemctl(b, e.dir)
	runner := &engine.CommandRunner{Server: e.ts.URL, StateDir: filepath.Join(e.dir, "agent"), Sources: e.sources, QuiesceTools: quiesce.Tools{Systemctl: fake}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.l.RequestCutover(e.ctx, id); err != nil {
		b.Fatal(err)
	}
	e.finalPass(ctx, runner, id)
	waitFor(b, "the cutover", bootWait, func() bool {
		s := e.mig(id).State
		return s == ferry.MigrationCutOver || s == ferry.MigrationCutoverReady
	})
	cl := e.c.Launch.Query().Where(launch.HasMigrationWith(migration.ID(id)), launch.KindEQ(launch.KindCutover)).OnlyX(e.sys)
	if cl.Status != launch.StatusSucceeded || cl.DowntimeSeconds == nil {
		b.Fatalf("cutover launch %s: %s\n%s", cl.Status, cl.Message, cl.Console)
	}
	downtime = *cl.DowntimeSeconds
	final = cl.CreatedAt.Sub(*cl.QuiescedAt).Seconds()
	launched = cl.HealthyAt.Sub(cl.CreatedAt).Seconds()
	if err := e.l.Rollback(e.ctx, id); err != nil {
		b.Fatal(err)
	}
	e.waitState(id, ferry.MigrationRolledBack)
	return downtime, final, launched
}

// changeOnePercent writes 1 % of the image's 4 KiB blocks as one file of
// random bytes inside its root filesystem (writing raw blocks would corrupt
// the filesystem the cutover then boots) and returns how many.
func changeOnePercent(tb testing.TB, img string) int {
	tb.Helper()
	fi, err := os.Stat(img)
	if err != nil {
		tb.Fatal(err)
	}
	n := int(fi.Size() / 4096 / 100)
	out, err := exec.Command("partx", "-g", "-o", "START", "-n", "1", img).Output()
	if err != nil {
		tb.Fatalf("partx %s: %v", img, err)
	}
	start, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		tb.Fatalf("partx start %q: %v", out, err)
	}
	dev, err := exec.Command("losetup", "-f", "--show", "-o", strconv.FormatInt(start*512, 10), img).Output()
	if err != nil {
		tb.Fatalf("losetup: %v", err)
	}
	loop := strings.TrimSpace(string(dev))
	defer exec.Command("losetup", "-d", loop).Run()
	mnt := tb.TempDir()
	if out, err := exec.Command("mount", loop, mnt).CombinedOutput(); err != nil {
		tb.Fatalf("mount: %v: %s", err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			tb.Errorf("umount: %v: %s", err, out)
		}
	}()
	if out, err := exec.Command("dd", "if=/dev/urandom", "of="+filepath.Join(mnt, "var/tmp/ferry-bench.bin"), "bs=4096", "count="+strconv.Itoa(n), "conv=fsync", "status=none").CombinedOutput(); err != nil {
		tb.Fatalf("dd: %v: %s", err, out)
	}
	return n
}
