package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"time"
)

// Port is one TCP port the source listened on and where to reach it on the
// launched copy (a forwarded host address for qemu, the instance's address
// in a cloud).
type Port struct {
	Port int    `json:"port"`
	Addr string `json:"addr"`
}

// Ports passes when every port answers. "Answers" means the service sent a
// byte: a banner within BannerWait, or a reply to an HTTP HEAD request
// written after it. A bare TCP connect proves nothing through qemu's user
// network, whose host side accepts before the guest has even booted.
type Ports struct {
	Ports []Port
	// BannerWait (default 1 s) and ReplyWait (default 3 s) bound each try.
	BannerWait, ReplyWait time.Duration
}

// Name implements Checker.
func (p Ports) Name() string { return "ports" }

// Check implements Checker: ports are tried concurrently, each until it
// answers or ctx ends.
func (p Ports) Check(ctx context.Context) Check {
	if len(p.Ports) == 0 {
		return Check{Passed: true, Message: "no listening ports known for the source; nothing to check"}
	}
	bw, rw := p.BannerWait, p.ReplyWait
	if bw <= 0 {
		bw = time.Second
	}
	if rw <= 0 {
		rw = 3 * time.Second
	}
	type res struct {
		ok   bool
		line string
	}
	results := make([]res, len(p.Ports))
	var wg sync.WaitGroup
	for i, pt := range p.Ports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			var lastErr error
			ok := poll(ctx, func() bool {
				if ctx.Err() != nil && lastErr != nil {
					return false // keep the last real answer, not "context cancelled"
				}
				ans, err := probe(ctx, pt.Addr, bw, rw)
				if err != nil {
					if !expired(ctx) || lastErr == nil {
						lastErr = err // an attempt the deadline cut short says less than the one before it
					}
					return false
				}
				results[i] = res{true, fmt.Sprintf("%d/tcp at %s answered after %s: %q", pt.Port, pt.Addr, time.Since(start).Round(time.Millisecond), ans)}
				return true
			})
			if !ok {
				why := "no answer"
				if lastErr != nil {
					why = lastErr.Error()
				}
				results[i] = res{false, fmt.Sprintf("%d/tcp at %s: %s", pt.Port, pt.Addr, why)}
			}
		}()
	}
	wg.Wait()
	var lines, bad []string
	for i, r := range results {
		lines = append(lines, r.line)
		if !r.ok {
			bad = append(bad, fmt.Sprint(p.Ports[i].Port))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		return Check{Message: fmt.Sprintf("port(s) %s did not answer (%s)", strings.Join(bad, ", "), ctxWhy(ctx)), Evidence: strings.Join(lines, "\n")}
	}
	return Check{Passed: true, Message: fmt.Sprintf("%d port(s) answered", len(p.Ports)), Evidence: strings.Join(lines, "\n")}
}

// expired reports whether ctx's deadline has passed. ctx.Err() lags behind
// the clock on a loaded machine (a timer sets it), while the dialer compares
// the deadline with the clock itself and fails at once with "i/o timeout".
func expired(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(d)
}

// probe dials addr and returns the first line the service sent.
func probe(ctx context.Context, addr string, bannerWait, replyWait time.Duration) (string, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	buf := make([]byte, 256)
	c.SetReadDeadline(time.Now().Add(bannerWait))
	n, err := c.Read(buf)
	if n > 0 {
		return firstLine(buf[:n]), nil
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return "", fmt.Errorf("closed before answering (%v)", err)
	}
	host, _, _ := net.SplitHostPort(addr)
	if _, err := fmt.Fprintf(c, "HEAD / HTTP/1.0\r\nHost: %s\r\nUser-Agent: ferry-health\r\n\r\n", host); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(replyWait))
	n, err = io.ReadAtLeast(c, buf, 1)
	if n > 0 {
		return firstLine(buf[:n]), nil
	}
	return "", fmt.Errorf("no reply (%v)", err)
}

func firstLine(b []byte) string {
	s := string(b)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return strings.ToValidUTF8(s, "?")
}

// Agent passes when Phoned reports the Ferry agent inside the launched copy
// called home (the caller knows how: an agent row's last-seen time, a
// request seen by a test server).
type Agent struct {
	// Phoned returns evidence (who called, from where, when) and true once
	// the agent phoned home; an error ends the check as failed.
	Phoned func(ctx context.Context) (evidence string, ok bool, err error)
}

// Name implements Checker.
func (a Agent) Name() string { return "agent" }

// Check implements Checker.
func (a Agent) Check(ctx context.Context) Check {
	var out Check
	done := poll(ctx, func() bool {
		ev, ok, err := a.Phoned(ctx)
		if err != nil {
			out = Check{Message: fmt.Sprintf("agent check: %v", err)}
			return true
		}
		if ok {
			out = Check{Passed: true, Message: "the agent phoned home from the launched copy", Evidence: ev}
			return true
		}
		return false
	})
	if !done {
		return Check{Message: fmt.Sprintf("the agent did not phone home (%s)", ctxWhy(ctx))}
	}
	return out
}
