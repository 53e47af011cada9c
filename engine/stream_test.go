package engine

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-migrate/ferry/engine/wire"
	"github.com/klauspost/compress/zstd"
)

// flipReader flips one bit at byte pos of the stream it wraps.
type flipReader struct {
	r   io.ReadCloser
	pos int64
	n   int64
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.pos >= f.n && f.pos < f.n+int64(n) {
		p[f.pos-f.n] ^= 0x10
	}
	f.n += int64(n)
	return n, err
}
func (f *flipReader) Close() error { return f.r.Close() }

// TestCorruptedFrameResent puts a real proxy between agent and gateway that
// damages one payload byte of the first frames stream: the gateway must
// reject that frame (not write it) and the agent must re-send it.
func TestCorruptedFrameResent(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 8<<20, 31)
	gw, err := NewGateway(GatewayOptions{Dir: t.TempDir(), Create: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	backend := httptest.NewServer(gw)
	defer backend.Close()
	bu, _ := url.Parse(backend.URL)
	var streams atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(bu)
	inner := proxy.Director
	proxy.Director = func(r *http.Request) {
		inner(r)
		if strings.HasSuffix(r.URL.Path, "/frames") && streams.Add(1) == 1 {
			r.Body = &flipReader{r: r.Body, pos: wire.HeaderSize + 1000}
		}
	}
	front := httptest.NewServer(proxy)
	defer front.Close()

	cred, _ := gw.IssueCredential("z1", 3600e9)
	p := runSync(t, SyncOptions{Source: src, DiskID: "z1", Gateway: front.URL, Credential: cred, BlockSize: 64 << 10, Logf: t.Logf, RetryFor: 30e9})
	if p.BlocksResent == 0 {
		t.Errorf("no block was re-sent after a corrupted frame: %+v", p)
	}
	sameContent(t, src, filepath.Join(gw.opt.Dir, "disks", "z1.img"))
}

// TestTruncatedStream posts a stream cut inside its fourth frame: the three
// whole frames are applied and checkpointed, the torn one is not, and the
// gateway answers with a "truncated" error naming where to resume.
func TestTruncatedStream(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 4<<20, 32)
	g := startGateway(t, GatewayOptions{Create: true})
	cred, _ := g.IssueCredential("u1", 3600e9)
	s, err := NewSyncer(g.syncOptions(t, src, "u1"))
	if err != nil {
		t.Fatal(err)
	}
	post := func(op, query string, body []byte) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPost, s.path(op)+query, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+cred)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	js, _ := json.Marshal(sessionRequest{SyncID: "manual", Size: 4 << 20, BlockSize: 64 << 10})
	if code, b := post("session", "", js); code != 200 {
		t.Fatalf("session: %d %s", code, b)
	}
	var stream bytes.Buffer
	enc := wire.NewEncoder(zstd.SpeedFastest)
	block := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 4 {
		off := int64(i+10) * 64 << 10
		fillRandom(r, block) // incompressible, so the cut lands in the last frame
		block[0] = 0xAA
		f, _ := enc.Encode(uint64(off), block, wire.Sum(block), nil)
		wire.Write(&stream, &f)
	}
	cut := stream.Bytes()[:stream.Len()-100]
	code, b := post("frames", "?sync=manual", cut)
	var ae apiError
	json.Unmarshal(b, &ae)
	if code != http.StatusBadRequest || ae.Code != CodeTruncated || !strings.Contains(ae.Error, "applied 3 frames") {
		t.Fatalf("truncated stream: HTTP %d %s", code, b)
	}
	target, _ := os.ReadFile(g.diskPath("u1"))
	for i := range 4 {
		off := int64(i+10) * 64 << 10
		want := byte(0xAA)
		if i == 3 {
			want = 0 // the torn frame was not written
		}
		if target[off] != want {
			t.Errorf("block %d first byte %#x, want %#x", i+10, target[off], want)
		}
	}
	if got := checkpointOffset(g.Dir, "u1"); got != 13*64<<10 {
		t.Errorf("checkpoint at %d, want the end of the third frame %d", got, 13*64<<10)
	}
	// A real sync afterwards makes the target equal to the source.
	runSync(t, g.syncOptions(t, src, "u1"))
	sameContent(t, src, g.diskPath("u1"))
}
