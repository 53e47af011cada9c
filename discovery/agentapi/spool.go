package agentapi

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Spool buffers sample batches on disk while the control plane is
// unreachable. It keeps at most MaxBytes, dropping the oldest batches
// first: recent load matters more to sizing than load from days ago, and a
// full disk on a production host matters more than either.
type Spool struct {
	Dir      string
	MaxBytes int64 // default 16 MiB
	Now      func() time.Time
	last     int64 // stamp of the newest file, so names sort in Put order
}

type spoolFile struct {
	name string
	size int64
}

func (s *Spool) max() int64 {
	if s.MaxBytes <= 0 {
		return 16 << 20
	}
	return s.MaxBytes
}

func (s *Spool) files() ([]spoolFile, error) {
	ents, err := os.ReadDir(s.Dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read spool: %w", err)
	}
	var out []spoolFile
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, spoolFile{e.Name(), info.Size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// Put stores a batch and trims the spool to its cap. It reports how many
// old batches were dropped to make room.
func (s *Spool) Put(b SamplesBatch) (dropped int, err error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return 0, fmt.Errorf("create spool: %w", err)
	}
	data, err := json.Marshal(b)
	if err != nil {
		return 0, err
	}
	if int64(len(data)) > s.max() {
		return 0, fmt.Errorf("batch of %d bytes exceeds the spool cap of %d bytes", len(data), s.max())
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	if s.last == 0 {
		if files, _ := s.files(); len(files) > 0 {
			fmt.Sscanf(files[len(files)-1].name, "%d-", &s.last)
		}
	}
	stamp := max(now().UnixNano(), s.last+1)
	s.last = stamp
	name := fmt.Sprintf("%020d-%s.json", stamp, safeName(b.BatchID))
	if err := writeAtomic(filepath.Join(s.Dir, name), data, 0o600); err != nil {
		return 0, err
	}
	files, err := s.files()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, f := range files {
		total += f.size
	}
	for i := 0; total > s.max() && i < len(files)-1; i++ {
		if err := os.Remove(filepath.Join(s.Dir, files[i].name)); err == nil {
			total -= files[i].size
			dropped++
		}
	}
	return dropped, nil
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// Pending reports the batches and bytes waiting to be sent.
func (s *Spool) Pending() (batches int, bytes int64, err error) {
	files, err := s.files()
	for _, f := range files {
		bytes += f.size
	}
	return len(files), bytes, err
}

// Flush sends batches oldest first and deletes each once the server has
// it. It stops at the first failure, leaving that batch and the rest for
// next time. Unreadable files are removed: they can never be sent.
func (s *Spool) Flush(ctx context.Context, send func(context.Context, SamplesBatch) error) (sent int, err error) {
	files, err := s.files()
	if err != nil {
		return 0, err
	}
	for _, f := range files {
		p := filepath.Join(s.Dir, f.name)
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var b SamplesBatch
		if json.Unmarshal(raw, &b) != nil {
			os.Remove(p)
			continue
		}
		if err := send(ctx, b); err != nil {
			return sent, err
		}
		if err := os.Remove(p); err != nil {
			return sent, fmt.Errorf("remove sent batch: %w", err)
		}
		sent++
	}
	return sent, nil
}
