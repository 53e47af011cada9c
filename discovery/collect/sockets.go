package collect

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ferry-migrate/ferry/discovery"
)

// tcpStates maps the kernel's st column (include/net/tcp_states.h).
var tcpStates = map[uint64]string{
	0x01: "ESTABLISHED", 0x02: "SYN_SENT", 0x03: "SYN_RECV", 0x04: "FIN_WAIT1", 0x05: "FIN_WAIT2",
	0x06: "TIME_WAIT", 0x07: "CLOSE", 0x08: "CLOSE_WAIT", 0x09: "LAST_ACK", 0x0A: "LISTEN",
	0x0B: "CLOSING", 0x0C: "NEW_SYN_RECV",
}

// TCPEntry is one line of /proc/net/tcp or /proc/net/tcp6.
type TCPEntry struct {
	Local  netip.AddrPort
	Remote netip.AddrPort
	State  string
	Inode  uint64
}

// errHeader marks the column header line, which is not an error.
var errHeader = errors.New("header line")

// ParseTCPLine parses one line of /proc/net/tcp{,6}. The kernel prints each
// 32-bit word of the address in host byte order, so on the little-endian
// machines Ferry runs on (x86_64, aarch64) each word's bytes are reversed.
func ParseTCPLine(line string) (TCPEntry, error) {
	f := strings.Fields(line)
	if len(f) > 0 && f[0] == "sl" {
		return TCPEntry{}, errHeader
	}
	if len(f) < 10 {
		return TCPEntry{}, fmt.Errorf("want at least 10 fields, got %d", len(f))
	}
	var e TCPEntry
	var err error
	if e.Local, err = parseHexAddrPort(f[1]); err != nil {
		return e, fmt.Errorf("local address: %w", err)
	}
	if e.Remote, err = parseHexAddrPort(f[2]); err != nil {
		return e, fmt.Errorf("remote address: %w", err)
	}
	st, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil {
		return e, fmt.Errorf("state %q: %w", f[3], err)
	}
	var ok bool
	if e.State, ok = tcpStates[st]; !ok {
		return e, fmt.Errorf("unknown state %q", f[3])
	}
	if e.Inode, err = strconv.ParseUint(f[9], 10, 64); err != nil {
		return e, fmt.Errorf("inode %q: %w", f[9], err)
	}
	return e, nil
}

func parseHexAddrPort(s string) (netip.AddrPort, error) {
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%q has no port", s)
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", port, err)
	}
	if len(host) != 8 && len(host) != 32 {
		return netip.AddrPort{}, fmt.Errorf("address %q has %d hex digits, want 8 or 32", host, len(host))
	}
	raw, err := hex.DecodeString(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: %w", host, err)
	}
	for w := 0; w < len(raw); w += 4 {
		raw[w], raw[w+1], raw[w+2], raw[w+3] = raw[w+3], raw[w+2], raw[w+1], raw[w]
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr, uint16(p)), nil
}

// procInfo is what the collector learns from one /proc/<pid> directory.
type procInfo struct {
	pid     int
	comm    string
	cmdline string
}

// scanProcesses walks /proc once, returning the processes and which socket
// inode belongs to which process. Processes whose fds cannot be read (not
// root) are counted, not fatal.
func (c *Collector) scanProcesses() (procs []procInfo, inodes map[uint64]int, denied int) {
	inodes = map[uint64]int{}
	dir := c.path("proc")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, inodes, 0
	}
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid <= 0 {
			continue
		}
		base := filepath.Join(dir, ent.Name())
		comm, err := os.ReadFile(filepath.Join(base, "comm"))
		if err != nil {
			continue // the process exited
		}
		p := procInfo{pid: pid, comm: strings.TrimSpace(string(comm))}
		if cl, err := os.ReadFile(filepath.Join(base, "cmdline")); err == nil {
			p.cmdline = strings.TrimSpace(strings.ReplaceAll(string(cl), "\x00", " "))
		}
		procs = append(procs, p)
		fdDir := filepath.Join(base, "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			if errors.Is(err, os.ErrPermission) {
				denied++
			}
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(link[len("socket:["):], "]"), 10, 64)
			if err == nil {
				if _, seen := inodes[ino]; !seen {
					inodes[ino] = pid
				}
			}
		}
	}
	return procs, inodes, denied
}

// readTCPTables reads /proc/net/tcp and tcp6. A missing tcp6 (IPv6 off) is
// normal; unparsable lines are skipped and counted.
func (c *Collector) readTCPTables() (entries []TCPEntry, v6 []bool, bad int, err error) {
	for _, name := range []string{"tcp", "tcp6"} {
		f, ferr := os.Open(c.path("proc", "net", name))
		if ferr != nil {
			if name == "tcp" {
				err = ferr
			}
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			e, perr := ParseTCPLine(sc.Text())
			if perr == errHeader {
				continue
			}
			if perr != nil {
				bad++
				continue
			}
			entries = append(entries, e)
			v6 = append(v6, name == "tcp6")
		}
		f.Close()
	}
	return entries, v6, bad, err
}

// Sockets returns the listening sockets and the TCP connections of the
// host (its network namespace), each joined to its owning process where
// /proc/<pid>/fd shows it.
func (c *Collector) Sockets() (listening []discovery.Socket, conns []discovery.Connection, warnings []string, err error) {
	procs, inodes, denied := c.scanProcesses()
	return c.sockets(procs, inodes, denied)
}

func (c *Collector) sockets(procs []procInfo, inodes map[uint64]int, denied int) (listening []discovery.Socket, conns []discovery.Connection, warnings []string, err error) {
	comm := make(map[int]string, len(procs))
	for _, p := range procs {
		comm[p.pid] = p.comm
	}
	entries, v6, bad, err := c.readTCPTables()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read tcp table: %w", err)
	}
	if denied > 0 {
		warnings = append(warnings, fmt.Sprintf("%d processes' file descriptors were not readable; run as root to see every socket's process", denied))
	}
	if bad > 0 {
		warnings = append(warnings, fmt.Sprintf("%d unparsable lines in /proc/net/tcp{,6}", bad))
	}
	for i, e := range entries {
		proto := "tcp"
		if v6[i] {
			proto = "tcp6"
		}
		pid := inodes[e.Inode]
		if e.Inode == 0 {
			pid = 0
		}
		switch e.State {
		case "LISTEN":
			listening = append(listening, discovery.Socket{Protocol: proto, Address: e.Local.Addr().String(), Port: int(e.Local.Port()), PID: pid, Process: comm[pid]})
		case "TIME_WAIT", "CLOSE":
			// Kernel-owned leftovers with no process; they would drown the rest.
		default:
			conns = append(conns, discovery.Connection{
				Protocol: proto, LocalAddress: e.Local.Addr().Unmap().String(), LocalPort: int(e.Local.Port()),
				RemoteAddress: e.Remote.Addr().Unmap().String(), RemotePort: int(e.Remote.Port()),
				State: e.State, PID: pid, Process: comm[pid],
			})
		}
	}
	return listening, conns, warnings, nil
}
