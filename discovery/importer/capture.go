package importer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/ferry-migrate/ferry/discovery"
)

// SocketLine is one TCP socket from an ss or netstat capture.
type SocketLine struct {
	State      string // kernel spelling: ESTABLISHED, LISTEN, TIME_WAIT …
	LocalAddr  string
	LocalPort  int
	RemoteAddr string
	RemotePort int
	PID        int
	Process    string
}

// errSkip marks lines that carry no socket (headers, UDP, unix sockets).
var errSkip = errors.New("not a tcp socket line")

var ssStates = map[string]string{
	"ESTAB": "ESTABLISHED", "LISTEN": "LISTEN", "TIME-WAIT": "TIME_WAIT", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECV",
	"FIN-WAIT-1": "FIN_WAIT1", "FIN-WAIT-2": "FIN_WAIT2", "CLOSE-WAIT": "CLOSE_WAIT", "LAST-ACK": "LAST_ACK",
	"CLOSING": "CLOSING", "CLOSED": "CLOSE", "UNCONN": "CLOSE",
}

var netstatStates = map[string]string{
	"ESTABLISHED": "ESTABLISHED", "LISTEN": "LISTEN", "LISTENING": "LISTEN", "TIME_WAIT": "TIME_WAIT", "SYN_SENT": "SYN_SENT",
	"SYN_RECV": "SYN_RECV", "SYN_RECEIVED": "SYN_RECV", "FIN_WAIT1": "FIN_WAIT1", "FIN_WAIT_1": "FIN_WAIT1",
	"FIN_WAIT2": "FIN_WAIT2", "FIN_WAIT_2": "FIN_WAIT2", "CLOSE_WAIT": "CLOSE_WAIT", "LAST_ACK": "LAST_ACK",
	"CLOSING": "CLOSING", "CLOSE": "CLOSE", "CLOSED": "CLOSE",
}

// splitHostPort splits the address forms ss and netstat print:
// 10.0.0.5:22, [::1]:22, :::22, ::ffff:10.0.0.5:22, *:22, 0.0.0.0:*,
// 127.0.0.53%lo:53.
func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("%q has no port", s)
	}
	host, port := s[:i], s[i+1:]
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if j := strings.IndexByte(host, '%'); j >= 0 {
		host = host[:j]
	}
	switch host {
	case "*", "":
		host = "0.0.0.0"
	case "::":
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not an IP address", host)
	}
	p := 0
	if port != "*" {
		if p, err = strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return "", 0, fmt.Errorf("%q is not a port", port)
		}
	}
	return a.Unmap().String(), p, nil
}

// ParseSSLine parses one line of `ss -tanp` (or `ss -anp`, with a Netid
// column). Lines that are not TCP sockets return errSkip.
func ParseSSLine(line string) (SocketLine, error) {
	f := strings.Fields(line)
	if len(f) > 0 && (f[0] == "tcp" || f[0] == "udp" || f[0] == "u_str" || f[0] == "u_dgr" || f[0] == "u_seq" || f[0] == "nl" || f[0] == "raw" || f[0] == "p_raw") {
		if f[0] != "tcp" {
			return SocketLine{}, errSkip
		}
		f = f[1:]
	}
	if len(f) == 0 || f[0] == "State" || f[0] == "Netid" || strings.HasPrefix(f[0], "#") {
		return SocketLine{}, errSkip
	}
	state, ok := ssStates[f[0]]
	if !ok {
		return SocketLine{}, fmt.Errorf("unknown state %q", f[0])
	}
	if len(f) < 5 {
		return SocketLine{}, fmt.Errorf("want state, recv-q, send-q, local and peer address; got %d fields", len(f))
	}
	s := SocketLine{State: state}
	var err error
	if s.LocalAddr, s.LocalPort, err = splitHostPort(f[3]); err != nil {
		return s, fmt.Errorf("local address: %w", err)
	}
	if s.RemoteAddr, s.RemotePort, err = splitHostPort(f[4]); err != nil {
		return s, fmt.Errorf("peer address: %w", err)
	}
	// users:(("sshd",pid=5678,fd=3),("sshd",pid=5679,fd=3)) — the first owner names the socket.
	rest := strings.Join(f[5:], " ")
	if i := strings.Index(rest, `(("`); i >= 0 {
		name := rest[i+3:]
		if j := strings.IndexByte(name, '"'); j >= 0 {
			s.Process = name[:j]
			if k := strings.Index(name, "pid="); k >= 0 {
				num := name[k+4:]
				if e := strings.IndexAny(num, ",)"); e >= 0 {
					num = num[:e]
				}
				s.PID, _ = strconv.Atoi(num)
			}
		}
	}
	return s, nil
}

// ParseNetstatLine parses one line of Linux `netstat -anp` (also `-tanp`)
// or Windows `netstat -ano`.
func ParseNetstatLine(line string) (SocketLine, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return SocketLine{}, errSkip
	}
	switch f[0] {
	case "tcp", "tcp6", "tcp4":
		if len(f) < 6 {
			return SocketLine{}, fmt.Errorf("want proto, recv-q, send-q, local, foreign and state; got %d fields", len(f))
		}
		s, err := socketFields(f[3], f[4], f[5])
		if err != nil {
			return s, err
		}
		if len(f) > 6 && f[6] != "-" {
			pid, prog, _ := strings.Cut(strings.Join(f[6:], " "), "/")
			s.PID, _ = strconv.Atoi(pid)
			if i := strings.IndexAny(prog, ": "); i > 0 {
				prog = prog[:i] // "nginx: master" → nginx, "sshd: root@pts/0" → sshd
			}
			s.Process = prog
		}
		return s, nil
	case "TCP":
		if len(f) < 4 {
			return SocketLine{}, fmt.Errorf("want proto, local, foreign, state and pid; got %d fields", len(f))
		}
		s, err := socketFields(f[1], f[2], f[3])
		if err != nil {
			return s, err
		}
		if len(f) > 4 {
			s.PID, _ = strconv.Atoi(f[4])
		}
		return s, nil
	}
	return SocketLine{}, errSkip
}

