package migration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/recoverypoint"
	"github.com/ferry-migrate/ferry/ent/step"
	"github.com/ferry-migrate/ferry/ent/stepevent"
)

// keepSyncEvents bounds the sync step's log (a few lines a pass, a pass
// every few minutes, for the migration's life).
const keepSyncEvents = 200

// errNoAgent is the lastError of a pass no agent has asked for.
const errNoAgent = "waiting for the host's agent to ask for work: run `ferry agent run` on the host, registered with this server"

// follow (sync, phase 1) watches the requested pass for FollowFor: every
// Tick it reads each disk's session from its gateway, mirrors it into the
// migration's disks (the database, not a process, knows how far a pass
// is), and writes progress, rate and ETA (measured on the wire: the scan
// over unchanged blocks runs far faster than the link). It moves on once
// every disk has been proven equal after the pass was asked for.
func follow(ctx context.Context, r *run) (outcome, error) {
	deadline := r.l.Now().Add(r.l.FollowFor)
	t := time.NewTicker(r.l.Tick)
	defer t.Stop()
	rate := rateFrom(r.step.Data)
	for {
		mig, err := r.l.Client.Migration.Get(ctx, r.mig.ID)
		if err != nil {
			return outcome{}, err
		}
		r.mig = mig
		switch {
		case !mig.State.Replicating():
			return done(string(step.StatusSucceeded), "replication over: the migration is %s", mig.State), nil
		case passRecorded(mig):
			return goTo("next", ""), nil
		}
		complete, err := r.observe(ctx, &rate)
		if err != nil {
			return outcome{}, err
		}
		if complete {
			return next("pass %d complete: every disk proven equal to its source", mig.SyncPass), nil
		}
		if r.l.Now().After(deadline) {
			// Hand over: the next run (in a second) may be another worker's.
			if err := r.setData(ctx, rate.data()); err != nil {
				return outcome{}, err
			}
			return wait(time.Second, nil), nil
		}
		select {
		case <-ctx.Done():
			return outcome{}, ctx.Err()
		case <-t.C:
		}
	}
}

// observe reads the gateways and writes the pass's progress; it reports
// whether every disk's part of the pass is done.
func (r *run) observe(ctx context.Context, rate *rateSample) (bool, error) {
	mig := r.mig
	now := r.l.Now().UTC()
	req := mig.SyncRequestedAt
	disks := mig.Disks
	complete := req != nil
	var done, total, wire int64
	for i, d := range disks {
		total += d.SizeBytes
		gw, err := r.l.gateway(d)
		if err != nil {
			return false, err
		}
		s, err := gw.Session(ctx, d.TargetDiskID)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return false, fmt.Errorf("session of disk %s: %w", d.TargetDiskID, err)
		default:
			if !s.Opened.IsZero() {
				disks[i].StartedAt = &s.Opened
			}
			if s.Verified && !s.VerifiedAt.IsZero() {
				disks[i].SyncedAt = &s.VerifiedAt
			}
			if !s.Updated.IsZero() {
				disks[i].SeenAt = &s.Updated
			}
		}
		d = disks[i]
		switch {
		case diskPassDone(d, req):
			disks[i].BytesDone = d.SizeBytes // its WireBytes stay as last read
		case req != nil && d.StartedAt != nil && !d.StartedAt.Before(*req):
			complete = false
			disks[i].BytesDone = 0
			if err == nil && !s.Verified {
				disks[i].BytesDone = min(s.Offset, d.SizeBytes)
				disks[i].WireBytes = s.WireBytes
			}
		default:
			complete = false
			disks[i].BytesDone, disks[i].WireBytes = 0, 0
		}
		done += disks[i].BytesDone
		wire += disks[i].WireBytes
	}
	bps, eta := rate.update(done, total, wire, now)
	err := r.tx(ctx, func(tx *ent.Tx) error {
		u := tx.Migration.UpdateOneID(mig.ID).Where(migration.StateEQ(mig.State)).SetDisks(disks).
			SetBytesTotal(total).SetBytesDone(done).SetRateBps(bps).SetEtaSeconds(eta)
		if mig.LastSyncAt != nil {
			u.SetLagSeconds(int64(now.Sub(*mig.LastSyncAt).Seconds()))
		}
		if !complete && req != nil && mig.CommandSentAt == nil && now.Sub(*req) > 30*time.Second && mig.LastError == "" {
			u.SetLastError(errNoAgent) // nobody asked for the pass: say where to look
		}
		err := u.Exec(ctx)
		if ent.IsNotFound(err) {
			return nil // the state moved on; the next look sees it
		}
		return err
	})
	return complete, err
}

