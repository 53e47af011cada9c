package engine

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/quiesce"
)

func TestRunnerSourceStaysOnDevicesOrDiskSources(t *testing.T) {
	r := &CommandRunner{}
	cases := []struct {
		disk SyncCommandDisk
		want string
	}{
		{SyncCommandDisk{Name: "sda"}, "/dev/sda"},
		{SyncCommandDisk{Name: "sda", Device: "/dev/nvme0n1"}, "/dev/nvme0n1"},
		{SyncCommandDisk{Name: "sda", Device: "/dev/../etc/shadow"}, "/dev/sda"},
		{SyncCommandDisk{Name: "../etc/shadow"}, ""},
	}
	for _, tc := range cases {
		got, err := r.source(tc.disk)
		if tc.want == "" {
			if err == nil {
				t.Errorf("source(%+v) = %q, want refused", tc.disk, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("source(%+v) = %q, %v; want %q", tc.disk, got, err, tc.want)
		}
	}
	r.Sources = map[string]string{"vda": "/srv/web1.img"}
	if got, err := r.source(SyncCommandDisk{Name: "vda", Device: "/dev/vda"}); err != nil || got != "/srv/web1.img" {
		t.Errorf("with --disk-source: %q, %v", got, err)
	}
	if _, err := r.source(SyncCommandDisk{Name: "sda"}); err == nil {
		t.Error("with --disk-source, a disk not listed must not fall back to /dev")
	}
}

// results collects what a runner reports.
type results struct {
	mu  sync.Mutex
	all []CommandResult
}

func (r *results) add(c CommandResult) { r.mu.Lock(); r.all = append(r.all, c); r.mu.Unlock() }
func (r *results) of(typ string) []CommandResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []CommandResult
	for _, c := range r.all {
		if c.Type == typ {
			out = append(out, c)
		}
	}
	return out
}

func hookScript(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// A cutover's final pass runs its pre-cutover hook first (here the hook
// writes the source, as a service stopping would flush its data): the pass
// that follows carries what the hook wrote, and a duplicate delivery of the
// command neither re-runs the hook nor starts a second sync of the disk.
func TestFinalPassRunsItsHookBeforeTheSync(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 4<<20, 3)
	hooks := filepath.Join(dir, "hooks")
	os.Mkdir(hooks, 0o755)
	hookScript(t, hooks, "quiesce", `echo "stage=$FERRY_STAGE final=$FERRY_FINAL migration=$FERRY_MIGRATION_ID pass=$FERRY_PASS" >> `+filepath.Join(dir, "ran")+`
printf 'flushed by the hook' | dd of=`+src+` bs=1 seek=1048576 conv=notrunc 2>/dev/null
echo quiesced`)
	g := startGateway(t, GatewayOptions{Create: true})
	cred, _ := g.IssueCredential("web-vda", time.Hour)
	var got results
	r := &CommandRunner{StateDir: filepath.Join(dir, "state"), Sources: map[string]string{"vda": src}, HooksDir: hooks, Report: got.add, RetryFor: 10 * time.Second}
	cmd := SyncCommand{MigrationID: 9, Pass: 4, Final: true, Before: []Hook{{Name: "quiesce", MustSucceed: true}},
		Disks: []SyncCommandDisk{{Name: "vda", DiskID: "web-vda", Credential: cred, Gateway: g.URL, Fingerprint: g.Fingerprint}}}
	b, _ := json.Marshal(cmd)
	r.Handle(ctx, "sync-9-4", CommandSync, b)
	r.Handle(ctx, "sync-9-4", CommandSync, b) // redelivered while the hook runs
	r.Wait()
	ran, _ := os.ReadFile(filepath.Join(dir, "ran"))
	if strings.TrimSpace(string(ran)) != "stage=before_cutover final=true migration=9 pass=4" {
		t.Errorf("the hook ran as %q, want once, before the cutover, with the migration's facts", ran)
	}
	sameContent(t, src, g.diskPath("web-vda"))
	hs, ss := got.of(CommandHook), got.of(CommandSync)
	if len(hs) != 1 || !hs[0].OK || strings.TrimSpace(hs[0].Output) != "quiesced" || hs[0].Stage != "before_cutover" {
		t.Errorf("hook results %+v", hs)
	}
	if len(ss) != 1 || !ss[0].OK || ss[0].Disk != "vda" || ss[0].Pass != 4 {
		t.Errorf("sync results %+v, want one pass of vda", ss)
	}
	// Once the hooks of a pass have run, a redelivery goes straight to the
	// disks (which are done): the hook does not run twice.
	r.Handle(ctx, "sync-9-4", CommandSync, b)
	r.Wait()
	if again, _ := os.ReadFile(filepath.Join(dir, "ran")); string(again) != string(ran) {
		t.Errorf("the hook ran again on a redelivery: %q", again)
	}
}

// A must-succeed hook that fails (or outlives its timeout) stops its pass:
// nothing is sent. Hooks the host does not have, names that are not file
// names, and an agent without a hooks directory are refused, never run.
func TestFailingHooksStopThePass(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 2<<20, 5)
	hooks := filepath.Join(dir, "hooks")
	os.Mkdir(hooks, 0o755)
	hookScript(t, hooks, "fails", `echo "cannot stop postgresql" >&2; exit 3`)
	hookScript(t, hooks, "hangs", `sleep 60 & wait`)
	hookScript(t, hooks, "soft-fail", `exit 1`)
	g := startGateway(t, GatewayOptions{Create: true})
	cred, _ := g.IssueCredential("db-vda", time.Hour)
	var got results
	r := &CommandRunner{Sources: map[string]string{"vda": src}, HooksDir: hooks, Report: got.add, RetryFor: 5 * time.Second}
	disk := SyncCommandDisk{Name: "vda", DiskID: "db-vda", Credential: cred, Gateway: g.URL, Fingerprint: g.Fingerprint}
	send := func(pass int, hs ...Hook) {
		b, _ := json.Marshal(SyncCommand{MigrationID: 2, Pass: pass, Final: true, Before: hs, Disks: []SyncCommandDisk{disk}})
		r.Handle(ctx, "c", CommandSync, b)
		r.Wait()
	}
	send(1, Hook{Name: "fails", MustSucceed: true})
	send(2, Hook{Name: "hangs", MustSucceed: true, TimeoutSeconds: 1})
	if _, err := os.Stat(g.diskPath("db-vda")); !os.IsNotExist(err) {
		t.Fatalf("a pass whose must-succeed hook failed reached the gateway: %v", err)
	}
	hs := got.of(CommandHook)
	if len(hs) != 2 || hs[0].OK || hs[0].ExitCode != 3 || !strings.Contains(hs[0].Output, "cannot stop postgresql") ||
		hs[1].OK || !strings.Contains(hs[1].Error, "timed out") {
		t.Fatalf("hook results %+v", hs)
	}
	if len(got.of(CommandSync)) != 0 {
		t.Errorf("sync results after failed hooks: %+v", got.of(CommandSync))
	}
	// A failing hook that need not succeed is reported and the pass goes on.
	send(3, Hook{Name: "soft-fail"})
	if ss := got.of(CommandSync); len(ss) != 1 || !ss[0].OK {
		t.Errorf("the pass after a soft failure: %+v", ss)
	}
	sameContent(t, src, g.diskPath("db-vda"))

	for _, tc := range []struct {
		r    *CommandRunner
		hook string
		want string
	}{
		{r, "missing", "no executable file"},
		{r, "../../bin/sh", "want a file name"},
		{&CommandRunner{}, "fails", "hooks are off"},
	} {
		res := tc.r.runHook(ctx, Hook{Name: tc.hook}, 2, 0, "before_sync", false)
		if res.OK || !strings.Contains(res.Error, tc.want) {
			t.Errorf("hook %q: %+v, want refused with %q", tc.hook, res, tc.want)
		}
	}
	// A hook command on its own (a step's hook, not a pass's).
	var one results
	r2 := &CommandRunner{HooksDir: hooks, Report: one.add}
	b, _ := json.Marshal(HookCommand{MigrationID: 2, Stage: "after_cutover", Hook: Hook{Name: "fails"}})
	r2.Handle(ctx, "hook-1", CommandHook, b)
	r2.Wait()
	if hs := one.of(CommandHook); len(hs) != 1 || hs[0].CommandID != "hook-1" || hs[0].Stage != "after_cutover" || hs[0].ExitCode != 3 {
		t.Errorf("hook command result %+v", hs)
	}
}

