package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Gate is one counter of failed sign-ins with a progressive delay: the
// first Free failures cost nothing, then each further attempt must wait
// Base, 2×Base, 4×Base … (never more than Max) after the previous one. A
// counter that sees no failure for Forget is dropped.
type Gate struct {
	Free   int
	Base   time.Duration
	Max    time.Duration
	Forget time.Duration
}

// Delay is how long after the last of failures the next attempt must wait.
func (g Gate) Delay(failures int) time.Duration {
	if failures < g.Free {
		return 0
	}
	d := float64(g.Base) * math.Pow(2, float64(failures-g.Free))
	if d >= float64(g.Max) {
		return g.Max
	}
	return time.Duration(d)
}

// Policy is the sign-in throttle (docs/security.md, "Sign-in and
// sessions"). An attempt is trusted when it carries a device cookie the
// account was given at a successful sign-in, or comes from an IP the
// account signed in from within KnownFor; a trusted attempt passes the Pair
// gate only, so a flood against the account from elsewhere cannot keep its
// owner out. An untrusted attempt passes all three gates.
type Policy struct {
	Pair     Gate // per account and client (the device when it has a cookie, else the IP)
	IP       Gate // per client IP over every account: one address spraying many accounts
	Account  Gate // per account over every untrusted client: many addresses against one account
	KnownFor time.Duration
}

// DefaultPolicy is the policy Ferry ships with.
var DefaultPolicy = Policy{
	Pair:     Gate{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour},
	IP:       Gate{Free: 20, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour},
	Account:  Gate{Free: 10, Base: time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour},
	KnownFor: 30 * 24 * time.Hour,
}

// Throttle keeps the sign-in gates in Redis (the queue's Redis: embedded or
// shared by every replica), so that all serve processes count the same
// failures, and each check-and-record is one Lua script: concurrent
// attempts cannot all pass a check before any of them is recorded.
type Throttle struct {
	rdb    redis.UniversalClient
	policy Policy
	now    func() time.Time
}

// NewThrottle returns a throttle on rdb; now is the clock (time.Now when nil).
func NewThrottle(rdb redis.UniversalClient, p Policy, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{rdb: rdb, policy: p, now: now}
}

// Policy returns the throttle's policy.
func (t *Throttle) Policy() Policy { return t.policy }

// Attempt names who tries to sign in.
type Attempt struct {
	Account string     // normalized email (unknown accounts are throttled alike)
	IP      netip.Addr // the client, after trusted proxies
	Device  string     // id from a verified device cookie for Account, or ""
}

// Ticket is the throttle's answer to one attempt.
type Ticket struct {
	// Wait, when positive, refuses the attempt: the next one may come after Wait.
	Wait time.Duration
	// Trusted: a known device or IP, held to the Pair gate only.
	Trusted bool
	t       *Throttle
	keys    []string // the gates this attempt was recorded in, then the known-IP key
}

// All keys share one hash tag, so the scripts work on Redis Cluster too.
const keyPrefix = "ferry:{login}:"

func accountKey(email string) string {
	h := sha256.Sum256([]byte("ferry-login:" + email))
	return hex.EncodeToString(h[:16]) // the key holds no email
}

// ipKey buckets IPv6 clients by /64: one host usually holds a whole /64.
func ipKey(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is6() && !a.Is4In6():
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.Unmap().String()
}

func (t *Throttle) keysOf(a Attempt) (pair, ip, account, known string) {
	acct, addr := accountKey(a.Account), ipKey(a.IP)
	src := "ip:" + addr
	if a.Device != "" {
		src = "dev:" + a.Device
	}
	return keyPrefix + "pair:" + acct + ":" + src, keyPrefix + "ip:" + addr, keyPrefix + "acct:" + acct, keyPrefix + "known:" + acct + ":" + addr
}

// beginScript checks the gates that apply and, only if all pass, records a
// failure in each, in one step. The caller releases the record when the
// password turns out right. KEYS: pair, ip, account, known; ARGV: now (ms),
// device (1/0), then free, base, max, forget (ms) of each gate in KEYS order.
var beginScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local trusted = ARGV[2] == '1' or redis.call('EXISTS', KEYS[4]) == 1
local gates = {1, 2, 3}
if trusted then gates = {1} end
local wait = 0
for _, i in ipairs(gates) do
  local o = 2 + (i - 1) * 4
  local free, base, max = tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])
  local v = redis.call('HMGET', KEYS[i], 'n', 't')
  local n, t = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  if n >= free then
    local d = max
    if n - free < 40 then d = math.min(max, base * 2 ^ (n - free)) end
    if t + d - now > wait then wait = t + d - now end
  end
