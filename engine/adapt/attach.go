package adapt

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A disk of the guest as seen on this host while adapting.
type disk struct {
	path   string // what the caller gave (qcow2 overlay or raw file)
	format string
	view   string // a raw view of it: the file itself, or a FUSE export
	loop   string // /dev/loopN
	parts  []part
}

// part is one partition (or the whole disk when it has no table).
type part struct {
	disk     int
	num      int // 1-based; 0 for a whole disk without a partition table
	dev      string
	fstype   string
	uuid     string
	label    string
	partuuid string
}

// session holds everything attached and mounted for one adaptation, and
// undoes it in reverse order whatever happened.
type session struct {
	ctx   context.Context
	tmp   string
	disks []*disk
	qsd   *exec.Cmd
	qsdCh chan struct{}
	undo  []func() error
	root  string // where the guest's root is mounted
}

func (s *session) push(f func() error) { s.undo = append(s.undo, f) }

// close unmounts, detaches and stops the storage daemon; it runs every undo
// step even when one fails and returns the failures joined.
func (s *session) close() error {
	var errs []error
	for i := len(s.undo) - 1; i >= 0; i-- {
		if err := s.undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.undo = nil
	return errors.Join(errs...)
}

// run is a host command with ctx; its combined output is in the error.
func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// attach gives every disk a raw view (qcow2 through one
// qemu-storage-daemon exporting each overlay as a FUSE file, so writes land
// in the overlay and nothing is copied), a loop device and its partitions.
// There is no nbd module and no udev here: partx adds the partitions and
// missing device nodes are made from sysfs.
func (s *session) attach(paths []string) error {
	var qsdArgs []string
	for i, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		info, err := run(s.ctx, "qemu-img", "info", "--output=json", "-U", abs)
		if err != nil {
			return err
		}
		var meta struct {
			Format      string `json:"format"`
			VirtualSize int64  `json:"virtual-size"`
		}
		if err := json.Unmarshal([]byte(info), &meta); err != nil {
			return fmt.Errorf("qemu-img info %s: %w", abs, err)
		}
		d := &disk{path: abs, format: meta.Format, view: abs}
		switch meta.Format {
		case "raw":
		case "qcow2":
			d.view = filepath.Join(s.tmp, fmt.Sprintf("disk%d.raw", i))
			if err := os.WriteFile(d.view, nil, 0o600); err != nil {
				return err
			}
			qsdArgs = append(qsdArgs,
				"--blockdev", fmt.Sprintf("driver=file,node-name=file%d,filename=%s", i, escapeOpt(abs)),
				"--blockdev", fmt.Sprintf("driver=qcow2,node-name=disk%d,file=file%d", i, i),
				"--export", fmt.Sprintf("type=fuse,id=export%d,node-name=disk%d,mountpoint=%s,writable=on", i, i, escapeOpt(d.view)))
		default:
			return fmt.Errorf("disk %s: format %q (want raw or qcow2)", abs, meta.Format)
		}
		s.disks = append(s.disks, d)
	}
	if len(qsdArgs) > 0 {
		if err := s.startQSD(qsdArgs); err != nil {
			return err
		}
	}
	for i, d := range s.disks {
		out, err := run(s.ctx, "losetup", "-f", "--show", d.view)
		if err != nil {
			return err
		}
		d.loop = strings.TrimSpace(out)
		loop := d.loop
		s.push(func() error {
			exec.Command("partx", "-d", loop).Run()
			if _, err := run(context.Background(), "losetup", "-d", loop); err != nil {
				return err
			}
			return nil
		})
		if err := s.partitions(i, d); err != nil {
			return err
		}
	}
	return nil
}

// escapeOpt doubles commas, qemu's option-value escape.
func escapeOpt(s string) string { return strings.ReplaceAll(s, ",", ",,") }

