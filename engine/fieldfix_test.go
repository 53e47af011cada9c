package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/throttle"
)

// TestCheckpointByTime: on a slow link the gateway checkpoints inside one
// long stream by time, not only when the stream (here 1 GiB of batch)
// ends, so a crash loses at most CheckpointEvery of transfer.
func TestCheckpointByTime(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 8<<20, 81)
	g := startGateway(t, GatewayOptions{Create: true, CheckpointEvery: 300 * time.Millisecond})
	opt := g.syncOptions(t, src, "ct1")
	opt.Rate = 1 << 20 // ≈ 4 s for the 4 MiB of data, in one stream
	s, _ := NewSyncer(opt)
	done := make(chan error, 1)
	go func() { _, err := s.Run(context.Background()); done <- err }()
	var offsets []int64
	pollUntil(t, "two checkpoints inside the stream", func() bool {
		if o := checkpointOffset(g.Dir, "ct1"); o > 0 && (len(offsets) == 0 || o > offsets[len(offsets)-1]) {
			offsets = append(offsets, o)
		}
		return len(offsets) >= 2
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sameContent(t, src, g.diskPath("ct1"))
}

// TestProgressMeasuresTheWire: an incremental sync over a throttled link
// scans unchanged blocks far faster than it sends; the rate it reports is
// the wire's, not the scan's.
func TestProgressMeasuresTheWire(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 16<<20, 82)
	g := startGateway(t, GatewayOptions{Create: true})
	opt := g.syncOptions(t, src, "pr1")
	opt.StateDir = filepath.Join(dir, "state")
	runSync(t, opt)
	scribble(t, src, 400, 83) // ≈ 1.6 MB changed, spread over most blocks
	opt.Rate = throttle.Rate(512 << 10)
	opt.ProgressEvery = 100 * time.Millisecond
	var last atomic.Pointer[Progress]
	opt.Progress = func(p Progress) { last.Store(&p) }
	p := runSync(t, opt)
	if p.SentBytes < 1<<20 {
		t.Fatalf("sent only %d bytes", p.SentBytes)
	}
	// The wire ran at ~512 KiB/s; the scan of 16 MiB went much faster.
	if p.Rate > 2*512<<10 {
		t.Errorf("reported rate %.0f B/s on a 512 KiB/s link (scan rate %.0f B/s)", p.Rate, p.ScanRate)
	}
	if p.ScanRate < p.Rate {
		t.Errorf("scan rate %.0f below wire rate %.0f: the test does not show the difference", p.ScanRate, p.Rate)
	}
}

