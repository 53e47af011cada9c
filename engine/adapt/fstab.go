package adapt

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// devName matches the kernel names a source's disks had: SCSI/SATA (sdXN,
// what VMware's pvscsi and LSI controllers and Hyper-V give), IDE (hdXN),
// virtio (vdXN), Xen (xvdXN) and NVMe (nvmeKn1pN).
var devName = regexp.MustCompile(`^/dev/(?:(?:sd|hd|vd|xvd)([a-z]+)(\d*)|nvme(\d+)n1(?:p(\d+))?)$`)

// diskIndex turns a device name into (disk index, partition number): sda1 →
// (0, 1), sdb → (1, 0), nvme1n1p2 → (1, 2). Disks are in the order the
// launch attaches them.
func diskIndex(dev string) (int, int, bool) {
	m := devName.FindStringSubmatch(dev)
	if m == nil {
		return 0, 0, false
	}
	if m[1] != "" {
		idx := 0
		for _, c := range m[1] {
			idx = idx*26 + int(c-'a') + 1
		}
		n, _ := strconv.Atoi(m[2])
		return idx - 1, n, true
	}
	d, _ := strconv.Atoi(m[3])
	n, _ := strconv.Atoi(m[4])
	return d, n, true
}

// resolver answers what a device spec of the source names on the launched
// disks.
type resolver struct{ parts []part }

// find returns the partition a spec (/dev/sda1, UUID=…, LABEL=…,
// PARTUUID=…, /dev/disk/by-uuid/…) names, if it is on the launched disks.
func (r resolver) find(spec string) (part, bool) {
	key, val, _ := strings.Cut(spec, "=")
	switch {
	case key == "UUID" || strings.HasPrefix(spec, "/dev/disk/by-uuid/"):
		if key != "UUID" {
			val = strings.TrimPrefix(spec, "/dev/disk/by-uuid/")
		}
		return r.match(func(p part) bool { return strings.EqualFold(p.uuid, strings.Trim(val, `"`)) })
	case key == "LABEL" || strings.HasPrefix(spec, "/dev/disk/by-label/"):
		if key != "LABEL" {
			val = strings.TrimPrefix(spec, "/dev/disk/by-label/")
		}
		return r.match(func(p part) bool { return p.label == strings.Trim(val, `"`) })
	case key == "PARTUUID" || strings.HasPrefix(spec, "/dev/disk/by-partuuid/"):
		if key != "PARTUUID" {
			val = strings.TrimPrefix(spec, "/dev/disk/by-partuuid/")
		}
		return r.match(func(p part) bool { return strings.EqualFold(p.partuuid, strings.Trim(val, `"`)) })
	}
	d, n, ok := diskIndex(spec)
	if !ok {
		return part{}, false
	}
	return r.match(func(p part) bool { return p.disk == d && p.num == n })
}

func (r resolver) match(f func(part) bool) (part, bool) {
	for _, p := range r.parts {
		if f(p) {
			return p, true
		}
	}
	return part{}, false
}

// byDevice says whether spec names a device by kernel name (which changes
// when the controller does) rather than by a stable id.
func byDevice(spec string) bool {
	_, _, ok := diskIndex(spec)
	return ok
}

// rewriteFstab gives every fstab entry naming a disk by kernel name its
// UUID instead, and marks entries whose device is not on the launched disks
// nofail so the boot does not stop waiting for them. Layout and comments
// are kept. notes says what was left and why.
func rewriteFstab(text string, r resolver) (out string, notes []string, err error) {
	lines := strings.SplitAfter(text, "\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		spec, mnt := f[0], f[1]
		if spec == "proc" || spec == "tmpfs" || spec == "sysfs" || spec == "devpts" || spec == "none" ||
			strings.Contains(spec, ":") || strings.HasPrefix(spec, "//") {
			continue // pseudo and network filesystems
		}
		if strings.HasPrefix(spec, "/dev/mapper/") || strings.Count(spec, "/") == 3 && strings.HasPrefix(spec, "/dev/") && !strings.HasPrefix(spec, "/dev/disk/") {
			return "", nil, fmt.Errorf("line %d: %s on %s is an LVM or device-mapper volume; adapting those needs device-mapper, which this host lacks", i+1, spec, mnt)
		}
		p, found := r.find(spec)
		switch {
		case found && byDevice(spec):
			if p.uuid == "" {
				return "", nil, fmt.Errorf("line %d: %s (%s) has no filesystem UUID", i+1, spec, mnt)
			}
			lines[i] = strings.Replace(l, spec, "UUID="+p.uuid, 1)
		case !found && mnt != "/":
			if len(f) >= 4 && !strings.Contains(f[3], "nofail") {
				lines[i] = replaceField(l, 3, f[3]+",nofail,x-systemd.device-timeout=10s")
				notes = append(notes, fmt.Sprintf("%s (%s) is not on the launched disks: marked nofail", spec, mnt))
			} else if len(f) < 4 {
				notes = append(notes, fmt.Sprintf("%s (%s) is not on the launched disks and has no options field to mark nofail", spec, mnt))
			}
		case !found:
			return "", nil, fmt.Errorf("line %d: the root filesystem %s is not on the launched disks", i+1, spec)
		}
	}
	return strings.Join(lines, ""), notes, nil
}

