// Package chain is the hash that links each tenant's audit events: written
// by AuditEvent's ent hook, checked by audit.Verify. It imports nothing of
// Ferry's, so ent/schema can use it before ent is generated.
package chain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Event is what the chain hashes of one audit event.
type Event struct {
	TenantID   int
	Seq        int64
	CreatedAt  time.Time
	Actor      string
	Action     string
	ObjectType string
	ObjectID   string
	TraceID    string
	SourceIP   string
	Details    map[string]any
	Changes    map[string]any
}

// Hash returns the event's chain hash: SHA-256 over the previous hash and
// every field, each length-prefixed, the JSON maps re-encoded with sorted
// keys (as they read back from either database).
func Hash(prev string, e Event) (string, error) {
	h := sha256.New()
	field := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	field(prev)
	field(strconv.Itoa(e.TenantID))
	field(strconv.FormatInt(e.Seq, 10))
	field(e.CreatedAt.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano))
	for _, s := range []string{e.Actor, e.Action, e.ObjectType, e.ObjectID, e.TraceID, e.SourceIP} {
		field(s)
	}
	for _, m := range []map[string]any{e.Details, e.Changes} {
		b, err := canonical(m)
		if err != nil {
			return "", fmt.Errorf("audit hash: %w", err)
		}
		field(string(b))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// canonical encodes m as it reads back from a JSON column: numbers become
// float64 on the way, so an int and its stored form hash alike.
func canonical(m map[string]any) ([]byte, error) {
	if len(m) == 0 {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		return nil, err
	}
	return json.Marshal(back)
}
