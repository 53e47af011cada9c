// Package vmtest gives tests the bootable Debian images that
// scripts/testimage/build.sh builds and caches outside the clone (built on
// first use, under the script's lock, so parallel test packages build once),
// a vm.Host in a temporary directory that is emptied and checked for
// leftovers when the test ends, and the probes those checks use (qemu
// processes, loop devices).
package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/vm"
)

// Variants scripts/testimage/build.sh knows.
const (
	Base         = "base"
	VMware       = "vmware"
	NoBootloader = "nobootloader"
	CorruptRoot  = "corruptroot"
	Panic        = "panic"
)

var (
	mu     sync.Mutex
	images = map[string]string{}
)

// Image returns the cached image of variant, building it when the build
// script changed or it was never built. The image is shared: tests that
// boot it do so through overlays; tests that change it take a Copy.
func Image(tb testing.TB, variant string) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if p, ok := images[variant]; ok {
		return p
	}
	script := filepath.Join(Root(tb), "scripts", "testimage", "build.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, script, variant)
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", script, variant, err, stderr.String())
	}
	p := strings.TrimSpace(string(out))
	if s := stderr.String(); s != "" {
		tb.Logf("%s %s (%s):\n%s", script, variant, time.Since(start).Round(time.Second), s)
	}
	images[variant] = p
	return p
}

// Probe is the accelerator probe over the base image's kernel.
func Probe(tb testing.TB) vm.Probe {
	base := strings.TrimSuffix(Image(tb, Base), ".img")
	return vm.Probe{Kernel: base + ".vmlinuz", Initrd: base + ".initrd"}
}

// Root is the repository root (the directory holding go.mod).
func Root(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("vmtest: no go.mod above the test's directory")
		}
		dir = parent
	}
}

// NewHost returns a Host over a temporary state directory whose accelerator
// verdict is shared by all test packages (the probe boots once per machine
// and image). When the test ends every instance is deleted, and the test
// fails if a qemu process of this Host survives or a file is left in its
// directory.
func NewHost(tb testing.TB) *vm.Host {
	tb.Helper()
	dir, err := os.MkdirTemp("", "ferry-vm-")
	if err != nil {
		tb.Fatal(err)
	}
	// Beside the image, named like it, so the build script's pruning of
	// older images takes it too.
	cache := strings.TrimSuffix(Image(tb, Base), ".img") + ".accel.json"
	h, err := vm.NewHost(dir, vm.Options{Probe: Probe(tb), AccelCache: cache})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ins, err := h.List()
		if err != nil {
			tb.Errorf("list instances: %v", err)
		}
		for _, in := range ins {
			if err := h.Delete(ctx, in.Name()); err != nil {
				tb.Errorf("delete %s: %v", in.Name(), err)
			}
		}
		if pids := QemuProcesses(dir); len(pids) > 0 {
			tb.Errorf("qemu processes left for %s: %v", dir, pids)
		}
		AssertEmptyDir(tb, dir)
		os.RemoveAll(dir)
	})
	return h
}

// AssertEmptyDir fails the test when dir holds anything but the
// accelerator cache (overlays, sockets, logs of a deleted instance).
func AssertEmptyDir(tb testing.TB, dir string) {
	tb.Helper()
	var left []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != dir && fi.Name() != "accel.json" {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		tb.Errorf("left in %s: %v", dir, left)
	}
}

// QemuProcesses lists the pids of live qemu processes whose command line
// mentions mark (a Host's directory), zombies excluded.
func QemuProcesses(mark string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(cmd, []byte("qemu")) || !bytes.Contains(cmd, []byte(mark)) {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// LoopDevices is `losetup -a`, one line per attached loop device.
func LoopDevices(tb testing.TB) []string {
	tb.Helper()
	out, err := exec.Command("losetup", "-a").Output()
	if err != nil {
		tb.Fatalf("losetup -a: %v", err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// Copy makes a sparse copy of src in the test's temporary directory, for
// tests that need an image of their own ("a recovery point").
func Copy(tb testing.TB, src string) string {
	tb.Helper()
	dst := filepath.Join(tb.TempDir(), filepath.Base(src))
	if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		tb.Fatalf("cp %s: %v: %s", src, err, out)
	}
	return dst
}

// SHA256 of a file's bytes, hex.
func SHA256(tb testing.TB, path string) string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Describe is a short text of an instance for failure messages: state,
// exit, the console's and firmware log's tails.
func Describe(in *vm.Instance) string {
	con, _ := in.ConsoleTail(3000)
	fw, _ := os.ReadFile(in.FirmwarePath())
	ql, _ := os.ReadFile(in.LogPath())
	return fmt.Sprintf("instance %s: state %s, exit %q, accel %s\n--- qemu.log\n%s\n--- firmware tail\n%s\n--- console tail\n%s",
		in.Name(), in.State, in.Exit, in.Accel, ql, lastN(string(fw), 600), con)
}

func lastN(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
