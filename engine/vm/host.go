package vm

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure a Host.
type Options struct {
	// Qemu and QemuImg are the programs (default qemu-system-x86_64 and
	// qemu-img from PATH; Debian packages qemu-system-x86, qemu-utils).
	Qemu, QemuImg string
	// Probe is the kernel the accelerator probe boots under KVM. Without
	// one the Host runs TCG and says so: KVM is used only when a probe boot
	// proved it works.
	Probe Probe
	// AccelCache is the file the probe's verdict is kept in (default
	// DIR/accel.json); hosts sharing it probe once.
	AccelCache string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Host runs instances whose state lives under one directory.
type Host struct {
	dir  string
	opts Options
	mu   sync.Mutex
	// children are the qemu processes this process started; their Wait
	// runs in a goroutine (this process reaps them), done closes at exit.
	children map[string]*child
	accelMu  sync.Mutex
}

type child struct {
	pid  int
	done chan struct{}
	exit string
}

// NewHost opens (creating) the state directory dir.
func NewHost(dir string, opts Options) (*Host, error) {
	if opts.Qemu == "" {
		opts.Qemu = "qemu-system-x86_64"
	}
	if opts.QemuImg == "" {
		opts.QemuImg = "qemu-img"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if opts.AccelCache == "" {
		opts.AccelCache = filepath.Join(abs, "accel.json")
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("vm state directory: %w", err)
	}
	return &Host{dir: abs, opts: opts, children: map[string]*child{}}, nil
}

// Dir is the state directory.
func (h *Host) Dir() string { return h.dir }

func (h *Host) instDir(name string) string { return filepath.Join(h.dir, name) }

// Create makes the instance's directory and one qcow2 overlay per disk
// (backed read-only by the disk's image) without starting it, so the
// overlays can be adapted before the first boot.
func (h *Host) Create(ctx context.Context, spec Spec) (*Instance, error) {
	spec.defaults()
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if _, _, err := spec.Network.layout(); err != nil {
		return nil, fmt.Errorf("%w: instance %s: %v", ErrInvalid, spec.Name, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	dir := h.instDir(spec.Name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("create %s: %w", spec.Name, ErrExists)
		}
		return nil, fmt.Errorf("create %s: %w", spec.Name, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	for i := range spec.Disks {
		d := &spec.Disks[i]
		img, err := filepath.Abs(d.Image)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(img); err != nil {
			return nil, fmt.Errorf("create %s: disk %d: %w", spec.Name, i, err)
		}
		d.Image = img
		d.Overlay = filepath.Join(dir, fmt.Sprintf("disk%d.qcow2", i))
		if err := CreateOverlay(ctx, h.opts.QemuImg, d.Image, d.Format, d.Overlay); err != nil {
			return nil, fmt.Errorf("create %s: disk %d: %w", spec.Name, i, err)
		}
	}
	if spec.Network.MAC == "" {
		sum := sha256.Sum256([]byte(h.dir + "/" + spec.Name))
		spec.Network.MAC = fmt.Sprintf("52:54:00:%02x:%02x:%02x", sum[0], sum[1], sum[2])
	}
	in := &Instance{Spec: spec, Dir: dir, State: StateCreated, CreatedAt: h.opts.Now().UTC()}
	if err := h.save(in); err != nil {
		return nil, err
	}
	ok = true
	return in, nil
}

// CreateOverlay writes a qcow2 file at overlay whose backing file is image
// (absolute path, given format). Reads fall through to image; every write
// lands in the overlay, so image stays byte-identical.
func CreateOverlay(ctx context.Context, qemuImg, image, format, overlay string) error {
	if qemuImg == "" {
		qemuImg = "qemu-img"
	}
	if format == "" {
		format = "raw"
	}
	out, err := exec.CommandContext(ctx, qemuImg, "create", "-q", "-f", "qcow2", "-b", image, "-F", format, overlay).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img create overlay of %s: %v: %s", image, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Get returns the instance's current record.
func (h *Host) Get(name string) (*Instance, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("instance %q: %w", name, ErrNotFound)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.load(name)
}

// List returns every instance in the state directory, by name.
func (h *Host) List() ([]*Instance, error) {
	ents, err := os.ReadDir(h.dir)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*Instance
	for _, e := range ents {
		if !e.IsDir() || !nameRE.MatchString(e.Name()) {
			continue
		}
		in, err := h.load(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // a directory being created or deleted
		}
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.Name < out[j].Spec.Name })
	return out, nil
}

// load reads instance.json and brings State up to date with the process
// table. Callers hold h.mu.
func (h *Host) load(name string) (*Instance, error) {
	b, err := os.ReadFile(filepath.Join(h.instDir(name), "instance.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("instance %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var in Instance
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("instance %s: state file: %w", name, err)
	}
	if in.State == StateRunning && !h.alive(&in) {
		in.State = StateStopped
		if c := h.children[name]; c != nil && c.pid == in.PID {
			in.Exit = c.exit
		}
		if in.StoppedAt.IsZero() {
			in.StoppedAt = h.opts.Now().UTC()
		}
		if err := h.save(&in); err != nil {
			return nil, err
		}
	}
	return &in, nil
}

func (h *Host) save(in *Instance) error {
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(in.Dir, ".instance.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(in.Dir, "instance.json"))
}

// alive says whether in's qemu process still runs: the pid exists, is not
// a zombie, and its command line names this instance's QMP socket (so a
// reused pid is not mistaken for it).
func (h *Host) alive(in *Instance) bool {
	if in.PID <= 0 {
		return false
	}
	if c := h.children[in.Spec.Name]; c != nil && c.pid == in.PID {
		select {
		case <-c.done:
			return false
		default:
			return true
		}
	}
	return processAlive(in.PID, in.QMPPath())
}

func processAlive(pid int, mark string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	if i := strings.LastIndexByte(string(stat), ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(cmdline), mark)
}

// Start boots a created or stopped instance and returns once qemu answers
// on its QMP socket. The previous boot's console log is kept as
// console.prev.log.
func (h *Host) Start(ctx context.Context, name string) (*Instance, error) {
	// The accelerator first, outside the lock: a first probe boot takes
	// seconds and must not hold up List or Stop.
	pre, err := h.Get(name)
	if err != nil {
		return nil, err
	}
	accel, reason := pre.Spec.Accel, "requested by the spec"
	if accel == "" {
		if accel, reason, err = h.Accel(ctx); err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	in, err := h.load(name)
	if err != nil {
		return nil, err
	}
	if in.State == StateRunning {
		return nil, fmt.Errorf("start %s: %w (pid %d)", name, ErrRunning, in.PID)
	}
	for _, f := range []string{in.QMPPath(), filepath.Join(in.Dir, "qemu.pid")} {
		os.Remove(f)
	}
	if _, err := os.Stat(in.ConsolePath()); err == nil {
		os.Rename(in.ConsolePath(), filepath.Join(in.Dir, "console.prev.log"))
	}
	os.Remove(in.FirmwarePath())
	// Host ports are picked free and may be taken by the time qemu binds
	// them; qemu then refuses to start and another set is tried.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		fwd, err := pickForwards(in.Spec.Network)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		in.Forwards = fwd
		in.Accel, in.AccelReason = accel, reason
		argv, err := qemuArgs(in)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		argv[0] = h.opts.Qemu
		c, err := h.spawn(ctx, in, argv)
		if err == nil {
			in.State, in.PID, in.Exit = StateRunning, c.pid, ""
			in.StartedAt, in.StoppedAt = h.opts.Now().UTC(), time.Time{}
			h.children[name] = c
			return in, h.save(in)
		}
		lastErr = err
		if !strings.Contains(err.Error(), "host forwarding rule") {
			break
		}
	}
	return nil, fmt.Errorf("start %s: %w", name, lastErr)
}

// spawn runs qemu and waits until its QMP monitor answers a command, or it
// exits (then the error carries its log). A socket that merely accepts is
// not enough: qemu listens on it (and the kernel completes connections)
// before it opens the disks, and a qemu that then fails to open one exits
// an instant later; the monitor answers only once qemu's main loop runs,
// past all of that.
func (h *Host) spawn(ctx context.Context, in *Instance, argv []string) (*child, error) {
	logf, err := os.OpenFile(in.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// Not CommandContext: the instance outlives the request that started
	// it. Its own process group keeps a terminal's ^C from reaching it.
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = in.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", argv[0], err)
	}
	c := &child{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		if err == nil {
			c.exit = "exit status 0"
		} else {
			c.exit = err.Error()
		}
		close(c.done)
	}()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if conn, err := net.Dial("unix", in.QMPPath()); err == nil {
			conn.Close()
			qctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := qmpRun(qctx, in.QMPPath(), "query-status", nil)
			cancel()
			if err == nil {
				return c, nil
			}
		}
		select {
		case <-c.done:
			log, _ := os.ReadFile(in.LogPath())
			return nil, fmt.Errorf("%w (%s): %s", ErrExited, c.exit, strings.TrimSpace(string(log)))
		case <-ctx.Done():
			syscall.Kill(c.pid, syscall.SIGKILL)
			<-c.done
			return nil, ctx.Err()
		case <-deadline.C:
			syscall.Kill(c.pid, syscall.SIGKILL)
			<-c.done
			return nil, fmt.Errorf("qemu did not open its QMP socket within 30 s")
		case <-tick.C:
		}
	}
}

// Boot starts the instance and gives ready at most timeout to say it is up.
// ready's context ends early when qemu exits. When ready fails, time runs
// out or qemu exits, the instance is stopped (its logs kept) and the error
// says why; the instance is returned either way.
func (h *Host) Boot(ctx context.Context, name string, timeout time.Duration, ready func(context.Context, *Instance) error) (*Instance, error) {
	in, err := h.Start(ctx, name)
	if err != nil {
		return nil, err
	}
	bctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("boot of %s not ready within %s", name, timeout))
	defer cancel()
	h.mu.Lock()
	c := h.children[name]
	h.mu.Unlock()
	ectx, ecancel := context.WithCancelCause(bctx)
	defer ecancel(nil)
	go func() {
		select {
		case <-c.done:
			ecancel(fmt.Errorf("%w during boot (%s)", ErrExited, c.exit))
		case <-ectx.Done():
		}
	}()
	rerr := ready(ectx, in)
	if rerr == nil {
		return in, nil
	}
	if cause := context.Cause(ectx); cause != nil && !errors.Is(rerr, cause) {
		rerr = fmt.Errorf("%w: %w", cause, rerr)
	}
	if st, err := h.Stop(context.WithoutCancel(ctx), name, 0); err == nil {
		in = st
	}
	return in, fmt.Errorf("boot %s: %w", name, rerr)
}

// Stop ends the instance: an ACPI power button press first and up to grace
// for the guest to shut down, then QMP quit, then SIGKILL. Stopping a
// stopped instance is not an error.
func (h *Host) Stop(ctx context.Context, name string, grace time.Duration) (*Instance, error) {
	in, err := h.Get(name)
	if err != nil {
		return nil, err
	}
	if in.State != StateRunning {
		return in, nil
	}
	if grace > 0 {
		if _, err := h.QMP(ctx, name, "system_powerdown", nil); err == nil {
			h.waitExit(ctx, in, grace)
		}
	}
	if h.isAlive(in) {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		h.QMP(qctx, name, "quit", nil)
		cancel()
		h.waitExit(ctx, in, 5*time.Second)
	}
	if h.isAlive(in) {
		syscall.Kill(in.PID, syscall.SIGKILL)
		if !h.waitExit(ctx, in, 10*time.Second) {
			return nil, fmt.Errorf("stop %s: pid %d survived SIGKILL", name, in.PID)
		}
	}
	return h.Get(name)
}

func (h *Host) isAlive(in *Instance) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.alive(in)
}

// waitExit polls until in's process is gone or d passes.
func (h *Host) waitExit(ctx context.Context, in *Instance, d time.Duration) bool {
	h.mu.Lock()
	c := h.children[in.Spec.Name]
	h.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	if c != nil && c.pid == in.PID {
		select {
		case <-c.done:
			return true
		case <-t.C:
		case <-ctx.Done():
		}
		return false
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if !processAlive(in.PID, in.QMPPath()) {
			return true
		}
		select {
		case <-tick.C:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// Wait blocks until the instance's qemu ends (a guest shutdown, a panic
// with NoReboot) or ctx ends.
func (h *Host) Wait(ctx context.Context, name string) (*Instance, error) {
	in, err := h.Get(name)
	if err != nil {
		return nil, err
	}
	for in.State == StateRunning {
		if h.waitExit(ctx, in, time.Hour) {
			break
		}
		if ctx.Err() != nil {
			return in, ctx.Err()
		}
	}
	return h.Get(name)
}

// Delete stops the instance (no grace) and removes its directory: overlays,
// logs, sockets. The backing images are untouched.
func (h *Host) Delete(ctx context.Context, name string) error {
	if _, err := h.Stop(ctx, name, 0); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.children, name)
	return os.RemoveAll(h.instDir(name))
}

// layout returns the user network's prefix and its gateway/DHCP/guest
// addresses.
func (n Network) layout() (netip.Prefix, [3]netip.Addr, error) {
	cidr := n.CIDR
	if cidr == "" {
		cidr = "10.0.2.0/24"
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() || p.Bits() > 29 {
		return p, [3]netip.Addr{}, fmt.Errorf("network CIDR %q (want an IPv4 prefix of /29 or wider)", cidr)
	}
	p = p.Masked()
	nth := func(k int) netip.Addr {
		a := p.Addr().As4()
		v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
		v += uint32(k)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	gw, dhcp := nth(2), nth(15)
	if p.Bits() > 27 {
		dhcp = nth(4)
	}
	if n.Gateway != "" {
		if gw, err = netip.ParseAddr(n.Gateway); err != nil || !p.Contains(gw) {
			return p, [3]netip.Addr{}, fmt.Errorf("gateway %q is not an address in %s", n.Gateway, p)
		}
	}
	guest := dhcp
	if n.GuestAddr != "" {
		if guest, err = netip.ParseAddr(n.GuestAddr); err != nil || !p.Contains(guest) {
			return p, [3]netip.Addr{}, fmt.Errorf("guest address %q is not an address in %s", n.GuestAddr, p)
		}
	}
	for _, g := range n.GuestForwards {
		ap, err := netip.ParseAddrPort(g.Guest)
		if err != nil || !p.Contains(ap.Addr()) {
			return p, [3]netip.Addr{}, fmt.Errorf("guest forward %q is not address:port in %s", g.Guest, p)
		}
	}
	return p, [3]netip.Addr{gw, dhcp, guest}, nil
}

func pickForwards(n Network) ([]Forward, error) {
	var out []Forward
	for _, p := range n.Ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a host port for guest port %d: %w", p, err)
		}
		out = append(out, Forward{GuestPort: p, HostAddr: l.Addr().String()})
		l.Close()
	}
	return out, nil
}

// qemuArgs is the command line of in's next boot.
func qemuArgs(in *Instance) ([]string, error) {
	s := in.Spec
	prefix, addrs, err := s.Network.layout()
	if err != nil {
		return nil, err
	}
	a := []string{
		"qemu-system-x86_64",
		"-name", "ferry-" + s.Name,
		"-nodefaults", "-no-user-config",
		"-machine", "pc",
		"-accel", string(in.Accel),
		"-smp", strconv.Itoa(s.CPUs),
		"-m", strconv.Itoa(s.MemoryMiB),
		"-display", "none",
		"-chardev", "file,id=console,path=" + in.ConsolePath(),
		"-serial", "chardev:console",
		"-chardev", "file,id=firmware,path=" + in.FirmwarePath(),
		"-device", "isa-debugcon,iobase=0x402,chardev=firmware",
		"-qmp", "unix:" + in.QMPPath() + ",server=on,wait=off",
		"-pidfile", filepath.Join(in.Dir, "qemu.pid"),
		"-boot", "strict=on",
	}
	if in.Accel == AccelKVM {
		a = append(a, "-cpu", "host")
	}
	if s.NoReboot {
		a = append(a, "-no-reboot")
	}
	for i, d := range s.Disks {
		if strings.ContainsAny(d.Overlay, ",") {
			return nil, fmt.Errorf("overlay path %q contains a comma", d.Overlay)
		}
		a = append(a, "-drive", fmt.Sprintf("file=%s,format=qcow2,if=none,id=disk%d,cache=writeback,discard=unmap", d.Overlay, i),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=disk%d,bootindex=%d", i, i))
	}
	nd := fmt.Sprintf("user,id=net0,net=%s,host=%s,dhcpstart=%s", prefix, addrs[0], addrs[1])
	if s.Network.Mode == NetIsolated {
		nd += ",restrict=on"
	}
	for _, f := range in.Forwards {
		host, port, _ := net.SplitHostPort(f.HostAddr)
		nd += fmt.Sprintf(",hostfwd=tcp:%s:%s-%s:%d", host, port, addrs[2], f.GuestPort)
	}
	for _, g := range s.Network.GuestForwards {
		cmd := shellQuote(g.Command)
		if strings.Contains(cmd, ",") {
			return nil, fmt.Errorf("guest forward command %q contains a comma", cmd)
		}
		nd += fmt.Sprintf(",guestfwd=tcp:%s-cmd:%s", g.Guest, cmd)
	}
	a = append(a, "-netdev", nd,
		// No option ROM: iPXE would try a network boot after a disk that
		// does not boot, hiding the firmware's verdict.
		"-device", "virtio-net-pci,netdev=net0,mac="+s.Network.MAC+",romfile=")
	return a, nil
}

// shellQuote joins argv for qemu's guestfwd cmd:, which runs it with /bin/sh -c.
func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, s := range argv {
		if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@") == "" {
			q[i] = s
		} else {
			q[i] = "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