// recordPoint (sync, phase 2) takes a recovery point of every disk and
// records them as one RecoveryPoint; the first pass moves the migration from
// initial_sync to syncing, the final pass of a cutover wakes the cutover.
// A point the cloud already holds for this pass (a crash after taking it)
// is found by its labels and used, not taken twice.
func recordPoint(ctx context.Context, r *run) (outcome, error) {
	mig := r.mig
	if passRecorded(mig) {
		return next(""), nil
	}
	if !mig.State.Replicating() {
		return done(string(step.StatusSucceeded), "replication over: the migration is %s", mig.State), nil
	}
	kind := "sync"
	switch {
	case mig.State == ferry.MigrationInitialSync:
		kind = "initial"
	case finalPass(mig):
		kind = "cutover"
	}
	pass := strconv.Itoa(mig.SyncPass)
	var pts []ferry.DiskPoint
	var made, ids, digests []string
	var size int64
	consistent := true
	for _, d := range mig.Disks {
		rp, fresh, err := r.pointOf(ctx, d, pass, kind)
		if err != nil {
			return outcome{}, err
		}
		if fresh {
			made = append(made, rp.ID)
		}
		pt := ferry.DiskPoint{DiskName: d.Name, TargetDiskID: d.TargetDiskID, PointID: rp.ID, Digest: rp.ManifestDigest, SizeBytes: rp.SizeBytes}
		pt.Consistent, pt.Consistency = r.consistency(ctx, d)
		if !pt.Consistent {
			consistent = false
			r.l.Log.WarnContext(ctx, "recovery point is NOT a point in time", "migration", mig.ID, "pass", mig.SyncPass, "disk", d.Name, "reason", pt.Consistency)
			r.event(ctx, stepevent.LevelWarn, r.step.Phase, "pass %s: disk %s is NOT a point in time: %s", pass, d.Name, pt.Consistency)
		}
		pts = append(pts, pt)
		size += rp.SizeBytes
		ids = append(ids, rp.ID)
		digests = append(digests, rp.ManifestDigest)
	}
	now := r.l.Now().UTC()
	var row *ent.RecoveryPoint
	err := r.tx(ctx, func(tx *ent.Tx) error {
		var err error
		row, err = tx.RecoveryPoint.Create().SetTenantID(mig.TenantID).SetMigrationID(mig.ID).SetExternalID(strings.Join(ids, ",")).
			SetSizeBytes(size).SetManifestDigest(strings.Join(digests, ",")).SetLabels([]string{kind, "pass:" + pass, "consistent:" + strconv.FormatBool(consistent)}).
			SetPoints(pts).SetCreatedAt(now).Save(ctx)
		if err != nil {
			return err
		}
		more := func(u *ent.MigrationUpdateOne) {
			// Only once per pass, whoever else might be recording it.
			u.Where(migration.Or(migration.LastSyncAtIsNil(), migration.LastSyncAtLT(*mig.SyncRequestedAt)))
			u.SetLastSyncAt(now).SetLagSeconds(0).SetBytesDone(mig.BytesTotal).SetEtaSeconds(0).SetLastError("")
		}
		if mig.State == ferry.MigrationInitialSync {
			return r.l.transition(ctx, tx.Client(), mig, ferry.MigrationSyncing, more)
		}
		u := tx.Migration.UpdateOneID(mig.ID).Where(migration.StateEQ(mig.State))
		more(u)
		return u.Exec(ctx)
	})
	if err != nil {
		// The row did not land: do not leave the points it would have named.
		for _, id := range made {
			_ = r.drv.DeleteRecoveryPoint(context.WithoutCancel(ctx), id)
		}
		return outcome{}, err
	}
	r.l.Log.InfoContext(ctx, "sync pass complete; recovery point taken", "migration", mig.ID, "pass", mig.SyncPass, "kind", kind, "points", strings.Join(ids, ","))
	r.applyRetention(ctx)
	r.pruneEvents(ctx, keepSyncEvents)
	if finalPass(mig) {
		if s, err := r.l.Client.Step.Query().Where(step.MigrationID(mig.ID), step.Kind(KindCutover), step.StatusIn(activeStatuses...)).First(ctx); err == nil {
			if err := r.l.wake(ctx, s.ID); err != nil {
				r.l.Log.WarnContext(ctx, "wake the cutover", "migration", mig.ID, "error", err)
			}
		}
	}
	return next("recovery point %d of pass %s (%s) taken: %s", row.ID, pass, kind, strings.Join(ids, ",")), nil
}

