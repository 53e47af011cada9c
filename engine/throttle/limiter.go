package throttle

import (
	"context"
	"sync"
	"time"
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

// Limiter is a token bucket whose rate is the base rate, lowered by the
// schedule's window rate when a schedule is set. A caller takes tokens before
// it sends; a frame larger than the bucket is allowed and paid back as debt,
// so large blocks work at small rates and the long-run rate stays exact.
// SetRate and SetSchedule wake waiters, so changes apply to a running sync.
type Limiter struct {
	clock   Clock
	mu      sync.Mutex
	base    Rate
	sched   *Schedule
	tokens  float64
	last    time.Time
	changed chan struct{}
}

// NewLimiter returns a Limiter at rate base (Unlimited for none) with an
// optional schedule (nil for none).
func NewLimiter(clock Clock, base Rate, sched *Schedule) *Limiter {
	if clock == nil {
		clock = RealClock{}
	}
	return &Limiter{clock: clock, base: base, sched: sched, last: clock.Now(), changed: make(chan struct{})}
}

// burst is how far ahead a sender may run: a quarter second of traffic,
// small against the 30 s over which the rate is promised to ±5%.
func burst(r Rate) float64 { return max(64<<10, float64(r)/4) }

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

func (l *Limiter) refill(now time.Time) {
	r := l.rateAt(l.last)
	if dt := now.Sub(l.last).Seconds(); dt > 0 {
		if r.IsUnlimited() {
			l.tokens = burst(r)
		} else {
			l.tokens = min(l.tokens+dt*float64(r), burst(r))
		}
	}
	l.last = now
}

// SetRate changes the base rate (0 pauses, Unlimited removes the cap).
func (l *Limiter) SetRate(r Rate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(l.clock.Now())
	l.base = r
	l.wake()
}

// SetSchedule replaces the schedule (nil removes it).
func (l *Limiter) SetSchedule(s *Schedule) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(l.clock.Now())
	l.sched = s
	l.wake()
}

func (l *Limiter) wake() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Wait blocks until n bytes may be sent, or ctx ends.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	l.mu.Lock()
	now := l.clock.Now()
	l.refill(now)
	if l.rateAt(now).IsUnlimited() {
		l.mu.Unlock()
		return nil
	}
	l.tokens -= float64(n)
	for {
		now = l.clock.Now()
		l.refill(now)
		r := l.rateAt(now)
		if l.tokens >= 0 || r.IsUnlimited() {
			l.mu.Unlock()
			return nil
		}
		var timer <-chan time.Time
		var d time.Duration = -1
		if r > 0 {
			d = time.Duration(-l.tokens / float64(r) * float64(time.Second))
			d = max(d, time.Millisecond)
		}
		if l.sched != nil {
			if next := l.sched.NextChange(now); !next.IsZero() {
				if until := next.Sub(now); d < 0 || until < d {
					d = max(until, time.Millisecond)
				}
			}
		}
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
			l.tokens += float64(n) // give back what was not used
			l.mu.Unlock()
			return ctx.Err()
		}
		l.mu.Lock()
	}
}
