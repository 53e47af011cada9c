package web

import (
	"github.com/ferry-migrate/ferry/internal/trace"

	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Headers a trusted proxy may name the client in (Config.ClientIPHeader).
const (
	HeaderXForwardedFor = "X-Forwarded-For"
	HeaderForwarded     = "Forwarded"
	HeaderXRealIP       = "X-Real-IP"
)

// ParseTrustedProxies reads a comma-separated list of CIDRs or single
// addresses (FERRY_TRUSTED_PROXIES), e.g. "10.0.0.0/8, 192.0.2.7".
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR", f)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %v", f, err)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ClientIPHeader validates the name of the header trusted proxies set
// (Config.ClientIPHeader) and returns its canonical spelling; empty means
// X-Forwarded-For.
func ClientIPHeader(h string) (string, error) {
	switch http.CanonicalHeaderKey(strings.TrimSpace(h)) {
	case "", HeaderXForwardedFor:
		return HeaderXForwardedFor, nil
	case HeaderForwarded:
		return HeaderForwarded, nil
	case http.CanonicalHeaderKey(HeaderXRealIP):
		return HeaderXRealIP, nil
	}
	return "", fmt.Errorf("client IP header %q: want %s, %s or %s", h, HeaderXForwardedFor, HeaderForwarded, HeaderXRealIP)
}

type clientIPKey struct{}

// ClientIP is the address a request came from: the direct peer, or, when
// the peer is a trusted proxy, the client that proxy names. It is what
// sessions, logs, audit events and the sign-in throttle see.
func ClientIP(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(clientIPKey{}).(netip.Addr)
	return a
}

// peerAddr is the direct TCP peer of r.
func peerAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP resolves the client of r. Forwarded headers are read only when
// the direct peer is a trusted proxy, and only the one header the proxies
// are configured to set: a proxy appends to its own header but passes the
// others through, so reading a second header would read what the client
// wrote. The chain is walked from the right (the hop nearest to us),
// skipping trusted proxies; the first untrusted hop is the client. An
// unreadable hop stops the walk at the last address that was read.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	peer := peerAddr(r)
	if !s.trusted(peer) {
		return peer
	}
	var hops []string
	switch s.cfg.ClientIPHeader {
	case HeaderForwarded:
		hops = forwardedFor(r.Header.Values(HeaderForwarded))
	case HeaderXRealIP:
		if v := strings.TrimSpace(r.Header.Get(HeaderXRealIP)); v != "" {
			hops = []string{v}
		}
	default:
		for _, v := range r.Header.Values(HeaderXForwardedFor) {
			hops = append(hops, strings.Split(v, ",")...)
		}
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break
		}
		client = a
		if !s.trusted(a) {
			break
		}
	}
	return client
}

// forwardedFor returns the for= values of RFC 7239 Forwarded headers, in order.
func forwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for _, elem := range strings.Split(v, ",") {
			found := ""
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					found = val
				}
			}
			out = append(out, found) // an element without for= is an unknown hop
		}
	}
	return out
}

// parseHop reads one hop: an address, optionally quoted, bracketed or with
// a port ("192.0.2.1", "\"[2001:db8::1]:4711\"", "192.0.2.1:80").
func parseHop(h string) (netip.Addr, bool) {
	h = strings.Trim(strings.TrimSpace(h), `"`)
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if a, err := netip.ParseAddr(h[1 : len(h)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// realIP puts the resolved client address in the request's context.
func (s *Server) realIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := s.clientIP(r)
		ctx := context.WithValue(r.Context(), clientIPKey{}, ip)
		next.ServeHTTP(w, r.WithContext(trace.WithClientIP(ctx, ipString(ip))))
	})
}

// ipString renders a client address for logs and rows ("" when unknown).
func ipString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
