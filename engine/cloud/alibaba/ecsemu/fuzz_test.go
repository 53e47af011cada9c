package ecsemu_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/engine/cloud/alibaba/ecsemu"
)

// FuzzRequest feeds the emulator arbitrary RPC requests (query string,
// form body, method). Whatever arrives, it answers without panicking, in
// ECS's error shape (JSON with Code and RequestId) for anything it refuses,
// never with a 5xx, and a request it refuses changes nothing: without the
// key's secret no input gets past the signature, so the account stays as
// new. `go test -fuzz FuzzRequest ./engine/cloud/alibaba/ecsemu`.
func FuzzRequest(f *testing.F) {
	srv, err := ecsemu.New(ecsemu.Options{Dir: f.TempDir(), Logf: func(string, ...any) {}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	signedShape := "Action=CreateDisk&Format=JSON&Version=2014-05-26&AccessKeyId=" + ecsemu.DefaultKeyID +
		"&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce=n1&Timestamp=2026-12-01T12:00:00Z&RegionId=cn-hangzhou&Size=20&ZoneId=cn-hangzhou-h&Signature=AAAA"
	for _, s := range []struct{ method, query, body string }{
		{"GET", signedShape, ""},
		{"POST", "", signedShape},
		{"POST", "Action=DescribeRegions", "Signature=%zz&Tag.1.Key="},
		{"GET", "Action=RunInstances&Tag.99999999999.Key=a&Tag.1.Key=b&Tag.1.Key=c", ""},
		{"GET", "Timestamp=2026-13-45T99:00:00Z&SignatureVersion=2.0", ""},
		{"PUT", "", ""},
		{"GET", strings.Repeat("a=b&", 1000), ""},
	} {
		f.Add(s.method, s.query, s.body)
	}
	f.Fuzz(func(t *testing.T, method, query, body string) {
		if method != "GET" && method != "POST" {
			method = "POST"
		}
		req := httptest.NewRequest(method, "/", strings.NewReader(body))
		req.URL.RawQuery = query
		if body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s ?%q body %q: status %d: %s", method, query, body, rec.Code, rec.Body)
		}
		if rec.Code != http.StatusOK {
			var e struct{ Code, RequestId string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" || e.RequestId == "" {
				t.Fatalf("%s ?%q: status %d without ECS's error shape: %s", method, query, rec.Code, rec.Body)
			}
		}
		if inv := srv.Inventory(); !inv.Empty() {
			t.Fatalf("%s ?%q body %q (status %d) changed the account: %v", method, query, body, rec.Code, inv)
		}
	})
}