// A sync command's disks run as one pass (RunPass): both disks are read
// from one snapshot set, so both gateways record the same account of how
// the pass read its sources, each disk going to the gateway its command
// names; a continuous pass proves only what it wrote, and a cutover's final
// pass asks each gateway for a full verification.
func TestSyncCommandIsOnePassOfItsDisks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srcs := map[string]string{"vda": filepath.Join(dir, "vda.img"), "vdb": filepath.Join(dir, "vdb.img")}
	makeImage(t, srcs["vda"], 3<<20, 7)
	makeImage(t, srcs["vdb"], 2<<20, 8)
	var clock atomic.Int64
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	clock.Store(t0.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	ga := startGateway(t, GatewayOptions{Create: true, Now: now})
	gb := startGateway(t, GatewayOptions{Create: true, Now: now})
	var got results
	r := &CommandRunner{StateDir: filepath.Join(dir, "state"), Sources: srcs, Report: got.add, RetryFor: 10 * time.Second}
	send := func(pass int, final bool) {
		t.Helper()
		ca, _ := ga.IssueCredential("m3-vda", time.Hour)
		cb, _ := gb.IssueCredential("m3-vdb", time.Hour)
		b, _ := json.Marshal(SyncCommand{MigrationID: 3, Pass: pass, Final: final, Disks: []SyncCommandDisk{
			{Name: "vda", DiskID: "m3-vda", Credential: ca, Gateway: ga.URL, Fingerprint: ga.Fingerprint},
			{Name: "vdb", DiskID: "m3-vdb", Credential: cb, Gateway: gb.URL, Fingerprint: gb.Fingerprint}}})
		r.Handle(ctx, "sync-3", CommandSync, b)
		r.Wait()
	}
	check := func(pass int, fullAt time.Time) {
		t.Helper()
		var ss []CommandResult
		for _, res := range got.of(CommandSync) {
			if res.Pass == pass {
				ss = append(ss, res)
			}
		}
		if len(ss) != 2 || !ss[0].OK || !ss[1].OK || ss[0].Disk != "vda" || ss[1].Disk != "vdb" {
			t.Fatalf("pass %d: results %+v, want vda and vdb synced", pass, ss)
		}
		sameContent(t, srcs["vda"], ga.diskPath("m3-vda"))
		sameContent(t, srcs["vdb"], gb.diskPath("m3-vdb"))
		a, _ := ga.Checkpoint("m3-vda")
		b, _ := gb.Checkpoint("m3-vdb")
		if a.Consistency == nil || b.Consistency == nil || *a.Consistency != *b.Consistency || a.Consistency.Note == "live read: no snapshot was asked for" {
			t.Errorf("pass %d: the disks' consistency %+v and %+v, want one snapshot set's account", pass, a.Consistency, b.Consistency)
		}
		want := fullAt.Format(time.RFC3339)
		if a.FullVerified != want || b.FullVerified != want {
			t.Errorf("pass %d: last full verifications %s and %s, want %s", pass, a.FullVerified, b.FullVerified, want)
		}
	}
	send(1, false)
	check(1, t0) // the targets were created empty: as good as verified in full
	clock.Store(t0.Add(time.Hour).UnixNano())
	scribble(t, srcs["vda"], 1, 11)
	send(2, false)
	check(2, t0) // a continuous pass re-reads what it wrote
	clock.Store(t0.Add(2 * time.Hour).UnixNano())
	scribble(t, srcs["vdb"], 1, 12)
	send(3, true)
	check(3, t0.Add(2*time.Hour)) // the final pass: everything
}

