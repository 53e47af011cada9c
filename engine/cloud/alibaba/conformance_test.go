package alibaba_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba/ecsemu"
	"github.com/ferry-migrate/ferry/engine/cloud/drivertest"
)

// ferryBin is the ferry binary the emulator's instances run (the gateway,
// the repair), built once for the package's tests.
var (
	ferryOnce sync.Once
	ferryDir  string
	ferryErr  error
)

func ferryBinary(t testing.TB) string {
	t.Helper()
	ferryOnce.Do(func() {
		ferryDir, ferryErr = os.MkdirTemp("", "ferry-alibaba-bin-")
		if ferryErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(ferryDir, "ferry"), "github.com/ferry-migrate/ferry/cmd/ferry").CombinedOutput()
		if err != nil {
			ferryErr = fmt.Errorf("go build ./cmd/ferry: %v\n%s", err, out)
		}
	})
	if ferryErr != nil {
		t.Fatal(ferryErr)
	}
	return ferryDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if ferryDir != "" {
		os.RemoveAll(ferryDir)
	}
	os.Exit(code)
}

// cloudEnv is an emulated account with the provider wired to it: the
// emulator, the callback server the instances register and report to, and
// the provider's record store.
type cloudEnv struct {
	emu      *ecsemu.Server
	provider *alibaba.Provider
	store    *alibaba.MemStore
	account  cloud.Account
	drv      *alibaba.Driver
}

