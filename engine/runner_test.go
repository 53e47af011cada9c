package engine

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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
