package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Probe is the short boot that decides whether KVM can be used: a Linux
// kernel and initramfs booted directly (-kernel/-initrd) under KVM must print
// Marker on the serial console within Timeout. On the machines Ferry is
// developed on /dev/kvm opens but Linux guests hang or abort under it, so
// "KVM exists" proves nothing; only a guest running its userspace does.
type Probe struct {
	Kernel, Initrd string
	// Append is the kernel command line. The default makes a Debian
	// initramfs give up on a missing root after 1 s and reboot, which
	// -no-reboot turns into qemu's exit.
	Append string
	// Marker is what proves the guest ran userspace. Default: Debian
	// initramfs-tools' own messages after it gave up on the root device.
	Marker *regexp.Regexp
	// Timeout of the probe boot; default 45 s.
	Timeout time.Duration
}

const defaultProbeAppend = "console=ttyS0,115200 root=/dev/ferry-probe-none rootdelay=1 panic=1"

var defaultProbeMarker = regexp.MustCompile(`Gave up waiting for root|Rebooting automatically due to panic=|ALERT! .* does not exist`)

// AccelChoice is the probe's verdict as cached.
type AccelChoice struct {
	Accel    Accel     `json:"accel"`
	Reason   string    `json:"reason"`
	Kernel   string    `json:"kernel,omitempty"`
	ProbedAt time.Time `json:"probed_at"`
}

// Accel returns the accelerator instances start with and why: KVM when a
// probe boot under KVM reached its marker, TCG otherwise. The verdict is
// cached in Options.AccelCache and reused while the probe kernel is the same.
func (h *Host) Accel(ctx context.Context) (Accel, string, error) {
	h.accelMu.Lock()
	defer h.accelMu.Unlock()
	if b, err := os.ReadFile(h.opts.AccelCache); err == nil {
		var c AccelChoice
		if json.Unmarshal(b, &c) == nil && c.Kernel == h.opts.Probe.Kernel && c.Accel != "" {
			return c.Accel, c.Reason + " (cached " + c.ProbedAt.Format(time.RFC3339) + ")", nil
		}
	}
	c := AccelChoice{Accel: AccelTCG, Kernel: h.opts.Probe.Kernel, ProbedAt: h.opts.Now().UTC()}
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		c.Reason = fmt.Sprintf("TCG: /dev/kvm unusable (%v)", err)
	} else {
		f.Close()
		if h.opts.Probe.Kernel == "" {
			c.Reason = "TCG: no probe kernel configured, so KVM was not proven to work"
		} else {
			d, err := h.ProbeBoot(ctx, AccelKVM)
			if ctx.Err() != nil {
				return "", "", ctx.Err()
			}
			if err == nil {
				c.Accel, c.Reason = AccelKVM, fmt.Sprintf("KVM: probe boot reached userspace in %s", d.Round(100*time.Millisecond))
			} else {
				c.Reason = "TCG: KVM probe boot failed: " + err.Error()
			}
		}
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := os.MkdirAll(filepath.Dir(h.opts.AccelCache), 0o700); err == nil {
		tmp := h.opts.AccelCache + ".tmp"
		if os.WriteFile(tmp, b, 0o600) == nil {
			os.Rename(tmp, h.opts.AccelCache)
		}
	}
	return c.Accel, c.Reason, nil
}

// ProbeBoot boots the probe kernel with accel and returns how long it took
// to print the marker.
func (h *Host) ProbeBoot(ctx context.Context, accel Accel) (time.Duration, error) {
	p := h.opts.Probe
	if p.Append == "" {
		p.Append = defaultProbeAppend
	}
	if p.Marker == nil {
		p.Marker = defaultProbeMarker
	}
	if p.Timeout <= 0 {
		p.Timeout = 45 * time.Second
	}
	dir, err := os.MkdirTemp(h.dir, ".probe-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	console := filepath.Join(dir, "console.log")
	argv := []string{h.opts.Qemu, "-nodefaults", "-no-user-config", "-machine", "pc", "-accel", string(accel),
		"-m", "256", "-display", "none", "-no-reboot",
		"-chardev", "file,id=console,path=" + console, "-serial", "chardev:console",
		"-kernel", p.Kernel, "-append", p.Append}
	if p.Initrd != "" {
		argv = append(argv, "-initrd", p.Initrd)
	}
	if accel == AccelKVM {
		argv = append(argv, "-cpu", "host")
	}
	pctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	cmd := exec.CommandContext(pctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case werr := <-exited:
			out, _ := os.ReadFile(console)
			if p.Marker.Match(out) {
				return time.Since(start), nil
			}
			return 0, fmt.Errorf("qemu ended (%v) before the marker; stderr %q, console tail %q", werr, tail(stderr.String(), 300), tail(string(out), 300))
		case <-tick.C:
			out, _ := os.ReadFile(console)
			if p.Marker.Match(out) {
				d := time.Since(start)
				cancel()
				<-exited
				return d, nil
			}
		case <-pctx.Done():
			<-exited
			out, _ := os.ReadFile(console)
			if errors.Is(pctx.Err(), context.DeadlineExceeded) {
				return 0, fmt.Errorf("no marker within %s; console tail %q", p.Timeout, tail(string(out), 300))
			}
			return 0, pctx.Err()
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// ConsoleTail returns the last n bytes of the instance's console log.
func (in *Instance) ConsoleTail(n int) (string, error) {
	f, err := os.Open(in.ConsolePath())
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	off := st.Size() - int64(n)
	if off < 0 {
		off = 0
	}
	b := make([]byte, st.Size()-off)
	_, err = f.ReadAt(b, off)
	return string(b), err
}
