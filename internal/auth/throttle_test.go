package auth_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/redistest"
)

func TestGateDelay(t *testing.T) {
	g := auth.Gate{Free: 5, Base: time.Second, Max: 15 * time.Minute}
	for _, c := range []struct {
		failures int
		want     time.Duration
	}{{0, 0}, {4, 0}, {5, time.Second}, {6, 2 * time.Second}, {8, 8 * time.Second}, {14, 512 * time.Second}, {15, 15 * time.Minute}, {1000, 15 * time.Minute}} {
		if got := g.Delay(c.failures); got != c.want {
			t.Errorf("Delay(%d) = %v, want %v", c.failures, got, c.want)
		}
	}
}

// backends runs f against a real redis-server (what production uses) and
// miniredis (the embedded queue's server): the scripts must behave alike.
func backends(t *testing.T, f func(t *testing.T, rdb redis.UniversalClient)) {
	t.Run("redis-server", func(t *testing.T) {
		o, err := redis.ParseURL(redistest.Start(t))
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClient(o)
		t.Cleanup(func() { rdb.Close() })
		f(t, rdb)
	})
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { rdb.Close() })
		f(t, rdb)
	})
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// try runs one attempt; ok says whether the throttle let it through to
// the password check, right whether that password was right.
func try(t *testing.T, th *auth.Throttle, a auth.Attempt, right bool) (bool, time.Duration) {
	t.Helper()
	tk, err := th.Begin(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Wait > 0 {
		return false, tk.Wait
	}
	if right {
		if err := tk.Succeeded(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return true, 0
}

func counts(t *testing.T, th *auth.Throttle, a auth.Attempt) auth.Counts {
	t.Helper()
	c, err := th.Failures(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	victim   = "victim@example.com"
	home     = netip.MustParseAddr("198.51.100.7")
	attacker = netip.MustParseAddr("203.0.113.66")
)

func TestThrottleProgressiveDelay(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		clk := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
		th := auth.NewThrottle(rdb, auth.DefaultPolicy, clk.now)
		a := auth.Attempt{Account: victim, IP: attacker}
		for i := 0; i < 5; i++ {
			if ok, _ := try(t, th, a, false); !ok {
				t.Fatalf("failure %d refused: the first 5 are free", i+1)
			}
		}
		// Each further attempt waits twice as long as the one before.
		for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
			ok, wait := try(t, th, a, false)
			if ok || wait != want {
				t.Fatalf("attempt %d right after failure %d: ok=%v wait=%v, want refused for %v", 6+i, 5+i, ok, wait, want)
			}
			clk.add(want - time.Millisecond)
			if ok, wait := try(t, th, a, false); ok || wait != time.Millisecond {
				t.Fatalf("1 ms early: ok=%v wait=%v", ok, wait)
			}
			clk.add(time.Millisecond)
			if ok, _ := try(t, th, a, false); !ok {
				t.Fatalf("attempt after waiting %v refused", want)
			}
		}
		if c := counts(t, th, a); c != (auth.Counts{Pair: 9, IP: 9, Account: 9}) {
			t.Fatalf("counts %+v, want 9 failures in each gate (refused attempts are not failures)", c)
		}
		// The right password after the delay works, and clears the pair gate.
		clk.add(16 * time.Second)
		if ok, _ := try(t, th, a, true); !ok {
			t.Fatal("the right password after the delay was refused")
		}
		if c := counts(t, th, a); c != (auth.Counts{Pair: 0, IP: 9, Account: 9}) {
			t.Fatalf("after success: %+v, want the pair cleared and the success not counted elsewhere", c)
		}
		// The delay never exceeds the cap, however many failures.
		for i := 0; i < 30; i++ {
			clk.add(time.Hour)
			try(t, th, auth.Attempt{Account: "other@example.com", IP: attacker}, false)
		}
		if _, wait := try(t, th, auth.Attempt{Account: "other@example.com", IP: attacker}, false); wait != 15*time.Minute {
			t.Fatalf("after 30 failures the wait is %v, want the 15 min cap", wait)
		}
	})
}

func TestThrottleCountsConcurrentAttemptsExactly(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		th := auth.NewThrottle(rdb, auth.DefaultPolicy, nil)
		a := auth.Attempt{Account: victim, IP: attacker}
		var wg sync.WaitGroup
		var mu sync.Mutex
		passed, refused := 0, 0
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tk, err := th.Begin(context.Background(), a)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if tk.Wait > 0 {
					refused++
				} else {
					passed++
				}
			}()
		}
		wg.Wait()
		if passed != 5 || refused != 45 {
			t.Fatalf("50 concurrent attempts: %d passed, %d refused; want exactly 5 (the free ones) and 45", passed, refused)
		}
		if c := counts(t, th, a); c != (auth.Counts{Pair: 5, IP: 5, Account: 5}) {
			t.Fatalf("counts %+v, want every passed attempt recorded once", c)
		}
	})
}