func (s *session) startQSD(args []string) error {
	pidfile := filepath.Join(s.tmp, "qsd.pid")
	cmd := exec.Command("qemu-storage-daemon", append(args, "--pidfile", pidfile)...)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("qemu-storage-daemon: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.qsd, s.qsdCh = cmd, done
	s.push(func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		// A daemon that died uncleanly leaves its FUSE mounts behind.
		var errs []error
		for _, d := range s.disks {
			if d.view != d.path && mounted(d.view) {
				if err := syscall.Unmount(d.view, syscall.MNT_DETACH); err != nil {
					errs = append(errs, fmt.Errorf("unmount FUSE export %s: %w", d.view, err))
				}
			}
		}
		return errors.Join(errs...)
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		ready := true
		for _, d := range s.disks {
			if d.view != d.path && !mounted(d.view) {
				ready = false
			}
		}
		if ready {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("qemu-storage-daemon exited: %s", strings.TrimSpace(stderr.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("qemu-storage-daemon's FUSE exports not ready within 15 s: %s", stderr.String())
		}
	}
}

// mounted says whether path is a mount point (per /proc/self/mountinfo).
func mounted(path string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == path {
			return true
		}
	}
	return false
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// partitions lists d's partitions through partx and blkid.
func (s *session) partitions(i int, d *disk) error {
	// partx fails on a disk without a partition table; the whole disk is
	// then probed as one filesystem.
	exec.CommandContext(s.ctx, "partx", "-a", d.loop).Run()
	name := filepath.Base(d.loop)
	ents, _ := filepath.Glob(filepath.Join("/sys/block", name, name+"p*"))
	for _, e := range ents {
		num, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(e), name+"p"))
		if err != nil {
			continue
		}
		dev := "/dev/" + filepath.Base(e)
		if err := ensureNode(dev, filepath.Join(e, "dev")); err != nil {
			return err
		}
		if _, err := os.Stat(dev); err == nil {
			devc := dev
			s.push(func() error {
				// Nodes made by hand would outlive the loop device.
				if _, err := os.Stat("/sys/block/" + name + "/" + filepath.Base(devc)); err != nil {
					os.Remove(devc)
				}
				return nil
			})
		}
		d.parts = append(d.parts, probe(s.ctx, i, num, dev))
	}
	if len(d.parts) == 0 {
		d.parts = append(d.parts, probe(s.ctx, i, 0, d.loop))
	}
	return nil
}

// ensureNode makes dev from sysfs's major:minor when devtmpfs did not.
func ensureNode(dev, sysDev string) error {
	if _, err := os.Stat(dev); err == nil {
		return nil
	}
	var b []byte
	var err error
	for i := 0; i < 50; i++ {
		if b, err = os.ReadFile(sysDev); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("partition %s: %w", dev, err)
	}
	if _, err := os.Stat(dev); err == nil { // devtmpfs was just slow
		return nil
	}
	var major, minor uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &major, &minor); err != nil {
		return fmt.Errorf("partition %s: sysfs dev %q", dev, b)
	}
	if err := unix.Mknod(dev, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor))); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("mknod %s: %w", dev, err)
	}
	return nil
}

func probe(ctx context.Context, di, num int, dev string) part {
	p := part{disk: di, num: num, dev: dev}
	out, _ := exec.CommandContext(ctx, "blkid", "-p", "-o", "export", dev).Output()
	for _, l := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		switch k {
		case "TYPE":
			p.fstype = v
		case "UUID":
			p.uuid = v
		case "LABEL":
			p.label = v
		case "PART_ENTRY_UUID":
			p.partuuid = v
		}
	}
	return p
}

// mount mounts dev at dir (made if missing) and pushes its unmount.
func (s *session) mount(dev, dir, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount(dev, dir, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", dev, fstype, dir, err)
	}
	s.push(func() error {
		var err error
		for i := 0; i < 20; i++ {
			// EBUSY right after a chroot command exits is a straggler
			// (a daemon the package scripts started); wait a little.
			if err = syscall.Unmount(dir, 0); err == nil || errors.Is(err, syscall.EINVAL) {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err2 := syscall.Unmount(dir, syscall.MNT_DETACH); err2 != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
		return nil
	})
	return nil
}

// bind binds host directory src onto dst inside the guest root.
func (s *session) bind(src, dst string) error {
	return s.mount(src, dst, "", syscall.MS_BIND, "")
}
