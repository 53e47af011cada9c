// Package ecsemu is an emulator of Alibaba Cloud's ECS RPC API (version
// 2014-05-26) and the STS calls a RAM-role credential needs (2015-04-01),
// speaking the wire protocol exactly as alibaba-cloud-sdk-go sends it, so
// that Ferry's Alibaba provider is tested through the real SDK.
//
// What it checks like ECS does: the signature (HMAC-SHA1, SignatureVersion
// 1.0, key SECRET&, over POST&%2F&percentEncode(sorted canonical query)), the
// timestamp (15 minutes either way), the nonce (a replayed one is refused),
// the AccessKey (and STS token), RAM permissions per action, unknown actions
// and unknown parameters, each with ECS's error codes and a RequestId.
// Resources move through ECS's asynchronous states on a clock (instances
// Pending → Starting → Running, disks Creating → Available → In_use,
// snapshots progressing 0 % → 100 % accomplished, images Creating →
// Available); lists page with PageNumber/PageSize or NextToken/MaxResults,
// newest first; ClientToken makes creation idempotent; DryRun validates
// without acting. Faults can be injected (a code, or a call that hangs).
//
// Disks are sparse files under DIR/disks; snapshots are copy-on-write
// copies (FICLONE where the filesystem has it, else a sparse copy). An
// instance of a public image runs its user data as a shell script on this
// host (a gateway instance is a real `ferry gateway` process that sees its
// attached disks under $ECSEMU_DEVICE_ROOT/dev/vdX); an instance of a custom
// image boots its disks under qemu (engine/vm). Each instance has a private
// address in 127.16.0.0/12 where the security group's TCP rules are served.
//
// `ferry ecsemu` runs it standalone.
package ecsemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Versions served.
const (
	ECSVersion = "2014-05-26"
	STSVersion = "2015-04-01"
)

// Timing says how long each asynchronous state lasts. Zero durations make
// the state pass at the next look (never within the call that entered it,
// as on ECS).
type Timing struct {
	InstancePending  time.Duration
	InstanceStarting time.Duration
	InstanceStopping time.Duration
	DiskCreating     time.Duration
	DiskAttaching    time.Duration
	DiskDetaching    time.Duration
	Snapshot         time.Duration // progressing 0 % → 100 %
	Image            time.Duration
}

// DefaultTiming is short enough for tests and long enough that a caller
// must poll.
var DefaultTiming = Timing{
	InstancePending: 300 * time.Millisecond, InstanceStarting: 300 * time.Millisecond,
	InstanceStopping: 200 * time.Millisecond, DiskCreating: 200 * time.Millisecond,
	DiskAttaching: 100 * time.Millisecond, DiskDetaching: 100 * time.Millisecond,
	Snapshot: 500 * time.Millisecond, Image: 300 * time.Millisecond,
}

// Quota bounds what the account may hold.
type Quota struct {
	Instances int // default 50
	Disks     int // default 200
	Snapshots int // default 1000 (and 256 manual snapshots per disk, as ECS)
}

// Options configure a Server.
type Options struct {
	// Dir holds state.json, disks/, snapshots/, instances/ and vm/.
	Dir string
	// Region and Zone (defaults cn-hangzhou, cn-hangzhou-h).
	Region, Zone string
	// Keys are the AccessKey pairs accepted; default one root key
	// (DefaultKeyID, DefaultKeySecret).
	Keys []Key
	// Roles can be assumed with STS AssumeRole by keys allowed sts:AssumeRole.
	Roles []Role
	// AccountID is the account's numeric id (default 1000000000000001).
	AccountID string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Timing of the asynchronous states (default DefaultTiming).
	Timing *Timing
	// TimestampWindow is how far a request's Timestamp may be from Now
	// (default 15 minutes, as ECS).
	TimestampWindow time.Duration
	Quota           Quota
	// Path is prepended to PATH for the scripts of process instances (where
	// the ferry binary is); default the directory of this executable.
	Path []string
	// VM configures instances of custom images (booted under qemu).
	VM VMOptions
	// AdminToken, when set, enables the /_ecsemu/v1/ routes (faults,
	// inventory, call counts) for callers presenting it as a Bearer token.
	AdminToken string
	// Logf receives one line per call and per state change (default log.Printf).
	Logf func(format string, args ...any)
}