// replaceField replaces the n-th whitespace-separated field of line.
func replaceField(line string, n int, val string) string {
	idx, field, in := 0, -1, false
	for i, c := range line {
		space := c == ' ' || c == '\t' || c == '\n'
		if !space && !in {
			field++
			in = true
			idx = i
		}
		if space && in {
			in = false
			if field == n {
				return line[:idx] + val + line[i:]
			}
		}
	}
	if in && field == n {
		return line[:idx] + val
	}
	return line
}

// kernelArg matches root= and resume= naming a device by kernel name.
var kernelArg = regexp.MustCompile(`\b(root|resume)=(/dev/[a-z0-9]+)`)

// rewriteCmdline replaces root=/dev/sdXN and resume=/dev/sdXN in text (a
// GRUB config, a boot loader entry) with UUID= forms, and adds the kernel
// arguments in add to every kernel command line that lacks them. isCmdline
// says which lines are kernel command lines.
func rewriteCmdline(text string, r resolver, isCmdline func(line string) bool, add []string) (string, error) {
	lines := strings.SplitAfter(text, "\n")
	for i, l := range lines {
		if !isCmdline(l) {
			continue
		}
		var ferr error
		l = kernelArg.ReplaceAllStringFunc(l, func(m string) string {
			sub := kernelArg.FindStringSubmatch(m)
			p, ok := r.find(sub[2])
			if !ok || p.uuid == "" {
				if sub[1] == "root" {
					ferr = fmt.Errorf("line %d: root=%s is not a filesystem on the launched disks", i+1, sub[2])
				}
				return m
			}
			return sub[1] + "=UUID=" + p.uuid
		})
		if ferr != nil {
			return "", ferr
		}
		for _, a := range add {
			name, _, _ := strings.Cut(a, "=")
			if hasArg(l, a, name) {
				continue
			}
			l = appendArg(l, a)
		}
		lines[i] = l
	}
	return strings.Join(lines, ""), nil
}

// hasArg says whether the command line already carries a (for
// console=ttyS0,115200: any console=ttyS…; for net.ifnames=0: any
// net.ifnames=).
func hasArg(line, arg, name string) bool {
	switch {
	case strings.HasPrefix(arg, "console=ttyS"):
		return strings.Contains(line, "console=ttyS")
	case strings.HasPrefix(arg, "console="):
		return strings.Contains(line, arg)
	}
	return regexp.MustCompile(`(^|[\s"'])` + regexp.QuoteMeta(name) + `=`).MatchString(line)
}

// appendArg adds arg at the end of a command line, inside the closing quote
// of a GRUB_CMDLINE_LINUX="…" assignment.
func appendArg(line, arg string) string {
	body := strings.TrimRight(line, "\n")
	nl := line[len(body):]
	if strings.HasSuffix(body, `"`) || strings.HasSuffix(body, `'`) {
		q := body[len(body)-1:]
		inner := body[:len(body)-1]
		if strings.HasSuffix(inner, "=") || strings.HasSuffix(inner, q) {
			return inner + arg + q + nl
		}
		return inner + " " + arg + q + nl
	}
	return body + " " + arg + nl
}

// grubLinuxLine: a kernel line of grub.cfg.
func grubLinuxLine(l string) bool {
	f := strings.Fields(l)
	return len(f) > 1 && (f[0] == "linux" || f[0] == "linux16" || f[0] == "linuxefi" || f[0] == "kernel")
}

// grubDefaultLine: the command-line assignment of /etc/default/grub.
func grubDefaultLine(l string) bool {
	return strings.HasPrefix(strings.TrimSpace(l), "GRUB_CMDLINE_LINUX=")
}

// entryLine: the kernel arguments of a systemd-boot entry or extlinux.conf.
func entryLine(l string) bool {
	f := strings.Fields(l)
	return len(f) > 1 && (f[0] == "options" || strings.EqualFold(f[0], "append"))
}

// anyLine: /etc/kernel/cmdline is one command line.
func anyLine(l string) bool { return strings.TrimSpace(l) != "" }

// lineDiff summarises a change: the lines only in before and only in after,
// in order (a multiset difference, which is what a reader of a config
// change wants to see).
func lineDiff(before, after string) (removed, added string) {
	count := map[string]int{}
	for _, l := range strings.Split(after, "\n") {
		count[l]++
	}
	var rm []string
	for _, l := range strings.Split(before, "\n") {
		if count[l] > 0 {
			count[l]--
		} else {
			rm = append(rm, l)
		}
	}
	count = map[string]int{}
	for _, l := range strings.Split(before, "\n") {
		count[l]++
	}
	var ad []string
	for _, l := range strings.Split(after, "\n") {
		if count[l] > 0 {
			count[l]--
		} else {
			ad = append(ad, l)
		}
	}
	return clip(strings.Join(rm, "\n")), clip(strings.Join(ad, "\n"))
}

func clip(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "\n…"
	}
	return s
}
