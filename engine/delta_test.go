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
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-migrate/ferry/engine/wire"
)

// writeAt4K overwrites n random 4 KiB sub-blocks of the file with random
// data and returns how many bytes that changed.
func writeAt4K(t testing.TB, path string, n int, seed uint64) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, _ := f.Seek(0, io.SeekEnd)
	r := rand.New(rand.NewPCG(seed, 3))
	b := make([]byte, wire.SubBlock)
	seen := map[int64]bool{}
	for len(seen) < n {
		off := r.Int64N(size/wire.SubBlock) * wire.SubBlock
		if seen[off] {
			continue
		}
		seen[off] = true
		fillRandom(r, b)
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	return int64(n) * wire.SubBlock
}

// TestSubBlockDelta: after scattered 4 KiB writes, an incremental sync
// sends the changed sub-blocks, not the 1 MiB blocks around them.
func TestSubBlockDelta(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 32<<20, 51)
	g := startGateway(t, GatewayOptions{Create: true})
	opt := g.syncOptions(t, src, "p1")
	opt.BlockSize = 1 << 20
	opt.StateDir = filepath.Join(dir, "state")
	runSync(t, opt)

	changed := writeAt4K(t, src, 80, 52)
	p := runSync(t, opt)
	sameContent(t, src, g.diskPath("p1"))
	t.Logf("%d bytes changed in 4 KiB writes: %d blocks patched, %d bytes before compression, %d on the wire", changed, p.BlocksPatched, p.PlainBytes, p.SentBytes)
	if p.BlocksPatched == 0 {
		t.Fatalf("no block travelled as a patch: %+v", p)
	}
	// Before compression: the changed bytes plus frame and patch headers.
	if limit := changed * 11 / 10; p.PlainBytes > limit {
		t.Errorf("incremental sync put %d bytes on the wire before compression for %d changed bytes (limit %d): %+v", p.PlainBytes, changed, limit, p)
	}
	if p.BlocksResent != 0 {
		t.Errorf("%d blocks re-sent: patches were refused", p.BlocksResent)
	}

	// Without local state the agent cannot know the sub-blocks: whole
	// blocks travel, and the result is still right.
	changed = writeAt4K(t, src, 10, 53)
	opt2 := opt
	opt2.StateDir = ""
	p = runSync(t, opt2)
	sameContent(t, src, g.diskPath("p1"))
	if p.PlainBytes < 5<<20 {
		t.Logf("without state: %d plain bytes for %d changed", p.PlainBytes, changed)
	}
	// A stale store (the target moved on without this agent) is not used:
	// the next run with the old state still ends equal.
	writeAt4K(t, src, 10, 54)
	runSync(t, opt)
	sameContent(t, src, g.diskPath("p1"))
}

// TestOldGatewayProtocol: against a gateway that speaks only protocol 1
// (emulated by a proxy that removes protocol 2 from the session reply and
// refuses any frame kind protocol 1 does not know) the new agent sends
// whole blocks and succeeds; and an agent capped at protocol 1 (an old
// agent) syncs against the new gateway.
func TestOldGatewayProtocol(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 8<<20, 55)
	gw, err := NewGateway(GatewayOptions{Dir: t.TempDir(), Create: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	backend := httptest.NewServer(gw)
	defer backend.Close()
	bu, _ := url.Parse(backend.URL)
	var newKinds atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(bu)
	proxy.ModifyResponse = func(r *http.Response) error {
		if !strings.HasSuffix(r.Request.URL.Path, "/session") || r.StatusCode != 200 {
			return nil
		}
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &m)
		delete(m, "protocol")
		delete(m, "features")
		delete(m, "index_blocks")
		b, _ = json.Marshal(m)
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		r.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	inner := proxy.Director
	proxy.Director = func(r *http.Request) {
		inner(r)
		if strings.HasSuffix(r.URL.Path, "/have") {
			newKinds.Add(1)
		}
		if strings.HasSuffix(r.URL.Path, "/frames") {
			body, _ := io.ReadAll(r.Body)
			rd := wire.NewReader(bytes.NewReader(body))
			for {
				f, err := rd.Next()
				if err != nil {
					break
				}
				if f.Kind > wire.KindEnd {
					newKinds.Add(1)
				}
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		}
	}
	front := httptest.NewServer(proxy)
	defer front.Close()
	cred, _ := gw.IssueCredential("o1", 3600e9)
	opt := SyncOptions{Source: src, DiskID: "o1", Gateway: front.URL, Credential: cred, BlockSize: 64 << 10, Logf: t.Logf, RetryFor: 30e9, StateDir: filepath.Join(dir, "state")}
	runSync(t, opt)
	writeAt4K(t, src, 20, 56)
	runSync(t, opt)
	sameContent(t, src, filepath.Join(gw.opt.Dir, "disks", "o1.img"))
	if n := newKinds.Load(); n != 0 {
		t.Errorf("the agent used %d protocol 2 frames or queries against a protocol 1 gateway", n)
	}

	// An old agent (protocol 1 only) against the new gateway.
	old := opt
	old.Gateway, old.Protocol, old.DiskID = backend.URL, 1, "o2"
	old.Credential, _ = gw.IssueCredential("o2", 3600e9)
	runSync(t, old)
	writeAt4K(t, src, 20, 57)
	p := runSync(t, old)
	sameContent(t, src, filepath.Join(gw.opt.Dir, "disks", "o2.img"))
	if p.BlocksPatched != 0 || p.BlocksCopied != 0 {
		t.Errorf("a protocol 1 agent sent protocol 2 frames: %+v", p)
	}
}