func TestNextLevel(t *testing.T) {
	tests := []struct {
		name                    string
		cur                     int
		link, starved, cpu, raw float64
		want                    int
	}{
		{"slow link, idle compressors, compressible: stronger", 0, 0.9, 0.0, 0.2, 0.0, 1},
		{"already strongest", 2, 0.9, 0.0, 0.2, 0.0, 2},
		{"incompressible data: back down", 2, 0.9, 0.0, 0.2, 0.95, 1},
		{"incompressible: no climb", 0, 0.9, 0.0, 0.2, 0.6, 0},
		{"compressors the bottleneck: weaker", 2, 0.1, 0.5, 0.9, 0.0, 1},
		{"fast link, busy compressors: stay fastest", 0, 0.1, 0.5, 0.9, 0.0, 0},
		{"balanced: stay", 1, 0.4, 0.05, 0.6, 0.1, 1},
	}
	for _, tc := range tests {
		if got := nextLevel(tc.cur, tc.link, tc.starved, tc.cpu, tc.raw); got != tc.want {
			t.Errorf("%s: nextLevel = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestAdaptiveLevelOnSlowLink: compressible data over a throttled link
// moves the agent to a stronger zstd level, which sends fewer bytes.
func TestAdaptiveLevelOnSlowLink(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "text.img")
	var b strings.Builder
	for i := 0; b.Len() < 6<<20; i++ {
		b.WriteString("host web")
		b.WriteString(strings.Repeat("x", i%17))
		b.WriteString(" served request ")
		b.WriteString(time.Duration(i * 7919).String())
		b.WriteString("\n")
	}
	os.WriteFile(src, []byte(b.String()), 0o600)
	g := startGateway(t, GatewayOptions{Create: true, NoDedup: true})
	opt := g.syncOptions(t, src, "lv1")
	opt.Rate = 256 << 10
	var mu sync.Mutex
	var levels []int
	opt.Logf = func(f string, a ...any) {
		t.Logf(f, a...)
		if strings.Contains(f, "compression level") {
			mu.Lock()
			levels = append(levels, a[1].(int))
			mu.Unlock()
		}
	}
	p := runSync(t, opt)
	mu.Lock()
	defer mu.Unlock()
	if len(levels) == 0 || p.Level < 2 {
		t.Errorf("a throttled sync of text stayed at level %d (changes %v)", p.Level, levels)
	}
}

// TestVerifySaysWhat: the proof says what it covered; a full verification
// is made when asked, on the schedule, and on demand with VerifyTarget,
// which finds damage behind the gateway's back and has the next sync
// repair exactly it.
func TestVerifySaysWhat(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 8<<20, 84)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	g := startGateway(t, GatewayOptions{Create: true, Now: func() time.Time { return now }, FullVerifyEvery: 7 * 24 * time.Hour})
	opt := g.syncOptions(t, src, "v1")
	opt.StateDir = filepath.Join(dir, "state")
	p := runSync(t, opt)
	if p.Proof.FullRead || p.Proof.RereadBytes == 0 || p.Proof.RereadBytes+p.Proof.TrustedBytes != 8<<20 {
		t.Errorf("first sync of a created disk: %+v", p.Proof)
	}
	if s := ProofSummary(p); !strings.Contains(s, "this sync wrote re-read") || !strings.Contains(s, "trusted") {
		t.Errorf("summary %q", s)
	}
	scribble(t, src, 3, 85)
	opt.VerifyFull = true
	p = runSync(t, opt)
	if !p.Proof.FullRead || !strings.Contains(p.Proof.Reason, "requested") {
		t.Errorf("asked-for full verification: %+v", p.Proof)
	}
	opt.VerifyFull = false
	scribble(t, src, 3, 86)
	now = now.Add(8 * 24 * time.Hour)
	opt.Credential, _ = g.IssueCredential("v1", time.Hour)
	p = runSync(t, opt)
	if !p.Proof.FullRead || !strings.Contains(p.Proof.Reason, "scheduled") {
		t.Errorf("sync a week after the last full verification: %+v", p.Proof)
	}
	// Damage behind the gateway's back, found by VerifyTarget.
	f, _ := os.OpenFile(g.diskPath("v1"), os.O_RDWR, 0)
	f.WriteAt([]byte("bit rot"), 3<<20+17)
	f.Close()
	v, err := g.VerifyTarget(context.Background(), "v1")
	if err != nil || v.Equal || len(v.Mismatched) != 1 || v.Mismatched[0] != 3<<20 {
		t.Fatalf("VerifyTarget over a damaged block: %+v, %v", v, err)
	}
	if cp, _ := g.Checkpoint("v1"); cp.Verified || !strings.Contains(cp.Damage, "1 blocks differing") {
		t.Errorf("checkpoint after damage: %+v", cp)
	}
	p = runSync(t, opt)
	sameContent(t, src, g.diskPath("v1"))
	if p.BlocksSent != 1 {
		t.Errorf("repairing sync sent %d blocks for one damaged block", p.BlocksSent)
	}
	if v, err := g.VerifyTarget(context.Background(), "v1"); err != nil || !v.Equal {
		t.Errorf("VerifyTarget after the repair: %+v %v", v, err)
	}
}
