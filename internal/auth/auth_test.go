package auth_test

import (
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/auth"
)

func TestPasswords(t *testing.T) {
	if _, err := auth.HashPassword("short"); err != auth.ErrWeakPassword {
		t.Fatalf("short password: %v", err)
	}
	h, err := auth.HashPassword("a-long-enough-password")
	if err != nil {
		t.Fatal(err)
	}
	if !auth.CheckPassword(h, "a-long-enough-password") || auth.CheckPassword(h, "a-long-enough-passworD") || auth.CheckPassword("", "") {
		t.Fatal("password check is wrong")
	}
}

func TestCSRF(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	tok := auth.CSRFToken(key, "session-a")
	if !auth.CheckCSRF(key, "session-a", tok) {
		t.Fatal("valid token refused")
	}
	for _, c := range []struct{ key, sess, presented string }{
		{string(key), "session-b", tok},                        // another session's token
		{"another-key-another-key-another!", "session-a", tok}, // another server
		{string(key), "session-a", ""},
	} {
		if auth.CheckCSRF([]byte(c.key), c.sess, c.presented) {
			t.Errorf("accepted %+v", c)
		}
	}
}

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := auth.NewLimiter(3, 10*time.Minute, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allowed("k"); !ok {
			t.Fatalf("refused after %d failures", i)
		}
		l.Fail("k")
		now = now.Add(time.Minute)
	}
	ok, wait := l.Allowed("k")
	if ok || wait != 7*time.Minute {
		t.Fatalf("after 3 failures: ok=%v wait=%v, want refused for 7m", ok, wait)
	}
	if ok, _ := l.Allowed("other"); !ok {
		t.Fatal("keys are not independent")
	}
	now = now.Add(7 * time.Minute)
	if ok, _ := l.Allowed("k"); !ok {
		t.Fatal("the oldest failure did not expire")
	}
	l.Fail("k")
	l.Reset("k")
	if ok, _ := l.Allowed("k"); !ok {
		t.Fatal("reset did not clear")
	}
}
