package ecsemu

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Fault makes matching calls fail. It applies after the call's signature
// checked out (a throttled or refused call still costs its nonce).
type Fault struct {
	// Action is the ECS or STS action it matches; empty matches every one.
	Action string `json:"action,omitempty"`
	// Code is an ECS error code (InvalidAccessKeyId.NotFound,
	// Throttling.User, ServiceUnavailable, QuotaExceed.Snapshot,
	// IncorrectInstanceStatus, OperationConflict, …) or Timeout: the
	// connection is held without an answer and then closed.
	Code string `json:"code"`
	// Status and Message for a code the emulator does not know.
	Status  int    `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	// Times is how many matching calls fail (default 1; -1: all of them).
	Times int `json:"times,omitempty"`
	// Skip lets that many matching calls through first.
	Skip int `json:"skip,omitempty"`
	// Execute runs the call first: its effects happen, the caller gets the
	// error or, for Timeout, no answer (what ClientToken is for).
	Execute bool `json:"execute,omitempty"`
	// Hold is how long a Timeout holds the connection (default: until the
	// client gives up, at most 10 minutes).
	Hold time.Duration `json:"hold,omitempty"`
}

type faultRule struct {
	Fault
	err *apiError
}

// Inject adds a fault. Errors: a code the emulator does not know without a
// Status.
func (s *Server) Inject(f Fault) error {
	r := &faultRule{Fault: f}
	if r.Times == 0 {
		r.Times = 1
	}
	if f.Code != "Timeout" {
		if e, ok := faultErrors[f.Code]; ok && f.Status == 0 {
			r.err = e
		} else if f.Status >= 400 {
			msg := f.Message
			if msg == "" {
				msg = "Injected fault " + f.Code + "."
			}
			r.err = &apiError{Status: f.Status, Code: f.Code, Message: msg}
		} else {
			return fmt.Errorf("ecsemu: fault code %q is not known: give its HTTP status", f.Code)
		}
	}
	s.mu.Lock()
	s.faults = append(s.faults, r)
	s.mu.Unlock()
	return nil
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// takeFault returns the fault that applies to this call of name, if any.
// Runs with s.mu held.
func (s *Server) takeFault(name string) *faultRule {
	for i, r := range s.faults {
		if r.Action != "" && r.Action != name {
			continue
		}
		if r.Skip > 0 {
			r.Skip--
			continue
		}
		if r.Times > 0 {
			r.Times--
			if r.Times == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return r
	}
	return nil
}

// fault produces the fault's outcome.
func (s *Server) fault(ctx context.Context, r *faultRule) (obj, error) {
	if r.err != nil {
		return nil, r.err
	}
	hold := r.Hold
	if hold <= 0 {
		hold = 10 * time.Minute
	}
	t := time.NewTimer(hold)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-s.closed:
	}
	return nil, errHangUp
}

// Calls returns how many calls each "product:Action" received (refused
// ones included).
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// ResetCalls zeroes the call counts.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	s.calls = map[string]int{}
	s.mu.Unlock()
}

// Item is one resource of an Inventory.
type Item struct {
	ID     string            `json:"id"`
	Status string            `json:"status"`
	Name   string            `json:"name,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
}

// Inventory lists what the account holds beyond what a new account has (the
// default VPC and vSwitch, the public images), and what runs on this host.
type Inventory struct {
	Instances      []Item `json:"instances"`
	Disks          []Item `json:"disks"`
	Snapshots      []Item `json:"snapshots"`
	Images         []Item `json:"images"`
	SecurityGroups []Item `json:"security_groups"`
	// Processes and VMs are the instance runtimes alive on this host.
	Processes int `json:"processes"`
	VMs       int `json:"vms"`
}

// Empty reports whether nothing is left.
func (in Inventory) Empty() bool {
	return len(in.Instances)+len(in.Disks)+len(in.Snapshots)+len(in.Images)+len(in.SecurityGroups)+in.Processes+in.VMs == 0
}

func (in Inventory) String() string {
	var b strings.Builder
	for _, g := range []struct {
		name  string
		items []Item
	}{{"instances", in.Instances}, {"disks", in.Disks}, {"snapshots", in.Snapshots}, {"images", in.Images}, {"security groups", in.SecurityGroups}} {
		if len(g.items) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s:", g.name)
		for _, it := range g.items {
			fmt.Fprintf(&b, " %s(%s)", it.ID, it.Status)
		}
		b.WriteString("; ")
	}
	fmt.Fprintf(&b, "processes: %d; vms: %d", in.Processes, in.VMs)
	return b.String()
}

// Inventory reports what the account holds.
func (s *Server) Inventory() Inventory {
	s.mu.Lock()
	defer s.mu.Unlock()
	var inv Inventory
	for _, v := range s.st.Instances {
		inv.Instances = append(inv.Instances, Item{v.ID, v.Status, v.Name, v.Tags})
	}
	for _, v := range s.st.Disks {
		inv.Disks = append(inv.Disks, Item{v.ID, v.Status, v.Name, v.Tags})
	}
	for _, v := range s.st.Snapshots {
		inv.Snapshots = append(inv.Snapshots, Item{v.ID, v.Status, v.Name, v.Tags})
	}
	for _, v := range s.st.Images {
		if v.Owner == "self" {
			inv.Images = append(inv.Images, Item{v.ID, v.Status, v.Name, v.Tags})
		}
	}
	for _, v := range s.st.SecurityGroups {
		inv.SecurityGroups = append(inv.SecurityGroups, Item{v.ID, "Available", v.Name, v.Tags})
	}
	for _, l := range [][]Item{inv.Instances, inv.Disks, inv.Snapshots, inv.Images, inv.SecurityGroups} {
		sort.Slice(l, func(i, j int) bool { return l[i].ID < l[j].ID })
	}
	inv.Processes, inv.VMs = s.rt.alive()
	return inv
}

// serveAdmin answers /_ecsemu/v1/: GET inventory, GET calls, POST faults
// (a Fault), DELETE faults, POST calls/reset. Bearer AdminToken.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if s.opt.AdminToken == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.opt.AdminToken)) != 1 {
		http.Error(w, "ecsemu admin: a Bearer token matching --admin-token is required", http.StatusUnauthorized)
		return
	}
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	switch route := r.Method + " " + strings.TrimPrefix(r.URL.Path, "/_ecsemu/v1/"); route {
	case "GET inventory":
		reply(s.Inventory())
	case "GET calls":
		reply(s.Calls())
	case "POST calls/reset":
		s.ResetCalls()
		reply(obj{})
	case "POST faults":
		var f Fault
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&f); err != nil {
			http.Error(w, "fault: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.Inject(f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply(obj{})
	case "DELETE faults":
		s.ClearFaults()
		reply(obj{})
	default:
		http.Error(w, "ecsemu admin: no route "+route, http.StatusNotFound)
	}
}