// TestThrottleFloodCannotLockOutTheOwner: a flood from one address slows
// that address only; a flood from many addresses slows the account for
// unknown clients, while the owner's known IP and device stay open.
func TestThrottleFloodCannotLockOutTheOwner(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		clk := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
		th := auth.NewThrottle(rdb, auth.DefaultPolicy, clk.now)
		key := []byte("0123456789abcdef0123456789abcdef")
		// The owner signed in once from home, in this browser.
		if ok, _ := try(t, th, auth.Attempt{Account: victim, IP: home}, true); !ok {
			t.Fatal("first sign-in refused")
		}
		dev := auth.CheckDevice(key, victim, auth.DeviceToken(key, victim, clk.now()), clk.now())
		if dev == "" {
			t.Fatal("device token does not verify")
		}

		// One address: 200 attempts, as fast as the throttle lets them.
		for i := 0; i < 200; i++ {
			if ok, wait := try(t, th, auth.Attempt{Account: victim, IP: attacker}, false); !ok {
				clk.add(wait)
			}
		}
		if ok, _ := try(t, th, auth.Attempt{Account: victim, IP: home}, true); !ok {
			t.Fatal("the owner at home is locked out by one attacking address")
		}

		// 300 addresses, 5 free attempts each: the account gate closes for
		// unknown clients…
		for i := 0; i < 300; i++ {
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 250)})
			if i >= 250 {
				ip = netip.AddrFrom4([4]byte{198, 18, 0, byte(i - 250)})
			}
			try(t, th, auth.Attempt{Account: victim, IP: ip}, false)
		}
		newcomer := netip.MustParseAddr("100.64.0.1")
		if ok, wait := try(t, th, auth.Attempt{Account: victim, IP: newcomer}, true); ok || wait <= 0 || wait > 15*time.Minute {
			t.Fatalf("an unknown address during the flood: ok=%v wait=%v, want slowed by at most the 15 min cap", ok, wait)
		}
		// …but not for the owner's known IP, nor the owner's browser elsewhere.
		if ok, _ := try(t, th, auth.Attempt{Account: victim, IP: home}, true); !ok {
			t.Fatal("the owner's known IP is locked out by a distributed flood")
		}
		if ok, _ := try(t, th, auth.Attempt{Account: victim, IP: newcomer, Device: dev}, true); !ok {
			t.Fatal("the owner's device on a new IP is locked out by a distributed flood")
		}
		// And the slowdown ends: after the cap, an unknown client gets its turn.
		clk.add(15 * time.Minute)
		if ok, _ := try(t, th, auth.Attempt{Account: victim, IP: newcomer}, true); !ok {
			t.Fatal("after the capped delay an unknown client is still refused")
		}
	})
}

func TestIPv6ClientsShareTheirSlash64(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		th := auth.NewThrottle(rdb, auth.DefaultPolicy, nil)
		for i := 0; i < 5; i++ {
			ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, byte(i + 1)})
			try(t, th, auth.Attempt{Account: victim, IP: ip}, false)
		}
		other := netip.MustParseAddr("2001:db8:0:1:ffff::9")
		if ok, _ := try(t, th, auth.Attempt{Account: victim, IP: other}, false); ok {
			t.Fatal("a new address in the same /64 got fresh free attempts")
		}
	})
}

func TestDeviceToken(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	tok := auth.DeviceToken(key, victim, now)
	id := auth.CheckDevice(key, victim, tok, now.Add(24*time.Hour))
	if id == "" {
		t.Fatal("valid device token refused")
	}
	got := map[string]string{
		"other account": auth.CheckDevice(key, "other@example.com", tok, now),
		"other key":     auth.CheckDevice([]byte("another-key-another-key-another!"), victim, tok, now),
		"expired":       auth.CheckDevice(key, victim, tok, now.Add(auth.DeviceTTL+time.Second)),
		"altered":       auth.CheckDevice(key, victim, alter(tok, len(tok)-3), now),
		"respelled":     auth.CheckDevice(key, victim, alter(tok, len(tok)-1), now),
		"garbage":       auth.CheckDevice(key, victim, "fdv1.x", now),
	}
	want := map[string]string{"other account": "", "other key": "", "expired": "", "altered": "", "respelled": "", "garbage": ""}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("device tokens accepted (-want +got):\n%s", d)
	}
}

// alter flips the lowest bit of the base64url value of the token's character
// at i. At len-1, the last character of a 32-byte signature, that bit
// carries nothing: a lax decoder reads the same bytes.
func alter(tok string, i int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	v := strings.IndexByte(alphabet, tok[i])
	return tok[:i] + string(alphabet[v^1]) + tok[i+1:]
}

// BenchmarkThrottleBegin is one sign-in's throttle round trip (check and
// record, one Lua call) on each backend, with every attempt from a new
// address so that none is refused.
func BenchmarkThrottleBegin(b *testing.B) {
	for _, be := range []string{"redis-server", "miniredis"} {
		b.Run(be, func(b *testing.B) {
			var rdb *redis.Client
			if be == "miniredis" {
				rdb = redis.NewClient(&redis.Options{Addr: miniredis.RunT(b).Addr()})
			} else {
				o, _ := redis.ParseURL(redistest.Start(b))
				rdb = redis.NewClient(o)
			}
			defer rdb.Close()
			th := auth.NewThrottle(rdb, auth.DefaultPolicy, nil)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				if _, err := th.Begin(context.Background(), auth.Attempt{Account: victim, IP: ip}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