func socketFields(local, remote, state string) (SocketLine, error) {
	st, ok := netstatStates[state]
	if !ok {
		return SocketLine{}, fmt.Errorf("unknown state %q", state)
	}
	s := SocketLine{State: st}
	var err error
	if s.LocalAddr, s.LocalPort, err = splitHostPort(local); err != nil {
		return s, fmt.Errorf("local address: %w", err)
	}
	if s.RemoteAddr, s.RemotePort, err = splitHostPort(remote); err != nil {
		return s, fmt.Errorf("foreign address: %w", err)
	}
	return s, nil
}

// HostFromCaptureName infers the host a capture was taken on from its file
// name: web01.ss.txt, web01-netstat.log, ss_web01.txt → web01.
func HostFromCaptureName(name string) string {
	base := strings.ToLower(path.Base(strings.ReplaceAll(name, `\`, "/")))
	for {
		ext := path.Ext(base)
		if ext == "" || !(ext == ".txt" || ext == ".log" || ext == ".out" || ext == ".ss" || ext == ".netstat" || ext == ".cap") {
			break
		}
		base = strings.TrimSuffix(base, ext)
	}
	for _, affix := range []string{"-netstat", "_netstat", ".netstat", "-ss", "_ss", ".ss"} {
		base = strings.TrimSuffix(base, affix)
	}
	for _, affix := range []string{"netstat-", "netstat_", "ss-", "ss_"} {
		base = strings.TrimPrefix(base, affix)
	}
	return base
}

// capture imports one host's socket table. The host is the "# host: NAME"
// header line when present, else the file name.
func (im *Importer) capture(file string, kind Kind, r io.Reader, sum *FileSummary) error {
	parse := ParseSSLine
	if kind == KindNetstat {
		parse = ParseNetstatLine
	}
	host := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var listening []discovery.Socket
	var conns []discovery.Connection
	localIPs := map[string]bool{}
	var ipOrder []string
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if bad := badText(text); bad != "" {
			sum.Rows++
			sum.Rejected++
			im.rowError(file, line, "", "the line %s; it is not imported", bad)
			continue
		}
		if strings.HasPrefix(text, "#") {
			k, v, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(text, "#")), ":")
			if ok && (strings.EqualFold(strings.TrimSpace(k), "host") || strings.EqualFold(strings.TrimSpace(k), "hostname")) {
				host = strings.TrimSpace(v)
			}
			continue
		}
		if strings.HasPrefix(text, "Active UNIX domain sockets") || strings.HasPrefix(text, "Active Bluetooth") {
			break // the rest of netstat's output is not TCP
		}
		s, err := parse(text)
		if errors.Is(err, errSkip) {
			continue
		}
		sum.Rows++
		if sum.Rows > im.limits.MaxRows {
			return fmt.Errorf("%w: more than %d rows", ErrTooLarge, im.limits.MaxRows)
		}
		if err != nil {
			sum.Rejected++
			im.rowError(file, line, "", "%v", err)
			continue
		}
		sum.Accepted++
		if s.State == "LISTEN" {
			listening = append(listening, discovery.Socket{Protocol: "tcp", Address: s.LocalAddr, Port: s.LocalPort, PID: s.PID, Process: s.Process})
			continue
		}
		conns = append(conns, discovery.Connection{Protocol: "tcp", LocalAddress: s.LocalAddr, LocalPort: s.LocalPort,
			RemoteAddress: s.RemoteAddr, RemotePort: s.RemotePort, State: s.State, PID: s.PID, Process: s.Process})
		if s.State == "ESTABLISHED" {
			if a, err := netip.ParseAddr(s.LocalAddr); err == nil && !a.IsLoopback() && !a.IsUnspecified() && !localIPs[s.LocalAddr] {
				localIPs[s.LocalAddr] = true
				ipOrder = append(ipOrder, s.LocalAddr)
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d is longer than 1 MiB; this is not a socket capture", line+1)
		}
		return err
	}
	if host == "" {
		host = HostFromCaptureName(file)
	}
	if host == "" {
		return fmt.Errorf("cannot tell which host the capture is from: name the file <host>.ss.txt or start it with '# host: <name>'")
	}
	src := im.source(discovery.SourceCapture, file)
	ref := "capture:" + im.batch + ":" + strings.ToLower(host)
	rec := discovery.Record{Source: src, Refs: []string{ref}, HostFacts: discovery.HostFacts{Name: host, IPs: ipOrder}}
	if strings.Contains(host, ".") {
		if _, err := netip.ParseAddr(host); err != nil {
			rec.FQDN = strings.ToLower(host)
		}
	}
	im.addRecord(rec)
	for _, c := range discovery.DeriveConnections(src, discovery.Endpoint{Ref: ref, Name: host}, listening, conns) {
		im.addConnection(c)
	}
	return nil
}
