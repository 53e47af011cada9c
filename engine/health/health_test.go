package health

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConsole(t *testing.T) {
	for _, tc := range []struct {
		name, console, firmware string
		pass                    bool
		message, evidence       string
	}{
		{name: "login prompt", console: "[    1.0] Linux version 6.1\r\n[\x1b[0;32m  OK  \x1b[0m] Started ferry-http.service\r\n\r\nDebian GNU/Linux 12 ferry-test ttyS0\r\n\r\nferry-test login: ",
			pass: true, message: `"ferry-test login:"`, evidence: "[  OK  ] Started ferry-http.service"},
		{name: "multi-user target", console: "[  OK  ] Reached target multi-user.target - Multi-User System.\n",
			pass: true, message: "multi-user.target"},
		{name: "kernel panic", console: "[    2.1] Run /nonexistent as init process\n[    2.2] VFS: Cannot open root device\n[    2.3] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n[    2.4] CPU: 0 PID: 1\n",
			message: "the kernel panicked", evidence: "VFS: Cannot open root device"},
		{name: "initramfs gave up", console: "Begin: Waiting for root file system ... done.\nGave up waiting for root file system device.  Common problems:\n - Boot args (cat /proc/cmdline)\nALERT!  /dev/sda1 does not exist.  Dropping to a shell!\n(initramfs) ",
			message: "did not find the root device", evidence: "Waiting for root file system"},
		{name: "corrupt root", console: "[    9.85] EXT4-fs error (device vda1): ext4_lookup:1860: inode #2759: comm run-init: deleted inode referenced: 5430\nrun-init: /sbin/init: Structure needs cleaning\nTarget filesystem doesn't have requested /sbin/init.\n",
			message: "no working init", evidence: "deleted inode referenced"},
		{name: "firmware found nothing", console: "", firmware: "Booting from Hard Disk...\nBoot failed: not a bootable disk\n\nNo bootable device.\n",
			message: "no boot loader", evidence: "Booting from Hard Disk"},
		{name: "emergency mode", console: "[FAILED] Failed to mount /data.\nYou are in emergency mode. After logging in, type \"journalctl -xb\"\n",
			message: "emergency mode", evidence: "Failed to mount /data"},
		{name: "silence until the deadline", console: "", message: "the console stayed empty"},
		{name: "booting until the deadline", console: "[    0.0] Linux version 6.1\n[    3.0] still booting\n", message: "no login prompt", evidence: "still booting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Console{Path: writeFile(t, "console.log", tc.console)}
			if tc.firmware != "" {
				c.Also = []string{writeFile(t, "firmware.log", tc.firmware)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
			defer cancel()
			got := c.Check(ctx)
			if got.Passed != tc.pass || !strings.Contains(got.Message, tc.message) || !strings.Contains(got.Evidence, tc.evidence) {
				t.Errorf("got passed=%v message %q evidence %q; want passed=%v, message with %q, evidence with %q",
					got.Passed, got.Message, got.Evidence, tc.pass, tc.message, tc.evidence)
			}
			if strings.Contains(got.Evidence, "\x1b") || strings.Contains(got.Evidence, "\r") {
				t.Errorf("evidence keeps terminal escapes: %q", got.Evidence)
			}
		})
	}
}

// TestConsoleFollowsGrowingLog: the check sees a prompt written after it started.
func TestConsoleFollowsGrowingLog(t *testing.T) {
	p := writeFile(t, "console.log", "[    0.0] Linux version\n")
	go func() {
		time.Sleep(300 * time.Millisecond)
		f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString("ferry-test login: ")
		f.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if got := (Console{Path: p}).Check(ctx); !got.Passed {
		t.Fatalf("got %+v", got)
	}
}

// serve answers each connection with fn.
func serve(t *testing.T, fn func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); fn(c) }()
		}
	}()
	return l.Addr().String()
}

