package health

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// DefaultReady is what a booted Linux prints on its serial console: a getty
// prompt ("ferry-test login:") or systemd reaching the multi-user target.
var DefaultReady = regexp.MustCompile(`(?m)^\S+ login: ?|Reached target (multi-user\.target|Multi-User System)`)

// Failure is a console pattern that means the boot will not succeed.
type Failure struct {
	Pattern *regexp.Regexp
	// Why is the one-line diagnosis shown to people.
	Why string
}

// DefaultFailures are the ways a Linux boot visibly ends short of
// userspace: the firmware found nothing to boot, GRUB fell to its rescue
// shell, the kernel panicked, the initramfs could not find or mount the root,
// or systemd dropped to emergency mode.
var DefaultFailures = []Failure{
	{regexp.MustCompile(`Boot failed: not a bootable disk|No bootable device`), "the firmware found no boot loader on the disk"},
	{regexp.MustCompile(`grub rescue>|error: (unknown filesystem|no such partition|file .* not found)`), "GRUB could not load its configuration or the kernel"},
	{regexp.MustCompile(`Kernel panic - not syncing[^\r\n]*`), "the kernel panicked"},
	{regexp.MustCompile(`Gave up waiting for root[^\r\n]*|ALERT! [^\r\n]* does not exist`), "the initramfs did not find the root device (missing disk driver or wrong root=)"},
	{regexp.MustCompile(`Target filesystem doesn't have requested \S+|No init found`), "the root filesystem has no working init (corrupt or incomplete root filesystem)"},
	{regexp.MustCompile(`\(initramfs\) ?$|Dropping to a shell|can't access tty; job control turned off`), "the boot stopped in the initramfs shell"},
	{regexp.MustCompile(`You are in emergency mode|Give root password for maintenance|Cannot open access to console`), "systemd dropped to emergency mode (a filesystem in fstab failed)"},
	{regexp.MustCompile(`Timed out waiting for device [^\r\n]*`), "systemd timed out waiting for a device named in fstab"},
}

// Console watches a serial console log (and optionally other logs such as
// the firmware's) until Ready or one of Failures shows up.
type Console struct {
	// Path is the console log, read from the start on every poll (it is
	// small and new for each boot).
	Path string
	// Also are other logs whose failures count (the firmware log).
	Also []string
	// Ready defaults to DefaultReady; Failures to DefaultFailures.
	Ready    *regexp.Regexp
	Failures []Failure
}

// Name implements Checker.
func (c Console) Name() string { return "console" }

// Check implements Checker.
func (c Console) Check(ctx context.Context) Check {
	ready := c.Ready
	if ready == nil {
		ready = DefaultReady
	}
	fails := c.Failures
	if fails == nil {
		fails = DefaultFailures
	}
	var out Check
	var last string
	poll(ctx, func() bool {
		b, err := os.ReadFile(c.Path)
		if err != nil && !os.IsNotExist(err) {
			out = Check{Message: fmt.Sprintf("read console log: %v", err)}
			return true
		}
		text := clean(string(b))
		last = text
		if loc := ready.FindStringIndex(text); loc != nil {
			out = Check{Passed: true, Message: fmt.Sprintf("console reached %q", strings.TrimSpace(text[loc[0]:loc[1]])),
				Evidence: excerpt(text, loc, 8, 2)}
			return true
		}
		logs := []string{text}
		for _, p := range c.Also {
			if b, err := os.ReadFile(p); err == nil {
				logs = append(logs, clean(string(b)))
			}
		}
		for _, l := range logs {
			for _, f := range fails {
				if loc := f.Pattern.FindStringIndex(l); loc != nil {
					out = Check{Message: fmt.Sprintf("%s: %q", f.Why, strings.TrimSpace(l[loc[0]:loc[1]])), Evidence: excerpt(l, loc, 15, 8)}
					return true
				}
			}
		}
		return false
	})
	if out.Message == "" {
		out = Check{Message: fmt.Sprintf("no login prompt or multi-user target on the console (%s)", ctxWhy(ctx)),
			Evidence: lastLines(last, 20)}
		if last == "" {
			out.Message += "; the console stayed empty (no serial console configured, or the boot loader never ran)"
			for _, p := range c.Also {
				if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
					out.Evidence = lastLines(clean(string(b)), 20)
				}
			}
		}
	}
	return out
}

func ctxWhy(ctx context.Context) string {
	if c := context.Cause(ctx); c != nil {
		return c.Error()
	}
	return "stopped"
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>cDEHM78]`)

// clean drops terminal escapes and carriage returns, and makes the text
// valid UTF-8, so excerpts read as text.
func clean(s string) string {
	s = ansi.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "\r", "")
	return strings.ToValidUTF8(s, "?")
}

// excerpt is the line holding loc with up to before lines ahead of it and
// up to after lines behind it, at most 4,000 bytes.
func excerpt(text string, loc []int, before, after int) string {
	lines := strings.Split(text, "\n")
	at, off := 0, 0
	for i, l := range lines {
		if loc[0] < off+len(l)+1 {
			at = i
			break
		}
		off += len(l) + 1
	}
	from, to := max(0, at-before), min(len(lines), at+1+after)
	ex := strings.Trim(strings.Join(lines[from:to], "\n"), "\n")
	if len(ex) > 4000 {
		ex = ex[len(ex)-4000:]
	}
	return ex
}

func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