// Default credentials of an emulator started without Keys.
const (
	DefaultKeyID     = "LTAI5tEmulatorRootKey"
	DefaultKeySecret = "ecsemu-root-secret"
)

// Server is the emulator; it is an http.Handler.
type Server struct {
	opt        Options
	timing     Timing
	regionCode string
	keys       map[string]Key
	roles      map[string]Role

	mu         sync.Mutex
	st         *state
	nonces     map[string]time.Time
	noncePrune int
	faults     []*faultRule
	calls      map[string]int
	rt         *runtime

	closed chan struct{}
	done   sync.WaitGroup
}

// New opens (creating) the emulator's directory and state.
func New(opt Options) (*Server, error) {
	if opt.Dir == "" {
		return nil, errors.New("ecsemu: Options.Dir is required")
	}
	if opt.Region == "" {
		opt.Region = "cn-hangzhou"
	}
	if opt.Zone == "" {
		opt.Zone = opt.Region + "-h"
	}
	if opt.AccountID == "" {
		opt.AccountID = "1000000000000001"
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.TimestampWindow == 0 {
		opt.TimestampWindow = 15 * time.Minute
	}
	if opt.Logf == nil {
		opt.Logf = log.Printf
	}
	if opt.Quota.Instances == 0 {
		opt.Quota.Instances = 50
	}
	if opt.Quota.Disks == 0 {
		opt.Quota.Disks = 200
	}
	if opt.Quota.Snapshots == 0 {
		opt.Quota.Snapshots = 1000
	}
	if len(opt.Keys) == 0 {
		opt.Keys = []Key{{ID: DefaultKeyID, Secret: DefaultKeySecret}}
	}
	if opt.Path == nil {
		if exe, err := os.Executable(); err == nil {
			opt.Path = []string{filepath.Dir(exe)}
		}
	}
	abs, err := filepath.Abs(opt.Dir)
	if err != nil {
		return nil, err
	}
	opt.Dir = abs
	for _, d := range []string{"disks", "snapshots", "instances", "tmp"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o700); err != nil {
			return nil, err
		}
	}
	s := &Server{opt: opt, timing: DefaultTiming, keys: map[string]Key{}, roles: map[string]Role{},
		nonces: map[string]time.Time{}, noncePrune: 4096, calls: map[string]int{}, closed: make(chan struct{})}
	if opt.Timing != nil {
		s.timing = *opt.Timing
	}
	s.regionCode = regionCode(opt.Region)
	for _, k := range opt.Keys {
		s.keys[k.ID] = k
	}
	for _, r := range opt.Roles {
		s.roles[strings.ToLower(r.Name)] = r
	}
	st, err := loadState(s.statePath())
	if err != nil {
		return nil, err
	}
	if st == nil {
		st = newState()
	}
	s.st = st
	s.seed()
	s.rt = newRuntime(s)
	s.mu.Lock()
	err = s.rt.recover()
	if err == nil {
		err = s.save()
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	s.done.Add(1)
	go s.ticker()
	return s, nil
}

func (s *Server) statePath() string { return filepath.Join(s.opt.Dir, "state.json") }

func (s *Server) save() error { return s.st.save(s.statePath()) }

// regionCode is the two letters ECS puts into ids after the prefix.
func regionCode(region string) string {
	switch region {
	case "cn-hangzhou":
		return "bp"
	case "cn-shanghai":
		return "uf"
	case "cn-beijing":
		return "2z"
	case "ap-southeast-1":
		return "t4"
	}
	return "em"
}

// seed creates what a new account has: a default VPC and vSwitch, and the
// public images.
func (s *Server) seed() {
	now := s.opt.Now().UTC()
	if len(s.st.VPCs) == 0 {
		v := &vpc{Seq: s.nextSeq(), ID: s.newID("vpc"), Name: "default", CIDR: "127.16.0.0/12", IsDefault: true, CreatedAt: now}
		s.st.VPCs[v.ID] = v
		sw := &vswitch{Seq: s.nextSeq(), ID: s.newID("vsw"), VpcID: v.ID, Name: "default", ZoneID: s.opt.Zone,
			CIDR: "127.16.0.0/16", IsDefault: true, CreatedAt: now}
		s.st.VSwitches[sw.ID] = sw
	}
	for _, im := range publicImages {
		if _, ok := s.st.Images[im.ID]; !ok {
			c := im
			c.Seq, c.CreatedAt, c.Since, c.Status, c.Owner = s.nextSeq(), now, now, "Available", "system"
			s.st.Images[c.ID] = &c
		}
	}
}

// Close stops every instance's process or VM and the clock.
func (s *Server) Close() error {
	select {
	case <-s.closed:
		return nil
	default:
	}
	close(s.closed)
	s.done.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rt.shutdown()
	return s.save()
}

// ticker advances the asynchronous states even when nobody calls.
func (s *Server) ticker() {
	defer s.done.Done()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
			s.mu.Lock()
			if s.advance(s.opt.Now().UTC()) {
				if err := s.save(); err != nil {
					s.opt.Logf("ecsemu: save state: %v", err)
				}
			}
			s.mu.Unlock()
		}
	}
}