func TestPorts(t *testing.T) {
	banner := serve(t, func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n")) })
	http := serve(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		if l, _ := r.ReadString('\n'); strings.HasPrefix(l, "HEAD / HTTP/1.0") {
			c.Write([]byte("HTTP/1.0 200 OK\r\n\r\n"))
		}
	})
	// What qemu's user network does before the guest listens: accept, then close.
	closing := serve(t, func(c net.Conn) {})
	silent := serve(t, func(c net.Conn) { time.Sleep(10 * time.Second) })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := Ports{Ports: []Port{{22, banner}, {80, http}}}.Check(ctx)
	if !got.Passed || !strings.Contains(got.Evidence, `"SSH-2.0-OpenSSH_9.2"`) || !strings.Contains(got.Evidence, `"HTTP/1.0 200 OK"`) {
		t.Errorf("banner and HTTP: got %+v", got)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	got = Ports{Ports: []Port{{80, http}, {5432, closing}, {9000, silent}}, BannerWait: 200 * time.Millisecond, ReplyWait: 300 * time.Millisecond}.Check(ctx)
	if got.Passed || !strings.Contains(got.Message, "5432, 9000") || !strings.Contains(got.Evidence, "closed before answering") || !strings.Contains(got.Evidence, "no reply") {
		t.Errorf("closing and silent ports: got %+v", got)
	}

	if got := (Ports{}).Check(context.Background()); !got.Passed {
		t.Errorf("no ports: %+v", got)
	}
}

func TestRunStopsAtFirstFailure(t *testing.T) {
	panicked := Console{Path: writeFile(t, "console.log", "Kernel panic - not syncing: Attempted to kill init!\n")}
	calls := 0
	agent := Agent{Phoned: func(ctx context.Context) (string, bool, error) { calls++; return "", false, nil }}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	rep := Run(ctx, panicked, agent)
	if rep.Passed || rep.Checks[0].Passed || rep.Checks[1].Passed {
		t.Fatalf("report %+v", rep)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("the panic did not cancel the agent check")
	}
	if !strings.Contains(rep.Checks[1].Message, "the console check failed first") {
		t.Errorf("agent message %q", rep.Checks[1].Message)
	}
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "health check console failed: the kernel panicked") {
		t.Errorf("Err() = %v", err)
	}

	ok := Agent{Phoned: func(ctx context.Context) (string, bool, error) { return "GET /phone-home?host=ferry-test", true, nil }}
	bad := Agent{Phoned: func(ctx context.Context) (string, bool, error) { return "", false, errors.New("agent store down") }}
	if rep := Run(ctx, ok); !rep.Passed || rep.Checks[0].Evidence != "GET /phone-home?host=ferry-test" || rep.Checks[0].Duration <= 0 {
		t.Errorf("agent ok: %+v", rep)
	}
	if rep := Run(ctx, bad); rep.Passed || !strings.Contains(rep.Checks[0].Message, "agent store down") {
		t.Errorf("agent error: %+v", rep)
	}
}

// FuzzConsole: whatever a guest prints, the check returns without
// panicking and its evidence is valid text without escapes.
func FuzzConsole(f *testing.F) {
	f.Add("ferry-test login: ", "")
	f.Add("Kernel panic - not syncing: x\n\x1b[0m", "Boot failed: not a bootable disk")
	f.Add("\n\n\n(initramfs) ", "\xff\xfe")
	f.Fuzz(func(t *testing.T, console, firmware string) {
		dir := t.TempDir()
		c := Console{Path: filepath.Join(dir, "c"), Also: []string{filepath.Join(dir, "f")}}
		os.WriteFile(c.Path, []byte(console), 0o600)
		os.WriteFile(c.Also[0], []byte(firmware), 0o600)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		got := c.Check(ctx)
		if strings.Contains(got.Evidence, "\x1b[") || len(got.Evidence) > 4000 && !strings.HasPrefix(got.Message, "no login") {
			t.Errorf("evidence %q", got.Evidence)
		}
	})
}
