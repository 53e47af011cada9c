package quiesce

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// loopFS makes a small ext4 filesystem on a loop device, mounted in a
// temporary directory, gone when the test ends (thawed first, whatever
// happened).
func loopFS(t *testing.T) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs.img")
	if err := os.WriteFile(img, make([]byte, 32<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	loop := strings.TrimSpace(string(out))
	mnt := t.TempDir()
	if out, err := exec.Command("mount", loop, mnt).CombinedOutput(); err != nil {
		exec.Command("losetup", "-d", loop).Run()
		t.Fatalf("mount: %v %s", err, out)
	}
	t.Cleanup(func() {
		exec.Command("fsfreeze", "-u", mnt).Run()
		exec.Command("umount", mnt).Run()
		exec.Command("losetup", "-d", loop).Run()
	})
	return mnt
}

// writeDone starts a write of a new file in dir and returns a channel
// closed when it has reached the disk.
func writeDone(t *testing.T, dir string) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, err := os.Create(filepath.Join(dir, "during-freeze"))
		if err != nil {
			t.Error(err)
			return
		}
		f.WriteString("written")
		f.Sync()
		f.Close()
	}()
	return done
}

func waitClosed(ch chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// TestFreezeBlocksWritesUntilResume: a write to a frozen filesystem waits
// for the thaw; Resume thaws and stops the watchdog process.
func TestFreezeBlocksWritesUntilResume(t *testing.T) {
	a, b := loopFS(t), loopFS(t)
	ctx := context.Background()
	q, err := Quiesce(ctx, Plan{Mode: ModeFreeze, Mounts: []string{a, b}, Watchdog: time.Minute}, Tools{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{b, a}, q.Frozen); d != "" {
		t.Errorf("freeze order (-want +got):\n%s", d)
	}
	done := writeDone(t, a)
	if waitClosed(done, 500*time.Millisecond) {
		t.Fatal("a write to a frozen filesystem completed")
	}
	wdPid := q.watchdog.Process.Pid
	if err := q.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if !waitClosed(done, 30*time.Second) {
		t.Fatal("the write never completed after Resume")
	}
	// The watchdog's session is gone (poll: the kill is asynchronous).
	deadline := time.Now().Add(10 * time.Second)
	for processExists(wdPid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if processExists(wdPid) {
		t.Errorf("watchdog %d still running after Resume", wdPid)
	}
	if err := q.Resume(ctx); err != nil {
		t.Errorf("second resume: %v", err)
	}
}

func processExists(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// TestWatchdogThawsWhenTheAgentIsGone: the freezer forgets to resume (as a
// killed agent would); the watchdog process thaws on its own.
func TestWatchdogThawsWhenTheAgentIsGone(t *testing.T) {
	mnt := loopFS(t)
	q, err := Quiesce(context.Background(), Plan{Mode: ModeFreeze, Mounts: []string{mnt}, Watchdog: time.Second}, Tools{})
	if err != nil {
		t.Fatal(err)
	}
	q.timer.Stop() // only the separate process is left, as after a crash
	done := writeDone(t, mnt)
	if !waitClosed(done, time.Minute) {
		t.Fatal("the watchdog never thawed the filesystem")
	}
}

// TestFreezeFailureUndoes: freezing the second filesystem fails (it is
// not a mount point), so the first is thawed again and an error returned.
func TestFreezeFailureUndoes(t *testing.T) {
	mnt := loopFS(t)
	_, err := Quiesce(context.Background(), Plan{Mode: ModeFreeze, Mounts: []string{"/nonexistent-ferry", mnt}}, Tools{})
	if err == nil || !strings.Contains(err.Error(), "freeze /nonexistent-ferry") {
		t.Fatalf("got %v", err)
	}
	if !waitClosed(writeDone(t, mnt), 30*time.Second) {
		t.Fatal("the first filesystem stayed frozen")
	}
}

// fakeSystemctl stands in for systemctl, which needs a running systemd
// (there is none in this container; the launch tests exercise the real
// one inside the guest). It keeps unit states in files and logs each call.
func fakeSystemctl(t *testing.T, active ...string) (Tools, func() []string) {
	dir := t.TempDir()
	for _, u := range active {
		os.WriteFile(filepath.Join(dir, u+".active"), nil, 0o600)
	}
	script := `#!/bin/sh
d=` + dir + `
echo "$*" >> $d/log
case $1 in
is-active) [ -e "$d/$3.active" ] ;;
stop) [ "$2" = broken.service ] && { echo "Job for $2 failed" >&2; exit 1; }; rm -f "$d/$2.active" ;;
start) touch "$d/$2.active" ;;
poweroff) exit 0 ;;
esac
`
	p := filepath.Join(dir, "systemctl")
	os.WriteFile(p, []byte(script), 0o755)
	return Tools{Systemctl: p}, func() []string {
		b, _ := os.ReadFile(filepath.Join(dir, "log"))
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
}

func TestStopServices(t *testing.T) {
	tools, calls := fakeSystemctl(t, "nginx.service", "postgresql.service")
	ctx := context.Background()
	q, err := Quiesce(ctx, Plan{Mode: ModeServices, Services: []string{"nginx.service", "cron.service", "postgresql.service"}}, tools)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"nginx.service", "postgresql.service"}, q.Stopped); d != "" {
		t.Errorf("stopped (-want +got):\n%s", d)
	}
	if err := q.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"is-active --quiet nginx.service", "stop nginx.service", "is-active --quiet cron.service",
		"is-active --quiet postgresql.service", "stop postgresql.service", "start postgresql.service", "start nginx.service"}
	if d := cmp.Diff(want, calls()); d != "" {
		t.Errorf("systemctl calls (-want +got):\n%s", d)
	}

	// A stop that fails restarts what was already stopped.
	tools, calls = fakeSystemctl(t, "nginx.service", "broken.service")
	_, err = Quiesce(ctx, Plan{Mode: ModeServices, Services: []string{"nginx.service", "broken.service"}}, tools)
	if err == nil || !strings.Contains(err.Error(), "stop broken.service") || !strings.Contains(err.Error(), "Job for broken.service failed") {
		t.Fatalf("got %v", err)
	}
	if got := calls(); got[len(got)-1] != "start nginx.service" {
		t.Errorf("nginx not restarted: %v", got)
	}
}

func TestShutdownAndBadPlans(t *testing.T) {
	tools, calls := fakeSystemctl(t)
	ctx := context.Background()
	q, err := Quiesce(ctx, Plan{Mode: ModeShutdown}, tools)
	if err != nil || q.At.IsZero() {
		t.Fatalf("shutdown: %v", err)
	}
	if got := calls(); len(got) != 1 || got[0] != "poweroff" {
		t.Errorf("calls %v", got)
	}
	if err := q.Resume(ctx); err == nil || !strings.Contains(err.Error(), "power it on") {
		t.Errorf("resume after shutdown: %v", err)
	}
	for _, p := range []Plan{{Mode: "pause"}, {Mode: ModeServices}, {Mode: ModeFreeze}} {
		if _, err := Quiesce(ctx, p, tools); err == nil {
			t.Errorf("plan %+v accepted", p)
		}
	}
}
