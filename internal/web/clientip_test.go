package web

import (
	"net/http/httptest"
	"testing"
)

func TestClientIP(t *testing.T) {
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.7 ,::ffff:172.16.0.0/108, fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, peer, header string
		headers            map[string]string
		want               string
	}{
		{"untrusted peer: headers ignored", "203.0.113.9:5000", "", map[string]string{"X-Forwarded-For": "1.2.3.4", "X-Real-IP": "1.2.3.5", "Forwarded": "for=1.2.3.6"}, "203.0.113.9"},
		{"trusted peer, no header", "10.1.1.1:5000", "", nil, "10.1.1.1"},
		{"trusted peer, one hop", "10.1.1.1:5000", "", map[string]string{"X-Forwarded-For": "198.51.100.1"}, "198.51.100.1"},
		{"client-written hops left of the client are ignored", "10.1.1.1:5000", "", map[string]string{"X-Forwarded-For": "6.6.6.6, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", "10.1.1.1:5000", "", map[string]string{"X-Forwarded-For": "198.51.100.1, 192.0.2.7, 10.2.2.2"}, "198.51.100.1"},
		{"all hops trusted: the leftmost", "10.1.1.1:5000", "", map[string]string{"X-Forwarded-For": "10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		{"garbage stops the walk", "10.1.1.1:5000", "", map[string]string{"X-Forwarded-For": "198.51.100.1, bogus, 10.2.2.2"}, "10.2.2.2"},
		{"IPv4-mapped peer", "[::ffff:172.16.5.5]:80", "", map[string]string{"X-Forwarded-For": "198.51.100.2"}, "198.51.100.2"},
		{"IPv6 peer and hop with port", "[fd00::1]:443", "", map[string]string{"X-Forwarded-For": "[2001:db8::5]:1234"}, "2001:db8::5"},
		{"only the configured header: X-Real-IP ignored by default", "10.1.1.1:5000", "", map[string]string{"X-Real-IP": "1.2.3.4"}, "10.1.1.1"},
		{"X-Real-IP configured", "10.1.1.1:5000", HeaderXRealIP, map[string]string{"X-Real-IP": "198.51.100.3", "X-Forwarded-For": "1.2.3.4"}, "198.51.100.3"},
		{"Forwarded configured", "10.1.1.1:5000", HeaderForwarded, map[string]string{"Forwarded": `for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=10.2.2.2;by=10.1.1.1`, "X-Forwarded-For": "1.2.3.4"}, "2001:db8:cafe::17"},
		{"Forwarded obfuscated hop stops", "10.1.1.1:5000", HeaderForwarded, map[string]string{"Forwarded": "for=198.51.100.1, for=_hidden"}, "10.1.1.1"},
	} {
		h, err := ClientIPHeader(c.header)
		if err != nil {
			t.Fatal(err)
		}
		s := &Server{cfg: Config{TrustedProxies: proxies, ClientIPHeader: h}}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		if got := s.clientIP(r).String(); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "not-an-ip", "10.0.0.1/8/8"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted", bad)
		}
	}
	if _, err := ClientIPHeader("X-Client-IP"); err == nil {
		t.Error("an unsupported client IP header was accepted")
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("198.51.100.1, 10.2.2.2", `for="[2001:db8::1]:80";by=x`)
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		proxies, _ := ParseTrustedProxies("10.0.0.0/8")
		for _, h := range []string{HeaderXForwardedFor, HeaderForwarded, HeaderXRealIP} {
			s := &Server{cfg: Config{TrustedProxies: proxies, ClientIPHeader: h}}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = "10.1.1.1:80"
			r.Header.Set("X-Forwarded-For", xff)
			r.Header.Set("Forwarded", fwd)
			r.Header.Set("X-Real-IP", xff)
			if !s.clientIP(r).IsValid() {
				t.Fatalf("no client address for %q / %q", xff, fwd)
			}
		}
	})
}