// A final pass with a quiesce plan quiesces the source before reading it
// and keeps it quiesced after the pass, until a resume command; a source
// that cannot be quiesced gets no final pass at all.
func TestFinalPassQuiescesUntilResumed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 2<<20, 6)
	calls := filepath.Join(dir, "calls")
	systemctl := filepath.Join(dir, "systemctl")
	// "db" stops; "broken" refuses to.
	if err := os.WriteFile(systemctl, []byte("#!/bin/sh\necho \"$@\" >> "+calls+"\n[ \"$1\" = is-active ] && { echo active; exit 0; }\n[ \"$2\" = broken.service ] && { echo 'Failed to stop broken.service' >&2; exit 1; }\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, GatewayOptions{Create: true})
	cred, _ := g.IssueCredential("q-vda", time.Hour)
	var got results
	r := &CommandRunner{Sources: map[string]string{"vda": src}, Report: got.add, RetryFor: 5 * time.Second,
		QuiesceTools: quiesce.Tools{Systemctl: systemctl}}
	disk := SyncCommandDisk{Name: "vda", DiskID: "q-vda", Credential: cred, Gateway: g.URL, Fingerprint: g.Fingerprint}
	send := func(mig, pass int, unit string) {
		b, _ := json.Marshal(SyncCommand{MigrationID: mig, Pass: pass, Final: true, Disks: []SyncCommandDisk{disk},
			Quiesce: &QuiescePlan{Mode: "services", Services: []string{unit}}})
		r.Handle(ctx, "c", CommandSync, b)
		r.Wait()
	}

	send(7, 1, "broken.service")
	if qs := got.of("quiesce"); len(qs) != 1 || qs[0].OK || !strings.Contains(qs[0].Error, "broken.service") {
		t.Fatalf("quiesce results %+v", qs)
	}
	if len(got.of(CommandSync)) != 0 || r.Quiesced(7) {
		t.Fatalf("a source that could not be quiesced had its final pass: %+v", got.of(CommandSync))
	}

	send(8, 1, "db.service")
	if qs := got.of("quiesce"); len(qs) != 2 || !qs[1].OK || qs[1].QuiescedAt.IsZero() {
		t.Fatalf("quiesce results %+v", qs)
	}
	if ss := got.of(CommandSync); len(ss) != 1 || !ss[0].OK || !ss[0].Started.After(got.of("quiesce")[1].QuiescedAt) {
		t.Fatalf("the final pass (after the quiesce): %+v", ss)
	}
	if !r.Quiesced(8) {
		t.Fatal("the source was not kept quiesced after the final pass")
	}
	b, _ := json.Marshal(ResumeCommand{MigrationID: 8})
	r.Handle(ctx, "r", CommandResume, b)
	r.Handle(ctx, "r2", CommandResume, b) // a second one finds nothing to do
	if rs := got.of(CommandResume); len(rs) != 2 || !rs[0].OK || !rs[1].OK || r.Quiesced(8) {
		t.Fatalf("resume results %+v", rs)
	}
	c, _ := os.ReadFile(calls)
	if n := strings.Count(string(c), "start db.service"); n != 1 || !strings.Contains(string(c), "stop db.service") {
		t.Errorf("systemctl calls:\n%s", c)
	}
}
