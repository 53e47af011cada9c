package migration

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
)

// TargetDiskID names a migration's target disk for a source disk; the
// gateway gate parses the migration id back out of it.
func TargetDiskID(migrationID int, diskName string) string {
	return fmt.Sprintf("m%d-%s", migrationID, safeName(diskName))
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(s string) string {
	s = strings.Trim(unsafeChars.ReplaceAllString(strings.TrimPrefix(s, "/dev/"), "_"), "._-")
	if s == "" {
		s = "disk"
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

var targetDiskPattern = regexp.MustCompile(`^m([0-9]+)-`)

// MigrationOfDisk returns the migration id encoded in a target disk id.
func MigrationOfDisk(diskID string) (int, bool) {
	sm := targetDiskPattern.FindStringSubmatch(diskID)
	if sm == nil {
		return 0, false
	}
	id, err := strconv.Atoi(sm[1])
	return id, err == nil
}

// passRecorded reports whether the requested sync pass has completed and
// its recovery point has been recorded.
func passRecorded(mig *ent.Migration) bool {
	return mig.SyncRequestedAt != nil && mig.LastSyncAt != nil && !mig.LastSyncAt.Before(*mig.SyncRequestedAt)
}

// diskPassDone reports whether the disk's part of the pass requested at req
// is done: a session opened after the request and the gateway proved the
// disk equal after that. A sync that began before the request (say, the
// continuous pass running when a cutover was asked for) does not count.
func diskPassDone(d ferry.MigrationDisk, req *time.Time) bool {
	return req != nil && d.StartedAt != nil && d.SyncedAt != nil &&
		!d.StartedAt.Before(*req) && !d.SyncedAt.Before(*d.StartedAt)
}
