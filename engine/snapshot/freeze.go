package snapshot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// FIFREEZE and FITHAW are _IOWR('X', 119, int) and _IOWR('X', 120, int).
const (
	fiFreeze = 0xC0045877
	fiThaw   = 0xC0045878
)

// MountsOf lists the mount points of the filesystems that live on source:
// a block device (or its partitions), or an image file through the loop
// devices backed by it (and their partitions).
func MountsOf(source string) ([]string, error) {
	devs, err := devicesOf(source)
	if err != nil || len(devs) == 0 {
		return nil, err
	}
	want := map[uint64]bool{}
	for _, d := range devs {
		for _, n := range withPartitions(d) {
			if dev, ok := sysDev(n); ok {
				want[dev] = true
			}
		}
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt/x rw,noatime master:1 - ext4 /dev/loop0 rw
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+2 >= len(fields) {
			continue
		}
		mm, point, src := fields[2], unescape(fields[4]), fields[sep+2]
		match := false
		if ma, mi, ok := strings.Cut(mm, ":"); ok {
			a, _ := strconv.ParseUint(ma, 10, 32)
			b, _ := strconv.ParseUint(mi, 10, 32)
			match = want[unix.Mkdev(uint32(a), uint32(b))]
		}
		if !match && strings.HasPrefix(src, "/dev/") {
			// btrfs reports an anonymous device number; its source names
			// the real one.
			var st unix.Stat_t
			if unix.Stat(src, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
				match = want[st.Rdev]
			}
		}
		if match {
			out = append(out, point)
		}
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
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

// devicesOf returns the kernel names of the block devices holding source.
func devicesOf(source string) ([]string, error) {
	st, err := os.Stat(source)
	if err != nil {
		return nil, err
	}
	if st.Mode()&os.ModeDevice != 0 {
		var s unix.Stat_t
		if err := unix.Stat(source, &s); err != nil {
			return nil, err
		}
		name, err := os.Readlink(fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(s.Rdev), unix.Minor(s.Rdev)))
		if err != nil {
			return nil, err
		}
		return []string{filepath.Base(name)}, nil
	}
	abs, err := filepath.EvalSymlinks(source)
	if err != nil {
		return nil, err
	}
	loops, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, l := range loops {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		back := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if back == abs || back == source {
			out = append(out, filepath.Base(filepath.Dir(filepath.Dir(l))))
		}
	}
	return out, nil
}

// withPartitions returns dev and its partitions (sda → sda, sda1, …).
func withPartitions(dev string) []string {
	out := []string{dev}
	ents, _ := os.ReadDir("/sys/class/block/" + dev)
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join("/sys/class/block", dev, e.Name(), "partition")); err == nil {
			out = append(out, e.Name())
		}
	}
	return out
}

func sysDev(name string) (uint64, bool) {
	b, err := os.ReadFile("/sys/class/block/" + name + "/dev")
	if err != nil {
		return 0, false
	}
	ma, mi, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	a, err1 := strconv.ParseUint(ma, 10, 32)
	c, err2 := strconv.ParseUint(mi, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, false
	}
	return unix.Mkdev(uint32(a), uint32(c)), true
}

// sameFS reports whether mount point m is the filesystem of any of paths.
func sameFS(m string, paths []string) bool {
	var a unix.Stat_t
	if unix.Stat(m, &a) != nil {
		return false
	}
	for _, p := range paths {
		var b unix.Stat_t
		if unix.Stat(p, &b) == nil && a.Dev == b.Dev {
			return true
		}
	}
	return false
}

// frozen is a set of frozen filesystems and everything that thaws them.
type frozen struct {
	mounts []string
	fds    []int
	once   sync.Once
	timer  *time.Timer
	dog    *exec.Cmd
	dogIn  io.WriteCloser
}

// freeze freezes the mount points in order. A watchdog process is started
// first: it thaws every one of them when FreezeFor passes or when this
// process dies (its stdin closes), unless told "done" after a normal thaw.
// An in-process timer thaws too, so a stuck Take cannot hold the freeze.
func freeze(ctx context.Context, mounts []string, opt Options) (*frozen, error) {
	fz := &frozen{}
	if len(mounts) == 0 {
		return fz, nil
	}
	secs := strconv.Itoa(max(1, int(opt.FreezeFor.Seconds()+0.5)))
	script := `r=$(timeout "$1" head -n1); shift; [ "$r" = done ] && exit 0; for m in "$@"; do fsfreeze -u "$m" 2>/dev/null; done`
	dog := exec.Command("sh", append([]string{"-c", script, "ferry-thaw-watchdog", secs}, mounts...)...)
	dog.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // outlives a kill of our process group
	in, err := dog.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := dog.Start(); err != nil {
		return nil, fmt.Errorf("start the thaw watchdog: %w", err)
	}
	go dog.Wait() // reap it whenever it ends
	fz.dog, fz.dogIn = dog, in
	fz.timer = time.AfterFunc(opt.FreezeFor, func() {
		opt.Logf("snapshot: filesystems frozen for %s: thawing", opt.FreezeFor)
		fz.thaw()
	})
	for _, m := range mounts {
		if err := ctx.Err(); err != nil {
			fz.thaw()
			return nil, err
		}
		fd, err := unix.Open(m, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			fz.thaw()
			return nil, fmt.Errorf("open %s: %w", m, err)
		}
		if err := ioctl(fd, fiFreeze); err != nil {
			unix.Close(fd)
			fz.thaw()
			if errors.Is(err, unix.EBUSY) {
				return nil, fmt.Errorf("freeze %s: already frozen by someone else", m)
			}
			return nil, fmt.Errorf("freeze %s: %w", m, err)
		}
		fz.mounts = append(fz.mounts, m)
		fz.fds = append(fz.fds, fd)
	}
	return fz, nil
}

// thaw thaws everything frozen (in reverse order) and dismisses the
// watchdog; it runs once, whoever calls it first.
func (fz *frozen) thaw() {
	fz.once.Do(func() {
		if fz.timer != nil {
			fz.timer.Stop()
		}
		for i := len(fz.fds) - 1; i >= 0; i-- {
			ioctl(fz.fds[i], fiThaw) // EINVAL: not frozen (the watchdog was first)
			unix.Close(fz.fds[i])
		}
		if fz.dogIn != nil {
			io.WriteString(fz.dogIn, "done\n")
			fz.dogIn.Close()
		}
	})
}

func ioctl(fd int, req uintptr) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, 0)
	if e != 0 {
		return e
	}
	return nil
}
