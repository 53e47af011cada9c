package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/vmware/govmomi/simulator"

	"github.com/ferry-migrate/ferry/ent/discoverysource"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/jobs"
)

// TestDiscoverySourceStoredAndRun stores a vCenter source through the API
// (the govmomi simulator serves a vCenter on loopback), runs it through the
// job handler, and checks the VMs became hosts, the outcome is on the
// source, and the password is sealed and never returned.
func TestDiscoverySourceStoredAndRun(t *testing.T) {
	model := simulator.VPX()
	defer model.Remove()
	if err := model.Create(); err != nil {
		t.Fatal(err)
	}
	// Credentials the simulator checks (its default login accepts any).
	model.Service.Listen = &url.URL{User: url.UserPassword("ferry", "vc-s3cret-pass")}
	srv := model.Service.NewServer()
	defer srv.Close()
	user := srv.URL.User.Username()
	pw, _ := srv.URL.User.Password()
	u := *srv.URL
	u.User = nil

	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	d := admin.mustGQL(`mutation($in: CreateDiscoverySourceInput!) { createDiscoverySource(input: $in) { id name url username insecure intervalMinutes nextRunAt lastStatus } }`,
		map[string]any{"in": map[string]any{"name": "lab vc", "url": u.String(), "username": user, "password": pw, "insecure": true, "intervalMinutes": 60}})
	id, _ := strconv.Atoi(dig(d, "createDiscoverySource", "id").(string))
	if dig(d, "createDiscoverySource", "nextRunAt") == nil || dig(d, "createDiscoverySource", "lastStatus") != "never" {
		t.Errorf("a scheduled source is due at once and has never run: %v", d)
	}
	// A viewer may not store credentials; a bad URL is refused with its field.
	if r := admin.gql(`mutation { createDiscoverySource(input: {name: "x", url: "ftp://vc", username: "u", password: "p"}) { id } }`, nil); r.code() != "INVALID" || !strings.Contains(r.raw, "url") {
		t.Errorf("a bad URL: %s", r.raw)
	}
	// Sealed at rest, never in an answer.
	sys := viewer.SystemContext(t.Context())
	row := ts.App.DB.Client.DiscoverySource.GetX(sys, id)
	if len(row.SecretCiphertext) == 0 || bytes.Contains(row.SecretCiphertext, []byte(pw)) {
		t.Errorf("password not sealed: %q", row.SecretCiphertext)
	}
	all := admin.gql(`{ discoverySources(first: 10) { edges { node { id name url username insecure intervalMinutes nextRunAt lastRunAt lastStatus lastError lastHosts lastImportRunID } } } }`, nil)
	if strings.Contains(all.raw, pw) || len(all.Errors) > 0 {
		t.Errorf("the list answer holds the password or failed: %s", all.raw)
	}
	// The schedule finds it due; the job reads the vCenter.
	h := &jobs.Discovery{Client: ts.App.DB.Client, Secrets: ts.App.Secrets, Queue: ts.App.Queue, Identities: ts.App.Agents.Identities, Now: time.Now, Log: ts.App.Log}
	if err := h.Due(context.Background(), asynq.NewTask(jobs.TypeDiscoveryDue, nil)); err != nil {
		t.Fatal(err)
	}
	if s := ts.App.DB.Client.DiscoverySource.GetX(sys, id); s.LastStatus != discoverysource.LastStatusQueued {
		t.Errorf("due source not queued: %s", s.LastStatus)
	}
	b, _ := json.Marshal(jobs.DiscoverySourcePayload{TenantID: row.TenantID, SourceID: id})
	if err := h.Run(context.Background(), asynq.NewTask(jobs.TypeDiscoverySource, b)); err != nil {
		t.Fatal(err)
	}
	s := ts.App.DB.Client.DiscoverySource.GetX(sys, id)
	vms := model.Count().Machine
	if s.LastStatus != discoverysource.LastStatusSucceeded || s.LastHosts != vms || s.LastImportRunID == nil || s.NextRunAt == nil || !s.NextRunAt.After(time.Now().Add(50*time.Minute)) {
		t.Errorf("after a run: status %s, %d hosts (simulator %d), import %v, next %v, error %q", s.LastStatus, s.LastHosts, vms, s.LastImportRunID, s.NextRunAt, s.LastError)
	}
	if n := ts.App.DB.Client.Host.Query().Where(host.Source("vcenter")).CountX(sys); n != vms {
		t.Errorf("%d hosts from vcenter, simulator has %d VMs", n, vms)
	}
	// A wrong password fails the run with a readable error on the source.
	admin.mustGQL(`mutation($id: ID!) { updateDiscoverySource(id: $id, input: {password: "wrong-password"}) { id } }`, map[string]any{"id": id})
	if err := h.Run(context.Background(), asynq.NewTask(jobs.TypeDiscoverySource, b)); err != nil {
		t.Fatal(err)
	}
	if s := ts.App.DB.Client.DiscoverySource.GetX(sys, id); s.LastStatus != discoverysource.LastStatusFailed || s.LastError == "" {
		t.Errorf("wrong password: status %s, error %q", s.LastStatus, s.LastError)
	}
}
