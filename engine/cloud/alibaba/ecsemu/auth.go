package ecsemu

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"
)

// Key is an AccessKey pair the emulator accepts.
type Key struct {
	ID     string
	Secret string
	// User is the RAM user owning the key; empty for the account's root.
	User string
	// Allow lists the RAM actions the key may call, as a RAM policy's Action
	// element names them ("ecs:*", "ecs:Describe*", "sts:AssumeRole");
	// empty allows everything (a root key).
	Allow []string
	// Disabled keys are refused with InvalidAccessKeyId.Inactive.
	Disabled bool
}

// Role is a RAM role that keys may assume with STS AssumeRole.
type Role struct {
	Name  string   // the ARN is acs:ram::ACCOUNT:role/NAME (lower case)
	Allow []string // what the role's session may call; empty: everything
}

// account is who a request acts as once its signature checked out.
type account struct {
	keyID string
	user  string
	allow []string
}

// tempKey is an STS session's credentials.
type tempKey struct {
	Secret  string
	Token   string
	Role    string
	Allow   []string
	Expires time.Time
}

// percentEncode is the RPC signature's encoding: RFC 3986 unreserved
// characters kept, everything else %XX (space as %20, '*' as %2A).
func percentEncode(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// stringToSign is METHOD&%2F&percentEncode(canonical query), the canonical
// query being every parameter but Signature, sorted by name, each name and
// value percent-encoded.
func stringToSign(method string, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(percentEncode(k))
		b.WriteByte('=')
		b.WriteString(percentEncode(params[k]))
	}
	return method + "&" + percentEncode("/") + "&" + percentEncode(b.String())
}

// Sign computes the Signature parameter for params with secret (exported
// for tests that forge requests by hand).
func Sign(method string, params map[string]string, secret string) string {
	m := hmac.New(sha1.New, []byte(secret+"&"))
	m.Write([]byte(stringToSign(method, params)))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// authenticate checks the signature, timestamp, nonce and key of a call and
// returns who makes it. It runs with s.mu held.
func (s *Server) authenticate(method string, p map[string]string, now time.Time) (*account, error) {
	for _, name := range []string{"AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"} {
		if p[name] == "" {
			return nil, errMissing(name)
		}
	}
	if p["SignatureMethod"] != "HMAC-SHA1" || p["SignatureVersion"] != "1.0" || (p["SignatureType"] != "" && p["SignatureType"] != "BEARERTOKEN") {
		return nil, errSignatureMethod
	}
	ts, err := time.Parse("2006-01-02T15:04:05Z", p["Timestamp"])
	if err != nil {
		return nil, errTimestampFormat
	}
	if d := now.Sub(ts); d > s.opt.TimestampWindow || d < -s.opt.TimestampWindow {
		return nil, errTimestampExpired
	}
	id := p["AccessKeyId"]
	var secret string
	acct := &account{keyID: id}
	if tk, ok := s.st.TempKeys[id]; ok {
		switch tok := p["SecurityToken"]; {
		case tok == "":
			return nil, errMissing("SecurityToken")
		case !strings.HasPrefix(tok, "CAES"):
			return nil, errTokenMalformed
		case subtle.ConstantTimeCompare([]byte(tok), []byte(tk.Token)) != 1:
			return nil, errTokenMismatch
		case !now.Before(tk.Expires):
			return nil, errTokenExpired
		}
		secret, acct.user, acct.allow = tk.Secret, "role/"+tk.Role, tk.Allow
	} else {
		k, ok := s.keys[id]
		if !ok {
			return nil, errAccessKey
		}
		if k.Disabled {
			return nil, errAccessKeyOff
		}
		if p["SecurityToken"] != "" {
			return nil, errTokenMismatch
		}
		secret, acct.user, acct.allow = k.Secret, k.User, k.Allow
		if acct.user == "" {
			acct.user = "root"
		}
	}
	want := Sign(method, p, secret)
	if subtle.ConstantTimeCompare([]byte(want), []byte(p["Signature"])) != 1 {
		return nil, newErr(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. server string to sign is:%s", stringToSign(method, p))
	}
	// The nonce is recorded only for a request that proved its key, so a
	// forger cannot burn the nonces of others.
	nk := id + "\x00" + p["SignatureNonce"]
	if _, used := s.nonces[nk]; used {
		return nil, errNonceUsed
	}
	s.nonces[nk] = ts
	if len(s.nonces) > s.noncePrune {
		for k, t := range s.nonces {
			if now.Sub(t) > s.opt.TimestampWindow {
				delete(s.nonces, k)
			}
		}
		s.noncePrune = 2*len(s.nonces) + 1024
	}
	return acct, nil
}

// allowed evaluates a RAM Action list against "product:Action".
func allowed(allow []string, perm string) bool {
	if len(allow) == 0 {
		return true
	}
	for _, a := range allow {
		if a == "*" || strings.EqualFold(a, perm) {
			return true
		}
		if ok, _ := path.Match(strings.ToLower(a), strings.ToLower(perm)); ok {
			return true
		}
	}
	return false
}
