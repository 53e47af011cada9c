package cloud_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

type fakeProvider struct{ name string }

func (f fakeProvider) Name() string { return f.name }
func (f fakeProvider) Open(context.Context, cloud.Account) (cloud.Driver, error) {
	return nil, errors.New("no cloud here")
}
func (f fakeProvider) Check(context.Context, cloud.Account) []cloud.Check {
	return []cloud.Check{{Name: "api", Passed: true, Message: "reached " + f.name}}
}

func TestRegistryOpensByProviderName(t *testing.T) {
	r := cloud.NewRegistry(fakeProvider{"local"}, fakeProvider{"openstack"})
	if diff := cmp.Diff([]string{"local", "openstack"}, r.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	_, err := r.Open(context.Background(), cloud.Account{Provider: "alibaba", Name: "hz"})
	if !errors.Is(err, cloud.ErrUnsupported) || !strings.Contains(err.Error(), "alibaba driver is not part of this build") {
		t.Errorf("open of a provider not built in: %v", err)
	}
	_, err = r.Open(context.Background(), cloud.Account{Provider: "openstack", Name: "lab"})
	if err == nil || !strings.Contains(err.Error(), `openstack cloud account "lab"`) {
		t.Errorf("a provider's open error does not name the account: %v", err)
	}
	if c := r.Check(context.Background(), cloud.Account{Provider: "openstack"}); len(c) != 1 || !c[0].Passed {
		t.Errorf("check of a registered provider: %+v", c)
	}
	c := r.Check(context.Background(), cloud.Account{Provider: "alibaba"})
	if len(c) != 1 || c[0].Passed || c[0].Name != "cloud API" || !strings.Contains(c[0].Message, "not part of this build") {
		t.Errorf("check of a missing provider: %+v", c)
	}
}

func TestApplyRetentionDeletesThroughTheCaller(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var pts []cloud.RecoveryPoint
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		pts = append(pts, cloud.RecoveryPoint{ID: id, CreatedAt: now.Add(time.Duration(i-5) * time.Hour)})
	}
	var calls []string
	del := func(_ context.Context, p cloud.RecoveryPoint) error {
		calls = append(calls, p.ID)
		switch p.ID {
		case "b":
			return cloud.ErrConflict // in use, the provider says
		case "c":
			return cloud.ErrNotFound // gone already
		}
		return nil
	}
	pinned := func(p cloud.RecoveryPoint) bool { return p.ID == "a" }
	got, err := cloud.ApplyRetention(context.Background(), pts, cloud.RetentionPolicy{KeepLast: 2}, now, pinned, del)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"c"}, got); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"b", "c"}, calls); diff != "" {
		t.Errorf("del called for (-want +got):\n%s", diff)
	}
	boom := errors.New("disk on fire")
	got, err = cloud.ApplyRetention(context.Background(), pts, cloud.RetentionPolicy{KeepLast: 1}, now, nil,
		func(_ context.Context, p cloud.RecoveryPoint) error {
			if p.ID == "b" {
				return boom
			}
			return nil
		})
	if !errors.Is(err, boom) || !cmp.Equal(got, []string{"a"}) {
		t.Errorf("a failing delete: %v, %v; want a deleted, then the error", got, err)
	}
	// KeepDaily is honoured: the newest point of yesterday stays.
	daily := []cloud.RecoveryPoint{{ID: "y1", CreatedAt: now.AddDate(0, 0, -1)}, {ID: "y2", CreatedAt: now.AddDate(0, 0, -1).Add(time.Hour)}, {ID: "t1", CreatedAt: now}}
	got, _ = cloud.ApplyRetention(context.Background(), daily, cloud.RetentionPolicy{KeepLast: 1, KeepDaily: 2}, now, nil,
		func(context.Context, cloud.RecoveryPoint) error { return nil })
	if diff := cmp.Diff([]string{"y1"}, got); diff != "" {
		t.Errorf("daily (-want +got):\n%s", diff)
	}
}

func TestErrorCarriesKindAndRetry(t *testing.T) {
	cause := errors.New("Throttling.User: Request was denied due to user flow control")
	err := error(&cloud.Error{Kind: cloud.ErrThrottled, Op: "CreateSnapshot", Object: "d-1", RequestID: "R-42", RetryAfter: 3 * time.Second, Err: cause})
	if !errors.Is(err, cloud.ErrThrottled) || !errors.Is(err, cause) || errors.Is(err, cloud.ErrQuota) {
		t.Errorf("errors.Is on %v", err)
	}
	if cloud.RetryAfter(err) != 3*time.Second || cloud.RetryAfter(cause) != 0 {
		t.Error("RetryAfter")
	}
	if s := err.Error(); !strings.Contains(s, "CreateSnapshot d-1") || !strings.Contains(s, "request R-42") {
		t.Errorf("message %q", s)
	}
}
