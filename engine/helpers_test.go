package engine

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// makeImage writes a sparse image of size bytes in which about half of the
// 64 KiB chunks hold random data and the rest are holes.
func makeImage(t testing.TB, path string, size int64, seed uint64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, seed+1))
	chunk := make([]byte, 64<<10)
	for off := int64(0); off < size; off += int64(len(chunk)) {
		if r.IntN(2) == 0 {
			continue
		}
		fillRandom(r, chunk)
		n := min(int64(len(chunk)), size-off)
		if _, err := f.WriteAt(chunk[:n], off); err != nil {
			t.Fatal(err)
		}
	}
}

func fillRandom(r *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
}

// scribble overwrites n random 4 KiB pieces of the file (some with zeros).
func scribble(t testing.TB, path string, n int, seed uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, _ := f.Seek(0, io.SeekEnd)
	r := rand.New(rand.NewPCG(seed, 99))
	b := make([]byte, 4096)
	for i := range n {
		if i%5 == 4 {
			clear(b)
		} else {
			fillRandom(r, b)
		}
		off := r.Int64N(size/4096) * 4096
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
}

// sha256Prefix is the SHA-256 of the first n bytes of path.
func sha256Prefix(t testing.TB, path string, n int64) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, n)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// sameContent fails the test unless target starts with exactly source's bytes.
func sameContent(t testing.TB, source, target string) {
	t.Helper()
	n := fileSize(t, source)
	if got, want := sha256Prefix(t, target, n), sha256Prefix(t, source, n); got != want {
		t.Fatalf("target %s SHA-256 %s, source %s SHA-256 %s", target, got, source, want)
	}
}

// testGateway serves a Gateway over TLS with its own pinned certificate on a
// real socket.
type testGateway struct {
	*Gateway
	URL, Fingerprint, Dir string
	srv                   *httptest.Server
}

func startGateway(t testing.TB, opt GatewayOptions) *testGateway {
	t.Helper()
	if opt.Dir == "" {
		opt.Dir = t.TempDir()
	}
	if opt.Logf == nil {
		opt.Logf = t.Logf
	}
	g, err := NewGateway(opt)
	if err != nil {
		t.Fatal(err)
	}
	cert, fp, err := LoadOrCreateCertificate(opt.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &testGateway{Gateway: g, URL: srv.URL, Fingerprint: fp, Dir: opt.Dir, srv: srv}
}

func (g *testGateway) diskPath(id string) string { return filepath.Join(g.Dir, "disks", id+".img") }

func (g *testGateway) syncOptions(t testing.TB, source, disk string) SyncOptions {
	t.Helper()
	cred, err := g.IssueCredential(disk, 3600e9)
	if err != nil {
		t.Fatal(err)
	}
	return SyncOptions{Source: source, DiskID: disk, Gateway: g.URL, Credential: cred,
		Fingerprint: g.Fingerprint, BlockSize: 64 << 10, Logf: t.Logf, RetryFor: 30e9}
}

var _ http.Handler = (*Gateway)(nil)
