package alibaba_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
)

// FuzzCallbacks sends the callback routes (what the provider's instances
// call upward, reachable from the customer's VPC) arbitrary bodies and
// bearers. A real ticket for one gateway exists; whatever arrives, the
// answer is a 4xx with no record written unless the body carries that
// ticket, and nothing panics.
// `go test -fuzz FuzzCallbacks ./engine/cloud/alibaba`.
func FuzzCallbacks(f *testing.F) {
	store := alibaba.NewMemStore()
	tickets := alibaba.NewMemTickets()
	p := &alibaba.Provider{Stores: func(context.Context, string) (alibaba.Store, error) { return store, nil }, Tickets: tickets}
	h := p.Handler(nil)
	ticket, err := tickets.Mint(context.Background(), "7", "gateway/m1/n1", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct{ route, bearer, body string }{
		{"register", "", `{"token":"frc_x","fingerprint":"ab","credential_key":"AAAA","port":8443}`},
		{"register", "", `{"token":` + strings.Repeat("[", 10000)},
		{"report", "", `{"token":"frc_` + strings.Repeat("0", 64) + `","checks":[{"name":"boot","passed":true}]}`},
		{"disks", "frb_nope", ""},
		{"disks", "", ""},
		{"register", "", `{"token":"` + ticket + `x"}`},
	} {
		f.Add(s.route, s.bearer, s.body)
	}
	f.Fuzz(func(t *testing.T, route, bearer, body string) {
		method := http.MethodPost
		if route == "disks" {
			method = http.MethodGet
		}
		if strings.Contains(body, ticket) {
			return // the one real ticket: registering with it is allowed
		}
		req := httptest.NewRequest(method, "/"+url.PathEscape(route), strings.NewReader(body))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code < 400 || rec.Code >= 500 {
			t.Fatalf("%s /%s bearer %q body %q: status %d: %s", method, route, bearer, body, rec.Code, rec.Body)
		}
		if store.Len() != 0 {
			recs, _ := store.List(context.Background(), "")
			t.Fatalf("%s /%s body %q wrote records: %v", method, route, body, recs)
		}
	})
}

// FuzzSettings: an account's settings (typed in the cloud accounts form)
// either open a driver or are refused as invalid naming the setting; no
// value panics the provider. `go test -fuzz FuzzSettings ./engine/cloud/alibaba`.
func FuzzSettings(f *testing.F) {
	for _, s := range [][4]string{
		{"http://127.0.0.1:8790", "vsw-bp1abc", "10.1.0.0/16, 10.2.0.0/16", ""},
		{"ecs.cn-hangzhou.aliyuncs.com", "", "", "10.9.0.0/24"},
		{"https://", "vsw-", "10.1.0.0/33", "::/0"},
		{"", "subnet-1", ",,,", "10.0.0.1"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	p := &alibaba.Provider{Stores: func(context.Context, string) (alibaba.Store, error) { return alibaba.NewMemStore(), nil },
		Tickets: alibaba.NewMemTickets()}
	f.Fuzz(func(t *testing.T, endpoint, vswitch, sources, controls string) {
		a := cloud.Account{ID: "7", Name: "fuzz", Provider: "alibaba", Region: "cn-hangzhou", AccessKeyID: "LTAIx", Secret: []byte("y"),
			Settings: map[string]string{alibaba.SettingEndpoint: endpoint, alibaba.SettingVSwitch: vswitch,
				alibaba.SettingSourceCIDRs: sources, alibaba.SettingControlCIDRs: controls}}
		d, err := p.Driver(context.Background(), a)
		if err != nil {
			if !strings.Contains(err.Error(), "setting ") && !strings.Contains(err.Error(), "endpoint") {
				t.Fatalf("settings %v refused without naming the setting: %v", a.Settings, err)
			}
			return
		}
		_ = d
	})
}

// FuzzLaunchSettings: the launch settings (families, boot check, boot
// timeout) are taken or refused naming the setting, never anything else.
func FuzzLaunchSettings(f *testing.F) {
	for _, s := range [][3]string{
		{"g7, ecs.c7", "off", "4m"},
		{"ecs.r8i", "on", ""},
		{",,", "maybe", "1ns"},
		{"g7;rm -rf /", "", "9999h"},
		{"ecs.", "OFF", "-5m"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	p := &alibaba.Provider{Stores: func(context.Context, string) (alibaba.Store, error) { return alibaba.NewMemStore(), nil },
		Tickets: alibaba.NewMemTickets()}
	f.Fuzz(func(t *testing.T, families, bootCheck, bootTimeout string) {
		a := cloud.Account{ID: "7", Name: "fuzz", Provider: "alibaba", Region: "cn-hangzhou", AccessKeyID: "LTAIx", Secret: []byte("y"),
			Settings: map[string]string{alibaba.SettingLaunchFamilies: families, alibaba.SettingBootCheck: bootCheck,
				alibaba.SettingBootTimeout: bootTimeout}}
		if _, err := p.Driver(context.Background(), a); err != nil {
			if !errors.Is(err, cloud.ErrInvalid) || !strings.Contains(err.Error(), "setting ") {
				t.Fatalf("settings %q refused without naming the setting: %v", a.Settings, err)
			}
		}
	})
}
