package ecsemu

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// state is everything the emulated account holds. It is saved to
// DIR/state.json after every call that changed it (temp file, fsync,
// rename), so a restarted emulator has the same cloud.
type state struct {
	Seq            int64                     `json:"seq"`
	Instances      map[string]*instance      `json:"instances"`
	Disks          map[string]*disk          `json:"disks"`
	Snapshots      map[string]*snapshot      `json:"snapshots"`
	Images         map[string]*image         `json:"images"`
	SecurityGroups map[string]*securityGroup `json:"security_groups"`
	VPCs           map[string]*vpc           `json:"vpcs"`
	VSwitches      map[string]*vswitch       `json:"vswitches"`
	// Tokens remember ClientToken calls: account/action/token → the
	// parameters' fingerprint and the answer.
	Tokens   map[string]*tokenRecord `json:"tokens"`
	TempKeys map[string]*tempKey     `json:"temp_keys"`
}

type tokenRecord struct {
	Fingerprint string         `json:"fingerprint"`
	Answer      map[string]any `json:"answer"`
	At          time.Time      `json:"at"`
}

type instance struct {
	Seq              int64             `json:"seq"`
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	HostName         string            `json:"host_name"`
	Description      string            `json:"description,omitempty"`
	Type             string            `json:"type"`
	ImageID          string            `json:"image_id"`
	ZoneID           string            `json:"zone_id"`
	VpcID            string            `json:"vpc_id"`
	VSwitchID        string            `json:"vswitch_id"`
	SecurityGroupIDs []string          `json:"security_group_ids"`
	PrivateIP        string            `json:"private_ip"`
	BindIP           string            `json:"bind_ip"`
	UserData         string            `json:"user_data,omitempty"`
	Tags             map[string]string `json:"tags,omitempty"`
	Status           string            `json:"status"`
	Since            time.Time         `json:"since"`
	CreatedAt        time.Time         `json:"created_at"`
	StartedAt        time.Time         `json:"started_at,omitzero"`
	SystemDiskID     string            `json:"system_disk_id"`
	// Kind is how the emulator runs it: "process" (a public image: the user
	// data runs as a script on this host) or "vm" (a custom image: its
	// disks boot under qemu).
	Kind string `json:"kind"`
	// RuntimeUp is set once the process or the VM has started for the
	// current Starting; RuntimeErr when it could not.
	RuntimeUp  bool   `json:"runtime_up"`
	RuntimeErr string `json:"runtime_err,omitempty"`
	PID        int    `json:"pid,omitempty"`
}

type disk struct {
	Seq                int64             `json:"seq"`
	ID                 string            `json:"id"`
	Name               string            `json:"name,omitempty"`
	Description        string            `json:"description,omitempty"`
	Category           string            `json:"category"`
	SizeGiB            int               `json:"size_gib"`
	ZoneID             string            `json:"zone_id"`
	Type               string            `json:"type"` // system | data
	Status             string            `json:"status"`
	Since              time.Time         `json:"since"`
	InstanceID         string            `json:"instance_id,omitempty"`
	Device             string            `json:"device,omitempty"`
	SourceSnapshotID   string            `json:"source_snapshot_id,omitempty"`
	DeleteWithInstance bool              `json:"delete_with_instance"`
	EverAttached       bool              `json:"ever_attached"`
	DataReady          bool              `json:"data_ready"`
	Tags               map[string]string `json:"tags,omitempty"`
	CreatedAt          time.Time         `json:"created_at"`
	AttachedAt         time.Time         `json:"attached_at,omitzero"`
	DetachedAt         time.Time         `json:"detached_at,omitzero"`
}

type snapshot struct {
	Seq           int64             `json:"seq"`
	ID            string            `json:"id"`
	Name          string            `json:"name,omitempty"`
	Description   string            `json:"description,omitempty"`
	DiskID        string            `json:"disk_id"`
	DiskSizeGiB   int               `json:"disk_size_gib"`
	DiskType      string            `json:"disk_type"`
	DiskCategory  string            `json:"disk_category"`
	InstanceID    string            `json:"instance_id,omitempty"`
	Status        string            `json:"status"` // progressing | accomplished | failed
	DataReady     bool              `json:"data_ready"`
	ReadyAt       time.Time         `json:"ready_at,omitzero"`
	RetentionDays int               `json:"retention_days,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	// StoredBytes is what the copy took on the emulator's disk (0 for a
	// reflink), for the benchmarks.
	StoredBytes int64  `json:"stored_bytes"`
	Method      string `json:"method"`
}

type imageDisk struct {
	SnapshotID string `json:"snapshot_id,omitempty"`
	SizeGiB    int    `json:"size_gib"`
	Device     string `json:"device"`
	Type       string `json:"type"` // system | data
}

type image struct {
	Seq          int64             `json:"seq"`
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Description  string            `json:"description,omitempty"`
	Platform     string            `json:"platform"`
	OSName       string            `json:"os_name"`
	Architecture string            `json:"architecture"`
	BootMode     string            `json:"boot_mode"`
	Owner        string            `json:"owner"` // system | self
	Status       string            `json:"status"`
	Since        time.Time         `json:"since"`
	Disks        []imageDisk       `json:"disks"`
	Tags         map[string]string `json:"tags,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
}

