package migration

import (
	"testing"
	"time"
)

// TestRateIsMeasuredOnTheWire: the pass's rate is the wire's, not the
// scan's (which races over unchanged blocks), and the ETA is the scan still
// to do at the wire bytes per scanned byte so far; the reading survives the
// step's data between follower runs, and a new pass starts the rate over.
func TestRateIsMeasuredOnTheWire(t *testing.T) {
	const MiB = 1 << 20
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var s rateSample
	if bps, eta := s.update(0, 100*MiB, 0, t0); bps != 0 || eta != -1 {
		t.Fatalf("first reading: rate %d, ETA %d; want 0 and unknown", bps, eta)
	}
	// 10 s later the scan is half way (5 MiB/s) but only 5 MiB crossed the
	// wire (0.5 MiB/s): the smoothed rate is half of that.
	s = rateFrom(s.data())
	bps, eta := s.update(50*MiB, 100*MiB, 5*MiB, t0.Add(10*time.Second))
	if bps != MiB/4 {
		t.Errorf("rate %d B/s, want %d (the wire's, smoothed)", bps, MiB/4)
	}
	// 50 MiB to scan × 0.1 wire bytes per scanned byte at 0.25 MiB/s.
	if eta != 20 {
		t.Errorf("ETA %d s, want 20", eta)
	}
	s = rateFrom(s.data())
	if s.wire != 5*MiB || s.bps != MiB/4 || !s.at.Equal(t0.Add(10*time.Second)) {
		t.Errorf("reading after a round trip through the step's data: %+v", s)
	}
	// The next pass has sent less so far: the rate starts over.
	if bps, _ := s.update(MiB, 100*MiB, 1024, t0.Add(20*time.Second)); bps != 0 {
		t.Errorf("rate at a new pass %d, want 0", bps)
	}
	if _, eta := s.update(100*MiB, 100*MiB, 2048, t0.Add(30*time.Second)); eta != 0 {
		t.Errorf("ETA of a complete scan %d, want 0", eta)
	}
}
