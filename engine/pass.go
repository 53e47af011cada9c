package engine

import (
	"context"
	"fmt"

	"github.com/ferry-migrate/ferry/engine/snapshot"
)

// PassDisk is one disk of a host's replication pass.
type PassDisk struct {
	Sync SyncOptions
	// Snapshot describes the disk to the snapshot methods; its Source
	// defaults to Sync.Source.
	Snapshot snapshot.Disk
}

// PassOptions configure one replication pass over the disks of one host.
type PassOptions struct {
	Disks    []PassDisk
	Snapshot snapshot.Options
	// Live reads the disks as they are, without snapshots; the pass is then
	// recorded as not a point in time.
	Live bool
	Logf func(string, ...any)
	// Started, when set, gets each disk's Syncer before it runs (for
	// SetRate and SetWindows on a running pass).
	Started func(i int, s *Syncer)
}

// PassResult is what a pass did.
type PassResult struct {
	Disks       []Progress
	Consistency Consistency
}

// RunPass replicates the disks of one host from one point in time: it
// snapshots them together (freezing their filesystems for the instant the
// snapshots are created), syncs each disk from its view, and releases the
// snapshots. A disk that cannot be snapshotted is read live, and the pass
// says so: its Consistency (recorded by the gateway with every disk's proven
// state) is then not consistent, with the reason. A snapshot that fills up
// while it is read stops the pass with an error wrapping
// snapshot.ErrFilled; nothing of it is recorded as a point in time.
//
// A sync that was interrupted in an earlier pass is not resumed from its
// checkpoint (that would mix two points in time): it starts over against
// the target's manifest, which sends only what differs.
func RunPass(ctx context.Context, opt PassOptions) (PassResult, error) {
	logf := opt.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var res PassResult
	views := make([]*snapshot.View, len(opt.Disks))
	if opt.Live {
		res.Consistency = Consistency{Note: "live read: snapshots were turned off for this pass"}
		for i, d := range opt.Disks {
			views[i] = &snapshot.View{Path: d.Sync.Source}
		}
	} else {
		disks := make([]snapshot.Disk, len(opt.Disks))
		for i, d := range opt.Disks {
			disks[i] = d.Snapshot
			if disks[i].Source == "" {
				disks[i].Source = d.Sync.Source
			}
		}
		set, err := snapshot.Take(ctx, disks, opt.Snapshot)
		if err != nil {
			return res, err
		}
		defer func() {
			if err := set.Release(context.WithoutCancel(ctx)); err != nil {
				logf("pass: %v", err)
			}
		}()
		res.Consistency = Consistency{Consistent: set.Consistent, Method: set.Methods(), Note: set.Note}
		if set.Consistent {
			logf("pass: point in time taken: %s", set.Note)
		} else {
			logf("pass: NOT a point in time: %s", set.Note)
		}
		views = set.Views
	}
	for i, d := range opt.Disks {
		so := d.Sync
		so.Source = views[i].Path
		so.Check = views[i].Check
		c := res.Consistency
		so.Consistency = &c
		so.noResume = !opt.Live
		s, err := NewSyncer(so)
		if err != nil {
			return res, &PassDiskError{Index: i, DiskID: so.DiskID, Err: err}
		}
		if opt.Started != nil {
			opt.Started(i, s)
		}
		p, err := s.Run(ctx)
		res.Disks = append(res.Disks, p)
		if err != nil {
			return res, &PassDiskError{Index: i, DiskID: so.DiskID, Err: err}
		}
	}
	return res, nil
}

// PassDiskError is RunPass's error for the disk a pass stopped at (Index
// into PassOptions.Disks); the disks before it completed, the ones after
// it were not started.
type PassDiskError struct {
	Index  int
	DiskID string
	Err    error
}

func (e *PassDiskError) Error() string { return fmt.Sprintf("disk %s: %v", e.DiskID, e.Err) }
func (e *PassDiskError) Unwrap() error { return e.Err }