// consistency says whether the disk's pass read a point-in-time snapshot,
// and how (or why not), as its gateway recorded it with the proven state.
func (r *run) consistency(ctx context.Context, d ferry.MigrationDisk) (bool, string) {
	gw, err := r.l.gateway(d)
	if err != nil {
		return false, "unknown: " + err.Error()
	}
	s, err := gw.Session(ctx, d.TargetDiskID)
	switch {
	case err != nil:
		return false, "unknown: the gateway did not answer: " + err.Error()
	case s.Consistency == nil:
		return false, "the agent did not say how it read the disk"
	}
	return s.Consistency.Consistent, s.Consistency.Note
}

// pointOf returns the disk's point of this pass: one the cloud holds
// already (labelled with the migration and the pass), or a new one.
func (r *run) pointOf(ctx context.Context, d ferry.MigrationDisk, pass, kind string) (cloud.RecoveryPoint, bool, error) {
	have, err := r.drv.ListRecoveryPoints(ctx, d.TargetDiskID)
	if err != nil {
		return cloud.RecoveryPoint{}, false, err
	}
	mid := strconv.Itoa(r.mig.ID)
	for i := len(have) - 1; i >= 0; i-- {
		if l := have[i].Labels; l["migration"] == mid && l["pass"] == pass && l["kind"] == kind {
			return have[i], false, nil
		}
	}
	rp, err := r.drv.CreateRecoveryPoint(ctx, d.TargetDiskID, map[string]string{"migration": mid, "pass": pass, "kind": kind, "disk": d.Name})
	if err != nil {
		return cloud.RecoveryPoint{}, false, fmt.Errorf("recovery point of %s: %w", d.TargetDiskID, err)
	}
	return rp, true, nil
}

// applyRetention drops the migration's recovery points its policy does not
// keep, through cloud.ApplyRetention, never one a launch used; failures
// are logged, not fatal (the next pass tries again).
func (r *run) applyRetention(ctx context.Context) {
	rows, err := r.l.Client.RecoveryPoint.Query().Where(recoverypoint.HasMigrationWith(migration.ID(r.mig.ID))).
		WithLaunches(func(q *ent.LaunchQuery) { q.Select(launch.FieldID) }).All(ctx)
	if err != nil {
		r.l.Log.WarnContext(ctx, "retention", "migration", r.mig.ID, "error", err)
		return
	}
	byID := map[string]*ent.RecoveryPoint{}
	var pts []cloud.RecoveryPoint
	for _, rp := range rows {
		id := strconv.Itoa(rp.ID)
		byID[id] = rp
		pts = append(pts, cloud.RecoveryPoint{ID: id, CreatedAt: rp.CreatedAt})
	}
	pinned := func(p cloud.RecoveryPoint) bool { return len(byID[p.ID].Edges.Launches) > 0 }
	del := func(ctx context.Context, p cloud.RecoveryPoint) error {
		rp := byID[p.ID]
		for _, dp := range rp.Points {
			if err := r.drv.DeleteRecoveryPoint(ctx, dp.PointID); err != nil && !errors.Is(err, cloud.ErrNotFound) {
				return err
			}
		}
		return r.l.Client.RecoveryPoint.DeleteOneID(rp.ID).Exec(ctx)
	}
	deleted, err := cloud.ApplyRetention(ctx, pts, r.l.retention(r.mig), r.l.Now(), pinned, del)
	if err != nil {
		r.l.Log.WarnContext(ctx, "retention: points kept", "migration", r.mig.ID, "error", err)
	}
	if len(deleted) > 0 {
		r.l.Log.InfoContext(ctx, "retention: recovery points deleted", "migration", r.mig.ID, "rows", strings.Join(deleted, ","))
	}
}

