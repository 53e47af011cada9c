package throttle

import (
	"context"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Clock is the time source a Limiter waits on; tests pass a fake one.
type Clock interface {
	Now() time.Time
	// After behaves like time.After.
	After(d time.Duration) <-chan time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

func (RealClock) Now() time.Time                         { return time.Now() }
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Limiter paces a sender at the base rate, lowered by the schedule's window
// rate when a schedule is set (paused outside every window). The token
// bucket is golang.org/x/time/rate's; what is Ferry's own is the window
// layer: at each instant a window opens, closes or changes rate, the
// bucket's limit and burst change with it, exactly at that instant. A
// caller takes tokens before it sends; a frame larger than the bucket is
// reserved in bucket-sized parts and paid back as debt, so large blocks
// work at small rates and the long-run rate stays exact. SetRate and
// SetSchedule wake waiters, so changes apply to a running sync.
type Limiter struct {
	clock   Clock
	mu      sync.Mutex
	base    Rate
	sched   *Schedule
	bucket  *rate.Limiter
	cur     Rate      // the rate the bucket runs at now
	until   time.Time // when cur may next change by the schedule (zero: never)
	changed chan struct{}
}

// maxCatchUp bounds how many window changes one call replays, each at its
// own instant, after a long sleep; beyond it the bucket jumps to now.
const maxCatchUp = 64

// NewLimiter returns a Limiter at rate base (Unlimited for none) with an
// optional schedule (nil for none). The bucket starts empty: the first
// bytes wait like every later ones.
func NewLimiter(clock Clock, base Rate, sched *Schedule) *Limiter {
	if clock == nil {
		clock = RealClock{}
	}
	now := clock.Now()
	l := &Limiter{clock: clock, base: base, sched: sched, changed: make(chan struct{})}
	l.cur = l.rateAt(now)
	// Empty the bucket at a finite limit (rate.NewLimiter starts full, and
	// an unlimited one ignores AllowN), then set the real one.
	l.bucket = rate.NewLimiter(0, burst(l.cur))
	l.bucket.AllowN(now, burst(l.cur))
	l.bucket.SetLimitAt(now, limitOf(l.cur))
	l.until = sched.NextChange(now)
	return l
}

// burst is how far ahead a sender may run: a quarter second of traffic,
// small against the 30 s over which the rate is promised to ±5%.
func burst(r Rate) int {
	if r.IsUnlimited() {
		return 64 << 10
	}
	return int(max(64<<10, float64(r)/4))
}

func limitOf(r Rate) rate.Limit {
	if r.IsUnlimited() {
		return rate.Inf
	}
	return rate.Limit(r)
}

// RateAt returns the effective rate at t.
func (l *Limiter) RateAt(t time.Time) Rate {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rateAt(t)
}

func (l *Limiter) rateAt(t time.Time) Rate {
	r := l.base
	if l.sched != nil {
		r = min(r, l.sched.RateAt(t))
	}
	return r
}

// setAt runs the bucket at r from t on; tokens earned before t were earned
// at the old rate.
func (l *Limiter) setAt(t time.Time, r Rate) {
	if r == l.cur {
		return
	}
	l.bucket.SetLimitAt(t, limitOf(r))
	l.bucket.SetBurstAt(t, burst(r))
	l.cur = r
}

// update replays the schedule's changes up to now, each at its instant.
func (l *Limiter) update(now time.Time) {
	for k := 0; l.sched != nil && !l.until.IsZero() && !l.until.After(now); k++ {
		t := l.until
		if k == maxCatchUp {
			t = now
		}
		l.setAt(t, l.rateAt(t))
		l.until = l.sched.NextChange(t)
	}
}

// SetRate changes the base rate (0 pauses, Unlimited removes the cap).
func (l *Limiter) SetRate(r Rate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	l.update(now)
	l.base = r
	l.setAt(now, l.rateAt(now))
	l.wake()
}

// SetSchedule replaces the schedule (nil removes it).
func (l *Limiter) SetSchedule(s *Schedule) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	l.update(now)
	l.sched = s
	l.setAt(now, l.rateAt(now))
	l.until = s.NextChange(now)
	l.wake()
}

func (l *Limiter) wake() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Wait blocks until n bytes may be sent, or ctx ends. While paused it
// reserves nothing; once a rate applies it reserves n bytes and waits until
// the bucket has paid them back, re-planning whenever a window or SetRate
// changes the rate.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	l.mu.Lock()
	var held []*rate.Reservation
	for {
		now := l.clock.Now()
		l.update(now)
		if l.cur.IsUnlimited() {
			l.mu.Unlock()
			return nil
		}
		if held == nil && l.cur > 0 {
			for left, b := n, l.bucket.Burst(); left > 0; left -= b {
				held = append(held, l.bucket.ReserveN(now, min(left, b)))
			}
		}
		tokens := l.bucket.TokensAt(now)
		if held != nil && tokens >= 0 {
			l.mu.Unlock()
			return nil
		}
		var d time.Duration = -1 // -1: until something changes
		if held != nil && l.cur > 0 {
			d = max(time.Duration(-tokens/float64(l.cur)*float64(time.Second)), time.Millisecond)
		}
		if !l.until.IsZero() {
			if u := l.until.Sub(now); d < 0 || u < d {
				d = max(u, time.Millisecond)
			}
		}
		var timer <-chan time.Time
		if d >= 0 {
			timer = l.clock.After(d)
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-timer:
		case <-changed:
		case <-ctx.Done():
			l.mu.Lock()
			now := l.clock.Now()
			for _, r := range slices.Backward(held) {
				r.CancelAt(now) // give back what was not used
			}
			l.mu.Unlock()
			return ctx.Err()
		}
		l.mu.Lock()
	}
}