func newCloud(t *testing.T, mod func(*ecsemu.Options, *alibaba.Options)) *cloudEnv {
	t.Helper()
	bin := ferryBinary(t)
	opt := ecsemu.Options{Dir: t.TempDir(), Path: []string{bin}, Logf: func(string, ...any) {}, VM: ecsemu.VMOptions{NoBoot: true},
		Timing: &ecsemu.Timing{InstancePending: 30 * time.Millisecond, InstanceStarting: 30 * time.Millisecond,
			InstanceStopping: 30 * time.Millisecond, DiskCreating: 20 * time.Millisecond, DiskAttaching: 20 * time.Millisecond,
			DiskDetaching: 20 * time.Millisecond, Snapshot: 60 * time.Millisecond, Image: 40 * time.Millisecond}}
	popt := alibaba.Options{Poll: 20 * time.Millisecond, GatewayTimeout: 90 * time.Second, RepairTimeout: 2 * time.Minute, Timeout: 20 * time.Second}
	if mod != nil {
		mod(&opt, &popt)
	}
	emu, err := ecsemu.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(emu)
	e := &cloudEnv{emu: emu, store: alibaba.NewMemStore()}
	e.provider = &alibaba.Provider{
		Stores:  func(context.Context, string) (alibaba.Store, error) { return e.store, nil },
		Tickets: alibaba.NewMemTickets(), Options: popt,
	}
	// The control plane's side the gateways call upward: the callbacks and
	// a revocation feed that revokes nothing (the feed's own tests are
	// internal/app's TestRevocationFeed and jobs/migrationtest's).
	mux := http.NewServeMux()
	mux.Handle("/cloud/v1/alibaba/", e.provider.Handler(nil))
	mux.HandleFunc(engine.RevocationsPath, func(w http.ResponseWriter, r *http.Request) {
		if _, _, err := e.provider.AuthenticateGateway(r.Context(), r.Header.Get("Authorization")); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
		json.NewEncoder(w).Encode(engine.RevocationPage{Events: []engine.Revocation{}})
	})
	cb := httptest.NewServer(mux)
	e.provider.CallbackURL = cb.URL + "/cloud/v1/alibaba"
	e.provider.RevocationsURL = cb.URL + engine.RevocationsPath
	t.Cleanup(func() { cb.Close(); api.Close(); emu.Close() })
	root, _ := alibaba.New(alibaba.Config{Region: "cn-hangzhou", Endpoint: strings.TrimPrefix(api.URL, "http://"), Scheme: "http",
		Credentials: alibaba.Credentials{AccessKeyID: ecsemu.DefaultKeyID, AccessKeySecret: ecsemu.DefaultKeySecret}})
	sws, err := root.VSwitches(context.Background(), "")
	if err != nil || len(sws) == 0 {
		t.Fatalf("vSwitches: %v, %v", sws, err)
	}
	e.account = cloud.Account{ID: "7", Name: "emulated", Provider: "alibaba", Region: "cn-hangzhou", AccessKeyID: ecsemu.DefaultKeyID,
		Secret: []byte(ecsemu.DefaultKeySecret), Settings: map[string]string{alibaba.SettingEndpoint: api.URL,
			alibaba.SettingVSwitch: sws[0].ID, alibaba.SettingSourceCIDRs: "127.0.0.0/8"}}
	e.drv, err = e.provider.Driver(context.Background(), e.account)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// agent is the source side of one disk: its bytes so far and a real
// engine.Syncer that sends what changed through the gateway the endpoint
// names, with a credential the control plane issues with the gateway's
// registered key.
type agent struct {
	mu    sync.Mutex
	files map[string]string
	dir   string
}

func (a *agent) write(t *testing.T, d *alibaba.Driver, ep cloud.GatewayEndpoint, off int64, b []byte) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	src, ok := a.files[ep.DiskID]
	if !ok {
		src = filepath.Join(a.dir, ep.DiskID+".img")
		f, err := os.Create(src)
		if err != nil {
			t.Fatal(err)
		}
		f.Truncate(ep.SizeBytes)
		f.Close()
		a.files[ep.DiskID] = src
	}
	f, err := os.OpenFile(src, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ctx := context.Background()
	gw, err := d.GatewayClient(ctx, ep.URL, ep.Fingerprint)
	if err != nil {
		t.Fatalf("gateway client of %s: %v", ep.URL, err)
	}
	cred, err := gw.IssueCredential(ep.DiskID, engine.AgentSubject(1), "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, err := engine.NewSyncer(engine.SyncOptions{Source: src, DiskID: ep.DiskID, Gateway: ep.URL, Credential: cred,
		Fingerprint: ep.Fingerprint, StateDir: filepath.Join(a.dir, "state-"+ep.DiskID), RetryFor: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(ctx); err != nil {
		t.Fatalf("sync %s through %s: %v", ep.DiskID, ep.URL, err)
	}
}

// read returns a Ferry disk's bytes from the emulator's file of its ECS
// disk (its first SizeBytes: ECS disks are whole GiB).
func (e *cloudEnv) read(t *testing.T, id string) []byte {
	t.Helper()
	ctx := context.Background()
	disk, err := e.drv.Disk(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ecsID, err := e.drv.ECSDiskID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.emu.DiskPath(ecsID)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, disk.SizeBytes)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformance runs engine/cloud's suite on Alibaba-over-emulator: real
// SDK calls, real ferry gateway and ferry repair processes on the
// emulator's instances, real agent syncs into the ECS disks.
func TestConformance(t *testing.T) {
	envs := map[cloud.Driver]*cloudEnv{}
	var mu sync.Mutex
	a := &agent{files: map[string]string{}, dir: t.TempDir()}
	checked := newCloud(t, nil)
	drivertest.Run(t, drivertest.Harness{
		Open: func(t *testing.T) cloud.Driver {
			e := newCloud(t, nil)
			mu.Lock()
			envs[e.drv] = e
			mu.Unlock()
			t.Cleanup(func() {
				// Nothing may outlive its migrations.
				for _, mid := range []string{"m1", "m2", "m7", "mt", ""} {
					if mid != "" {
						if err := e.drv.Teardown(context.Background(), mid); err != nil {
							t.Errorf("teardown %s: %v", mid, err)
						}
					}
				}
			})
			a.mu.Lock()
			a.files = map[string]string{}
			a.mu.Unlock()
			return e.drv
		},
		Write: func(t *testing.T, d cloud.Driver, ep cloud.GatewayEndpoint, off int64, b []byte) {
			a.write(t, d.(*alibaba.Driver), ep, off, b)
		},
		Read: func(t *testing.T, d cloud.Driver, id string) []byte {
			mu.Lock()
			e := envs[d]
			mu.Unlock()
			return e.read(t, id)
		},
		Provider: checked.provider,
		Account:  checked.account,
	})
}
