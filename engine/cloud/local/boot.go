package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

// BootOptions turn on the boot launch check: the machine's disks are booted
// together in qemu-system-x86_64 under TCG (no KVM needed) with throw-away
// overlays (-snapshot), the boot disk first, and the serial console is
// watched for Marker.
type BootOptions struct {
	// Command is the program and arguments; "{disk}" is replaced by the
	// boot disk's image and an argument "{disks}" by every disk's image, one
	// argument each. Default: qemu-system-x86_64 -accel tcg -m 512
	// -nographic -no-reboot -snapshot and one -drive file=…,format=raw,
	// if=virtio per disk (the machine's Shape sets -m and -smp).
	Command []string
	// Marker is what a booted system prints on the serial console.
	// Default: `login:|Welcome to|Reached target`.
	Marker *regexp.Regexp
	// Timeout bounds the boot; default 5 minutes (TCG is slow).
	Timeout time.Duration
}

func (b BootOptions) command(disks []string, shape cloud.Shape) []string {
	if len(b.Command) == 0 {
		mem, cpus := int64(512), 1
		if shape.MemoryMiB > 0 {
			mem = shape.MemoryMiB
		}
		if shape.VCPUs > 0 {
			cpus = shape.VCPUs
		}
		out := []string{"qemu-system-x86_64", "-accel", "tcg", "-m", strconv.FormatInt(mem, 10), "-smp", strconv.Itoa(cpus),
			"-nographic", "-no-reboot", "-snapshot"}
		for _, d := range disks {
			out = append(out, "-drive", "file="+d+",format=raw,if=virtio")
		}
		return out
	}
	var out []string
	for _, a := range b.Command {
		if a == "{disks}" {
			out = append(out, disks...)
			continue
		}
		out = append(out, strings.ReplaceAll(a, "{disk}", disks[0]))
	}
	return out
}

// bootCheck boots the machine's disks (the boot disk first), or reports the
// boot skipped when not configured or the emulator is not installed.
func (d *Driver) bootCheck(ctx context.Context, disks []string, shape cloud.Shape) cloud.Check {
	c := cloud.Check{Name: "boot"}
	if d.boot == nil {
		c.Passed, c.Skipped, c.Message = true, true, "boot check not enabled"
		if d.noBoot != "" {
			c.Message += " (" + d.noBoot + ")"
		}
		return c
	}
	argv := d.boot.command(disks, shape)
	if _, err := exec.LookPath(argv[0]); err != nil {
		c.Passed, c.Skipped, c.Message = true, true, fmt.Sprintf("%s not installed (Debian: qemu-system-x86); boot not tried", argv[0])
		return c
	}
	marker := d.boot.Marker
	if marker == nil {
		marker = regexp.MustCompile(`login:|Welcome to|Reached target`)
	}
	timeout := d.boot.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	found, tail, err := watchConsole(ctx, argv, marker, timeout)
	switch {
	case found != "":
		c.Passed, c.Message = true, fmt.Sprintf("serial console printed %q", found)
	case err != nil:
		c.Message = fmt.Sprintf("%s: %v; last console output: %q", argv[0], err, tail)
	default:
		c.Message = fmt.Sprintf("%s exited without printing %s; last console output: %q", argv[0], marker, tail)
	}
	return c
}

// watchConsole runs argv and reads its stdout line by line until marker
// matches (then kills it), it exits, or timeout passes. It returns the match,
// the last 512 bytes of output, and why it stopped without a match.
func watchConsole(ctx context.Context, argv []string, marker *regexp.Regexp, timeout time.Duration) (found, tail string, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// Its own process group, killed as a whole: a child that inherited the
	// console pipe must not keep us reading after the deadline. Pdeathsig:
	// a worker killed mid-boot must not leave the emulator running (the
	// next Wait boots again).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", "", err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return "", "", err
	}
	var seen strings.Builder
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Split(scanConsole)
	for sc.Scan() {
		line := sc.Text()
		seen.WriteString(line)
		seen.WriteByte('\n')
		if m := marker.FindString(line); m != "" {
			found = m
			cancel()
			break
		}
	}
	werr := cmd.Wait()
	tail = seen.String()
	if len(tail) > 512 {
		tail = tail[len(tail)-512:]
	}
	if found != "" {
		return found, tail, nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "", tail, fmt.Errorf("no boot marker within %s", timeout)
	}
	return "", tail, werr
}

// scanConsole splits on newlines but also yields a partial line ending in
// "login: " or ": " so a prompt without a newline is seen.
func scanConsole(data []byte, atEOF bool) (int, []byte, error) {
	for i, c := range data {
		if c == '\n' {
			return i + 1, []byte(strings.TrimRight(string(data[:i]), "\r")), nil
		}
	}
	if s := string(data); strings.HasSuffix(s, ": ") {
		return len(data), data, nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