// nextPass (sync, phase 3) waits between passes: the next continuous pass
// is requested SyncEvery after the last was recorded. A pass requested
// meanwhile (the cutover's final delta) goes straight to follow; during a
// cutover, once its final point is recorded, the step only waits for the
// migration to stop replicating.
func nextPass(ctx context.Context, r *run) (outcome, error) {
	mig := r.mig
	switch {
	case !mig.State.Replicating():
		return done(string(step.StatusSucceeded), "replication over: the migration is %s", mig.State), nil
	case !passRecorded(mig):
		return goTo("follow", ""), nil
	case mig.State == ferry.MigrationCuttingOver:
		state := mig.State
		return wait(time.Minute, func(r *run) bool { return r.mig.State != state || !passRecorded(r.mig) }), nil
	}
	now := r.l.Now().UTC()
	due := mig.LastSyncAt.Add(r.l.syncEvery(mig))
	if now.Before(due) {
		state, pass := mig.State, mig.SyncPass
		return wait(due.Sub(now), func(r *run) bool {
			return r.mig.State != state || r.mig.SyncPass != pass || !passRecorded(r.mig)
		}), nil
	}
	err := r.tx(ctx, func(tx *ent.Tx) error {
		return tx.Migration.UpdateOneID(mig.ID).Where(migration.StateEQ(mig.State), migration.SyncPass(mig.SyncPass)).
			AddSyncPass(1).SetSyncRequestedAt(now).ClearCommandSentAt().SetBytesDone(0).Exec(ctx)
	})
	if ent.IsNotFound(err) {
		return goTo("next", ""), nil // the state moved on: look again
	}
	if err != nil {
		return outcome{}, err
	}
	r.l.Log.InfoContext(ctx, "next sync pass requested", "migration", mig.ID, "pass", mig.SyncPass+1)
	return goTo("follow", "pass %d requested", mig.SyncPass+1), nil
}

// rateSample smooths a pass's rate on the wire across the follower's runs
// (kept in the step's data between them).
type rateSample struct {
	at   time.Time
	wire int64 // bytes the gateways received for the pass so far
	bps  float64
}

func rateFrom(data map[string]any) rateSample {
	var s rateSample
	if v, ok := data["rate_at"].(string); ok {
		s.at, _ = time.Parse(time.RFC3339Nano, v)
	}
	if v, ok := data["rate_wire"].(float64); ok {
		s.wire = int64(v)
	}
	if v, ok := data["rate_bps"].(float64); ok {
		s.bps = v
	}
	return s
}

func (s rateSample) data() map[string]any {
	// Numbers as JSON reads them back (float64), whether the step's data
	// comes from the database or from the run's own copy.
	return map[string]any{"rate_at": s.at.Format(time.RFC3339Nano), "rate_wire": float64(s.wire), "rate_bps": s.bps}
}

// update folds a new reading in: done of total bytes scanned, wire bytes
// received for the pass. It returns the rate on the wire (bytes/s,
// smoothed; the scan over unchanged and empty blocks runs far faster than
// the link and is not the transfer's speed) and the ETA (seconds, -1 when
// unknown): the scan still to do, times the wire bytes per scanned byte so
// far, at that rate.
func (s *rateSample) update(done, total, wire int64, now time.Time) (int64, int64) {
	switch {
	case !s.at.IsZero() && wire >= s.wire && now.After(s.at):
		inst := float64(wire-s.wire) / now.Sub(s.at).Seconds()
		s.bps = 0.5*s.bps + 0.5*inst
	case wire < s.wire:
		s.bps = 0 // a new pass
	}
	s.at, s.wire = now, wire
	eta := int64(-1)
	switch {
	case done >= total:
		eta = 0
	case s.bps > 1 && done > 0:
		eta = int64(float64(total-done) * float64(wire) / float64(done) / s.bps)
	}
	return int64(s.bps), eta
}