type rule struct {
	Protocol     string    `json:"protocol"`
	PortRange    string    `json:"port_range"`
	SourceCidrIP string    `json:"source_cidr_ip"`
	Policy       string    `json:"policy"`
	Priority     int       `json:"priority"`
	NicType      string    `json:"nic_type"`
	Description  string    `json:"description,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
}

type securityGroup struct {
	Seq         int64             `json:"seq"`
	ID          string            `json:"id"`
	Name        string            `json:"name,omitempty"`
	Description string            `json:"description,omitempty"`
	VpcID       string            `json:"vpc_id"`
	Rules       []rule            `json:"rules"`
	Tags        map[string]string `json:"tags,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
}

type vpc struct {
	Seq       int64     `json:"seq"`
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CIDR      string    `json:"cidr"`
	IsDefault bool      `json:"is_default"`
	CreatedAt time.Time `json:"created_at"`
}

type vswitch struct {
	Seq       int64     `json:"seq"`
	ID        string    `json:"id"`
	VpcID     string    `json:"vpc_id"`
	Name      string    `json:"name"`
	ZoneID    string    `json:"zone_id"`
	CIDR      string    `json:"cidr"`
	IsDefault bool      `json:"is_default"`
	CreatedAt time.Time `json:"created_at"`
}

func newState() *state {
	return &state{
		Instances: map[string]*instance{}, Disks: map[string]*disk{}, Snapshots: map[string]*snapshot{},
		Images: map[string]*image{}, SecurityGroups: map[string]*securityGroup{}, VPCs: map[string]*vpc{},
		VSwitches: map[string]*vswitch{}, Tokens: map[string]*tokenRecord{}, TempKeys: map[string]*tempKey{},
	}
}

func loadState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st := newState()
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

func (st *state) save(path string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// newID makes an id in ECS's shape: a prefix, the region's two letters
// and 18 lower-case letters and digits ("i-bp1a2b...").
func (s *Server) newID(prefix string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 18)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + "-" + s.regionCode + string(b)
}

func (s *Server) nextSeq() int64 {
	s.st.Seq++
	return s.st.Seq
}

// newestFirst sorts resources the way ECS lists them: the newest first.
func newestFirst[T any](m map[string]*T, seq func(*T) int64, keep func(*T) bool) []*T {
	out := make([]*T, 0, len(m))
	for _, v := range m {
		if keep(v) {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return seq(out[i]) > seq(out[j]) })
	return out
}

func (s *Server) diskPath(id string) string { return filepath.Join(s.opt.Dir, "disks", id+".img") }
func (s *Server) snapshotPath(id string) string {
	return filepath.Join(s.opt.Dir, "snapshots", id+".img")
}
func (s *Server) instanceDir(id string) string { return filepath.Join(s.opt.Dir, "instances", id) }

// tagsJSON is the {"Tag":[{"TagKey","TagValue"}]} of a Describe answer.
func tagsJSON(tags map[string]string) obj {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]obj, 0, len(keys))
	for _, k := range keys {
		list = append(list, obj{"TagKey": k, "TagValue": tags[k]})
	}
	return obj{"Tag": list}
}

// ecsTime is how ECS writes times in answers.
func ecsTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func mergeTags(dst map[string]string, src map[string]string) map[string]string {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = map[string]string{}
	}
	for k, v := range src {
		dst[k] = v
	}
	return dst
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// DiskPath is the sparse file holding disk id: what an instance the disk
// is attached to reads and writes (for tests, and for harnesses that read a
// disk the way an attached instance would). Errors: no such disk.
func (s *Server) DiskPath(id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Disks[id] == nil {
		return "", fmt.Errorf("ecsemu: no disk %q", id)
	}
	return s.diskPath(id), nil
}

// SnapshotPath is the file holding snapshot id's bytes.
func (s *Server) SnapshotPath(id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Snapshots[id] == nil {
		return "", fmt.Errorf("ecsemu: no snapshot %q", id)
	}
	return s.snapshotPath(id), nil
}

// DefaultVSwitch names the default VPC and vSwitch a new account has (what a
// user of `ferry ecsemu` gives a Ferry cloud account).
func (s *Server) DefaultVSwitch() (vpcID, vswitchID, zoneID, cidr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sw := range s.st.VSwitches {
		if sw.IsDefault {
			return sw.VpcID, sw.ID, sw.ZoneID, sw.CIDR
		}
	}
	return "", "", "", ""
}