// obj is a JSON object of an answer.
type obj = map[string]any

// action is one API operation.
type action struct {
	name     string
	product  string   // "ecs" or "sts"
	params   []string // accepted beyond the common ones, repeated ones as NAME.N[.FIELD]
	dryRun   bool     // accepts DryRun
	write    bool     // changes state (saved; ClientToken honoured when accepted)
	noRegion bool     // RegionId not required
	run      func(*call) (obj, error)
	allowed  map[string]bool
}

var actions = map[string]map[string]*action{}

func register(a *action) {
	if a.product == "" {
		a.product = "ecs"
	}
	a.allowed = set(a.params...)
	if a.dryRun {
		a.allowed["DryRun"] = true
	}
	if actions[a.product] == nil {
		actions[a.product] = map[string]*action{}
	}
	actions[a.product][a.name] = a
}

// Actions lists the ECS actions served, sorted (for docs and tests).
func Actions() []string {
	var out []string
	for n := range actions["ecs"] {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ActionParams lists an action's accepted parameters beyond the common ones.
func ActionParams(product, name string) []string {
	a := actions[product][name]
	if a == nil {
		return nil
	}
	out := make([]string, 0, len(a.allowed))
	for p := range a.allowed {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// ServeHTTP answers one RPC call (any path but /_ecsemu/).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_ecsemu/") {
		s.serveAdmin(w, r)
		return
	}
	reqID := strings.ToUpper(uuid.NewString())
	answer, err := s.serve(r, reqID)
	if errors.Is(err, errHangUp) {
		// A fault that drops the connection without an answer.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("x-acs-request-id", reqID)
	var ae *apiError
	if err != nil {
		if !errors.As(err, &ae) {
			s.opt.Logf("ecsemu: %s: internal error: %v", reqID, err)
			ae = errInternal
		}
		host := "ecs." + s.opt.Region + ".aliyuncs.com"
		w.WriteHeader(ae.Status)
		json.NewEncoder(w).Encode(obj{"RequestId": reqID, "HostId": host, "Code": ae.Code, "Message": ae.Message,
			"Recommend": "https://api.aliyun.com/troubleshoot?q=" + ae.Code + "&product=Ecs&requestId=" + reqID})
		return
	}
	answer["RequestId"] = reqID
	json.NewEncoder(w).Encode(answer)
}

var errHangUp = errors.New("hang up")

func (s *Server) serve(r *http.Request, reqID string) (obj, error) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return nil, errActionNotFound
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		return nil, newErr(400, "InvalidParameter", "The request could not be parsed: %v", err)
	}
	io.Copy(io.Discard, r.Body)
	params := make(map[string]string, len(r.Form))
	for k, vs := range r.Form {
		if len(vs) != 1 {
			return nil, errInvalidWhy(k, "given more than once")
		}
		params[k] = vs[0]
	}
	name := params["Action"]
	if name == "" {
		return nil, errMissing("Action")
	}
	var product string
	switch params["Version"] {
	case ECSVersion:
		product = "ecs"
	case STSVersion:
		product = "sts"
	case "":
		return nil, errMissing("Version")
	default:
		return nil, errVersion
	}
	if f := params["Format"]; f != "" && !strings.EqualFold(f, "JSON") {
		return nil, newErr(400, "InvalidParameter.Format", "The emulator answers JSON only; Format %q is not served.", f)
	}

	s.mu.Lock()
	now := s.opt.Now().UTC()
	if s.advance(now) {
		s.save()
	}
	s.calls[product+":"+name]++
	acct, err := s.authenticate(r.Method, params, now)
	if err != nil {
		s.mu.Unlock()
		s.opt.Logf("ecsemu: %s %s refused: %v", reqID, name, err)
		return nil, err
	}
	a := actions[product][name]
	if a == nil {
		s.mu.Unlock()
		return nil, errActionNotFound
	}
	fault := s.takeFault(name)
	if fault != nil && !fault.Execute {
		s.mu.Unlock()
		s.opt.Logf("ecsemu: %s %s: injected %s", reqID, name, fault.Code)
		return s.fault(r.Context(), fault)
	}
	for k := range params {
		if !commonParams[k] && !a.allowed[pattern(k)] {
			s.mu.Unlock()
			return nil, errInvalid(k)
		}
	}
	if !a.noRegion {
		switch rid := params["RegionId"]; {
		case rid == "":
			s.mu.Unlock()
			return nil, errMissing("RegionId")
		case rid != s.opt.Region:
			s.mu.Unlock()
			return nil, errRegionNotFound
		}
	}
	if !allowed(acct.allow, product+":"+name) {
		s.mu.Unlock()
		s.opt.Logf("ecsemu: %s %s: %s lacks %s:%s", reqID, name, acct.user, product, name)
		return nil, errForbiddenRAM
	}
	c := &call{s: s, action: a, params: params, requestID: reqID, now: now, account: acct, principal: acct.user}
	if a.dryRun {
		if c.dry, err = c.boolean("DryRun", false); err != nil {
			s.mu.Unlock()
			return nil, err
		}
	}
	var tokenKey string
	if a.write && a.allowed["ClientToken"] && params["ClientToken"] != "" && !c.dry {
		tok := params["ClientToken"]
		if len(tok) > 64 {
			s.mu.Unlock()
			return nil, newErr(400, "InvalidClientToken.ValueNotSupported", "The ClientToken provided is invalid.")
		}
		tokenKey = acct.keyID + "/" + name + "/" + tok
		if rec, ok := s.st.Tokens[tokenKey]; ok {
			s.mu.Unlock()
			if rec.Fingerprint != c.fingerprint() {
				return nil, errIdempotent
			}
			out := obj{}
			for k, v := range rec.Answer {
				out[k] = v
			}
			s.opt.Logf("ecsemu: %s %s: ClientToken %s seen, same answer", reqID, name, tok)
			return s.finish(r.Context(), fault, out, nil)
		}
	}
	answer, err := a.run(c)
	if err == nil && c.dry {
		err = errDryRun
	}
	if err == nil && a.write {
		if tokenKey != "" {
			saved := make(obj, len(answer))
			for k, v := range answer {
				saved[k] = v
			}
			s.st.Tokens[tokenKey] = &tokenRecord{Fingerprint: c.fingerprint(), Answer: saved, At: now}
		}
		if serr := s.save(); serr != nil {
			s.opt.Logf("ecsemu: save state: %v", serr)
		}
	}
	after := c.after
	s.mu.Unlock()
	if err == nil {
		for _, f := range after {
			if ferr := f(); ferr != nil {
				err = ferr
				break
			}
		}
	}
	if err != nil {
		s.opt.Logf("ecsemu: %s %s: %v", reqID, name, err)
	} else {
		s.opt.Logf("ecsemu: %s %s by %s: ok", reqID, name, acct.user)
	}
	return s.finish(r.Context(), fault, answer, err)
}

// finish applies an executing fault (the call happened, the answer is lost).
func (s *Server) finish(ctx context.Context, f *faultRule, answer obj, err error) (obj, error) {
	if f != nil && f.Execute {
		return s.fault(ctx, f)
	}
	return answer, err
}

// advance moves every resource whose state's time has come; it reports
// whether anything changed. Runs with s.mu held.
func (s *Server) advance(now time.Time) bool {
	changed := false
	for _, in := range s.st.Instances {
		if s.advanceInstance(in, now) {
			changed = true
		}
	}
	for _, d := range s.st.Disks {
		if s.advanceDisk(d, now) {
			changed = true
		}
	}
	for _, sn := range s.st.Snapshots {
		if sn.Status == "progressing" && sn.DataReady && now.Sub(sn.ReadyAt) >= s.timing.Snapshot && now.After(sn.CreatedAt) {
			sn.Status = "accomplished"
			changed = true
		}
	}
	for _, im := range s.st.Images {
		if im.Status == "Creating" && now.Sub(im.Since) >= s.timing.Image && now.After(im.Since) {
			im.Status, im.Since = "Available", now
			changed = true
		}
	}
	return changed
}

// progress is a snapshot's Progress percentage.
func (s *Server) progress(sn *snapshot, now time.Time) int {
	switch {
	case sn.Status == "accomplished":
		return 100
	case !sn.DataReady:
		return 0
	case s.timing.Snapshot <= 0:
		return 99
	}
	p := int(100 * now.Sub(sn.ReadyAt) / s.timing.Snapshot)
	return max(0, min(p, 99))
}

// paginate reads PageNumber/PageSize, or NextToken/MaxResults where the
// action has them, and returns the page of items (newest first) with the
// answer's paging fields. ECS's defaults: 10 per page, at most maxSize. A
// NextToken names the last item returned, so items created while a caller
// pages do not shift the pages it has not read yet.
func paginate[T any](c *call, items []*T, seq func(*T) int64, maxSize int, tokens bool) ([]*T, obj, error) {
	total := len(items)
	if tokens && (c.has("NextToken") || c.has("MaxResults")) {
		n, err := c.integer("MaxResults", 10, 1, maxSize)
		if err != nil {
			return nil, nil, err
		}
		start := 0
		if t := c.str("NextToken"); t != "" {
			var after int64
			if _, err := fmt.Sscanf(t, "ecsemu:%d", &after); err != nil || after <= 0 {
				return nil, nil, errNextToken
			}
			start = sort.Search(total, func(i int) bool { return seq(items[i]) < after })
		}
		end := min(start+n, total)
		next := ""
		if end < total && end > start {
			next = fmt.Sprintf("ecsemu:%d", seq(items[end-1]))
		}
		return items[start:end], obj{"NextToken": next, "MaxResults": n, "TotalCount": total}, nil
	}
	size, err := c.integer("PageSize", 10, 1, maxSize)
	if err != nil {
		return nil, nil, errPageSize
	}
	num, err := c.integer("PageNumber", 1, 1, 1<<30)
	if err != nil {
		return nil, nil, errPageNumber
	}
	start := min((num-1)*size, total)
	end := min(start+size, total)
	f := obj{"PageNumber": num, "PageSize": size, "TotalCount": total}
	if tokens {
		f["NextToken"] = ""
	}
	return items[start:end], f, nil
}
