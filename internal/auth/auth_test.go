package auth_test

import (
	"testing"

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