end
local tr = 0
if trusted then tr = 1 end
if wait > 0 then return {0, math.ceil(wait), tr} end
for _, i in ipairs(gates) do
  local o = 2 + (i - 1) * 4
  redis.call('HINCRBY', KEYS[i], 'n', 1)
  redis.call('HSET', KEYS[i], 't', now)
  redis.call('PEXPIRE', KEYS[i], ARGV[o + 4])
end
return {1, 0, tr}
`)

// successScript clears the pair gate, releases the failure recorded in the
// other gates, and remembers the IP for the account. KEYS: pair, other
// gates…, known; ARGV: known-for (ms).
var successScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
for i = 2, #KEYS - 1 do
  if (tonumber(redis.call('HGET', KEYS[i], 'n')) or 0) > 0 then redis.call('HINCRBY', KEYS[i], 'n', -1) end
end
redis.call('SET', KEYS[#KEYS], '1', 'PX', ARGV[1])
return 1
`)

func ms(d time.Duration) int64 { return d.Milliseconds() }

// Begin decides on one attempt and, when it is allowed, records it as a
// failure in every gate that applied (before the password is checked, so
// that concurrent attempts are counted exactly). Call Succeeded on the
// ticket when the password was right; a wrong one needs nothing more.
func (t *Throttle) Begin(ctx context.Context, a Attempt) (*Ticket, error) {
	pair, ip, account, known := t.keysOf(a)
	dev := "0"
	if a.Device != "" {
		dev = "1"
	}
	args := []any{t.now().UnixMilli(), dev}
	for _, g := range []Gate{t.policy.Pair, t.policy.IP, t.policy.Account} {
		args = append(args, g.Free, ms(g.Base), ms(g.Max), ms(g.Forget))
	}
	res, err := beginScript.Run(ctx, t.rdb, []string{pair, ip, account, known}, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("sign-in throttle: %w", err)
	}
	if len(res) != 3 {
		return nil, fmt.Errorf("sign-in throttle: unexpected reply %v", res)
	}
	tk := &Ticket{Trusted: res[2] == 1, t: t}
	if res[0] == 0 {
		tk.Wait = time.Duration(res[1]) * time.Millisecond
		return tk, nil
	}
	tk.keys = []string{pair}
	if !tk.Trusted {
		tk.keys = append(tk.keys, ip, account)
	}
	tk.keys = append(tk.keys, known)
	return tk, nil
}

// Succeeded records that the attempt's password was right.
func (k *Ticket) Succeeded(ctx context.Context) error {
	if len(k.keys) == 0 {
		return nil
	}
	if err := successScript.Run(ctx, k.t.rdb, k.keys, ms(k.t.policy.KnownFor)).Err(); err != nil {
		return fmt.Errorf("sign-in throttle: %w", err)
	}
	return nil
}

// Counts are the failures each gate holds for an attempt.
type Counts struct{ Pair, IP, Account int }

// Failures reads the gates of a (for operators and tests).
func (t *Throttle) Failures(ctx context.Context, a Attempt) (Counts, error) {
	pair, ip, account, _ := t.keysOf(a)
	var c Counts
	for _, x := range []struct {
		key string
		n   *int
	}{{pair, &c.Pair}, {ip, &c.IP}, {account, &c.Account}} {
		v, err := t.rdb.HGet(ctx, x.key, "n").Int()
		if err != nil && err != redis.Nil {
			return c, fmt.Errorf("sign-in throttle: %w", err)
		}
		*x.n = v
	}
	return c, nil
}

// DeviceTTL is how long a device cookie vouches for a browser.
const DeviceTTL = 180 * 24 * time.Hour

const devicePrefix = "fdv1."

// DeviceToken returns a device cookie value for account: proof that this
// browser once signed in to it, signed with key and bound to the account.
// It needs no storage; a stolen one buys only its own Pair gate.
func DeviceToken(key []byte, account string, now time.Time) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	p := base64.RawURLEncoding.EncodeToString(b) + "." + strconv.FormatInt(now.Unix(), 10)
	return devicePrefix + p + "." + base64.RawURLEncoding.EncodeToString(deviceMAC(key, account, p))
}

func deviceMAC(key []byte, account, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("device:" + account + ":" + payload))
	return m.Sum(nil)
}

// CheckDevice returns the device id of token when it is a valid, unexpired
// device cookie for account, or "".
func CheckDevice(key []byte, account, token string, now time.Time) string {
	rest, ok := strings.CutPrefix(token, devicePrefix)
	if !ok {
		return ""
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return ""
	}
	p, sig := rest[:i], rest[i+1:]
	// Strict: a signature whose unused trailing bits are set is another
	// spelling of the same bytes; only the one the server wrote is taken.
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(got, deviceMAC(key, account, p)) {
		return ""
	}
	id, issued, ok := strings.Cut(p, ".")
	sec, err := strconv.ParseInt(issued, 10, 64)
	if !ok || err != nil || now.Sub(time.Unix(sec, 0)) > DeviceTTL || id == "" {
		return ""
	}
	return id
}
