package agentapi

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	testKey = []byte("0123456789abcdef-test-key")
	now     = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
)

func mustSign(t testing.TB, c Claims) string {
	t.Helper()
	tok, err := SignRegistrationToken(testKey, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRegistrationTokenRoundTrip(t *testing.T) {
	c := Claims{TenantID: "t-1", TokenID: "rt-1", ExpiresAt: now.Add(time.Hour).Unix()}
	tok := mustSign(t, c)
	if !strings.HasPrefix(tok, "frt_") || strings.ContainsAny(tok, "+/=") {
		t.Fatalf("token %q is not frt_<base64url>.<base64url>", tok)
	}
	got, err := VerifyRegistrationToken(testKey, tok, now)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(c, got); d != "" {
		t.Fatalf("claims (-want +got):\n%s", d)
	}
}

func TestRegistrationTokenRejections(t *testing.T) {
	valid := mustSign(t, Claims{TenantID: "t-1", TokenID: "rt-1", ExpiresAt: now.Add(time.Hour).Unix()})
	payload, sig, _ := strings.Cut(strings.TrimPrefix(valid, "frt_"), ".")
	other := mustSign(t, Claims{TenantID: "t-2", TokenID: "rt-1", ExpiresAt: now.Add(time.Hour).Unix()})
	otherPayload, _, _ := strings.Cut(strings.TrimPrefix(other, "frt_"), ".")
	otherKey, _ := SignRegistrationToken([]byte("another-key-of-16-bytes"), Claims{TenantID: "t-1", TokenID: "rt-1", ExpiresAt: now.Add(time.Hour).Unix()})
	notJSON := "frt_" + b64.EncodeToString([]byte("nope")) + "." + b64.EncodeToString(mac(testKey, b64.EncodeToString([]byte("nope"))))
	cases := []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"no prefix", strings.TrimPrefix(valid, "frt_"), now, ErrTokenMalformed},
		{"no signature", "frt_" + payload, now, ErrTokenMalformed},
		{"bad base64", "frt_" + payload + ".!!!", now, ErrTokenMalformed},
		{"short signature", "frt_" + payload + "." + sig[:10], now, ErrTokenMalformed},
		{"empty", "", now, ErrTokenMalformed},
		{"signed garbage payload", notJSON, now, ErrTokenMalformed},
		{"tenant swapped", "frt_" + otherPayload + "." + sig, now, ErrTokenForged},
		{"other key", otherKey, now, ErrTokenForged},
		{"expired exactly", valid, now.Add(time.Hour), ErrTokenExpired},
		{"expired later", valid, now.Add(48 * time.Hour), ErrTokenExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyRegistrationToken(testKey, tc.token, tc.at)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			for _, other := range []error{ErrTokenMalformed, ErrTokenForged, ErrTokenExpired} {
				if other != tc.want && errors.Is(err, other) {
					t.Fatalf("error %v also matches %v; the three must be distinct", err, other)
				}
			}
		})
	}
}

func TestCredentialHash(t *testing.T) {
	a, _ := NewCredential()
	b, _ := NewCredential()
	if a == b || HashCredential(a) == HashCredential(b) || HashCredential(a) == a || len(HashCredential(a)) != 64 {
		t.Fatal("credentials must be unique and stored only as a distinct hash")
	}
}

func FuzzVerifyRegistrationToken(f *testing.F) {
	f.Add(mustSign(f, Claims{TenantID: "t", TokenID: "x", ExpiresAt: now.Add(time.Hour).Unix()}))
	f.Add("frt_.")
	f.Add("frt_e30.AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := VerifyRegistrationToken(testKey, tok, now)
		if err == nil && (c.TenantID == "" || c.TokenID == "") {
			t.Fatalf("accepted token without tenant/id: %q", tok)
		}
		if err != nil && !errors.Is(err, ErrTokenMalformed) && !errors.Is(err, ErrTokenForged) && !errors.Is(err, ErrTokenExpired) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}
