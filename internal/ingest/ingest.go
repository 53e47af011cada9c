// Package ingest stores what discovery finds: it merges importer results and
// agent inventories into a tenant's hosts, disks, software and connections.
// It is the one place that translates between discovery's plain types and
// ent rows (the graph, the agent protocol and jobs all call it), so the
// merge rules live once.
//
// A batch is stored in chunks, each its own short write transaction, so
// that an upload of any size never holds SQLite's write lock for long:
// other tenants' agents and users write between two chunks.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/importrun"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// bulkRows bounds the rows of one multi-row INSERT and the ids of one IN
// list: SQLite refuses a statement with more than 32,766 parameters, and a
// host row has about 35 columns (500 × 35 = 17,500).
const bulkRows = 500

// MaxStoredErrors caps the row errors kept on an import run; the count of
// the rest is recorded.
const MaxStoredErrors = 2000

// DefaultChunkRows bounds what one transaction writes, counted in rows:
// a record costs one plus its disks and software, a connection one.
// Within it, the chunk size follows the time transactions take, aiming at
// chunkTarget each (a busy machine gets smaller chunks): that is about
// the longest a heartbeat waits behind an upload.
const DefaultChunkRows = 2000

const (
	chunkTarget  = 100 * time.Millisecond
	minChunkRows = 100
)

// refreshEvery is how often a batch stored in many chunks reads again the
// identities other writers changed meanwhile.
const refreshEvery = 2 * time.Second

// Source streams the rows of a batch too large to hold in memory (an
// upload read back from the importer's spool): every record, then every
// connection. Each method returns io.EOF after its last row.
type Source interface {
	NextRecord() (discovery.Record, error)
	NextConnection() (discovery.ObservedConnection, error)
}

// Batch is one unit of discovery to store.
type Batch struct {
	Kind        string // csv, rvtools, ss, estate, vcenter, agent, …
	Filename    string
	Actor       string
	Records     []discovery.Record
	Connections []discovery.ObservedConnection
	// Source, when set, replaces Records and Connections: the rows are
	// read from it chunk by chunk and never held together.
	Source    Source
	Errors    []discovery.RowError
	Dropped   int // errors the importer did not keep
	RowsTotal int
	// NoRun stores the batch without an ImportRun row: agents send an
	// inventory every few hours and a run per inventory would bury the
	// imports people made. Outcome.Run is then nil.
	NoRun bool
	// Anchors names stored hosts that records of the batch are known to
	// describe (Record.Anchor → host id; an agent's own host): they are
	// merged with those records whatever names and addresses now say, so a
	// renamed, re-addressed host is updated rather than duplicated.
	Anchors map[string]int
	// Identities, when set, caches stored hosts' identity keys between
	// batches (see Identities); nil reads them all for this batch.
	Identities *Identities
	// InTx, when set, runs inside the batch's first transaction, after the
	// run row is created and the first chunk merged, so that what the
	// caller links to the outcome (an agent to its host, an audit event to
	// the run) lands or fails with it. An error rolls that transaction back
	// and is returned as is.
	InTx func(ctx context.Context, tx *ent.Client, out *Outcome) error
	// ChunkRows bounds the rows of one transaction (DefaultChunkRows when
	// zero; see there).
	ChunkRows int
}

// Outcome says what a batch changed, and maps each record to its host.
type Outcome struct {
	Run *ent.ImportRun
	// HostOfRecord is the ent host id per Batch.Records index (nil for a
	// batch read from a Source).
	HostOfRecord []int
	HostsCreated int
	HostsUpdated int
	Connections  int // connections stored (new or seen again)
	// Rows is how many records and connections were stored; Chunks how
	// many transactions it took, Longest the longest of them.
	Rows    int
	Chunks  int
	Longest time.Duration
}

// Apply merges b into tenantID's inventory. A batch of at most ChunkRows
// rows is one transaction: all of its good rows land or, on a database
// error, none do. A larger one is stored chunk by chunk, records first so
// that connections find their hosts; should the database fail part-way,
// the chunks before stay stored (merging is by identity, so storing the
// same files again is safe), the run is marked failed with how many rows
// were stored, and the Outcome returned with the error says the same.
func Apply(ctx context.Context, client *ent.Client, tenantID int, b Batch, now time.Time) (*Outcome, error) {
	ctx = viewer.TenantContext(ctx, tenantID)
	idx := b.Identities
	if idx == nil {
		idx = &Identities{}
	}
	x := idx.index(tenantID)
	src := b.Source
	out := &Outcome{}
	if src == nil {
		src = &sliceSource{records: b.Records, conns: b.Connections}
		out.HostOfRecord = make([]int, len(b.Records))
	}
	limit := b.ChunkRows
	if limit <= 0 {
		limit = DefaultChunkRows
	}
	st := &stream{src: src, limit: limit, refs: map[identityKey]int{}, connsFollow: true}
	if n, ok := src.(interface{ Connections() int }); ok {
		// Refs are kept only for connections to find their hosts by.
		st.connsFollow = n.Connections() > 0
	}
	// Hosts this batch created, in increasing id order (ids only grow), and
	// the stored hosts it updated: a host created in one chunk and merged
	// again in a later one is counted once, as created.
	var created []int
	updated := map[int]bool{}
	wasCreated := func(id int) bool { _, ok := slices.BinarySearch(created, id); return ok }
	known := &knownConns{}
	records, conns := 0, 0
	var runID int
	var refreshed time.Time
	for first := true; ; first = false {
		ch, last, err := st.next()
		if err != nil {
			return out, failRun(ctx, client, runID, &b, out, fmt.Errorf("read the batch: %w", err))
		}
		// Identities are brought up to date before the write transaction:
		// a read does not hold SQLite's write lock, so heartbeats are not
		// kept waiting while an estate is scanned. Hosts created in between
		// are picked up inside the transaction, and what this batch writes
		// is learnt as it goes; so between chunks, the identities others
		// changed are read again only every refreshEvery.
		if first || time.Since(refreshed) >= refreshEvery {
			if err := x.refresh(ctx, client); err != nil {
				return out, failRun(ctx, client, runID, &b, out, err)
			}
			refreshed = time.Now()
		}
		tx, err := client.Tx(ctx)
		if err != nil {
			return out, failRun(ctx, client, runID, &b, out, fmt.Errorf("begin import: %w", err))
		}
		txStart := time.Now() // after any wait for the lock: what this chunk holds it for
		saved := *out
		var m *merged
		err = func() error {
			c := tx.Client()
			ch.anchors, ch.known, ch.tenant = b.Anchors, known, tenantID
			if m, err = merge(ctx, c, ch, x, now); err != nil {
				return err
			}
			if out.HostOfRecord != nil {
				copy(out.HostOfRecord[records:], m.hostOfRecord)
			}
			out.HostsCreated, out.HostsUpdated = len(created)+len(m.created), len(updated)
			for _, id := range m.updated {
				if !wasCreated(id) && !updated[id] {
					out.HostsUpdated++
				}
			}
			out.Connections += m.conns
			n := records + conns + len(ch.records) + len(ch.conns)
			if !b.NoRun && first {
				run, err := c.ImportRun.Create().SetKind(b.Kind).SetFilename(b.Filename).SetActor(b.Actor).
					SetStatus(importrun.StatusRunning).SetRowsTotal(b.rowsTotal()).SetErrors(storedErrors(b.Errors, b.Dropped)).Save(ctx)
				if err != nil {
					return fmt.Errorf("record import: %w", err)
				}
				runID, out.Run = run.ID, run
			}
			if first && b.InTx != nil {
				if err := b.InTx(ctx, c, out); err != nil {
					return err
				}
			}
			if runID != 0 && last {
				run, err := c.ImportRun.UpdateOneID(runID).SetStatus(b.status(n)).SetRowsImported(n).
					SetHostsCreated(out.HostsCreated).SetHostsUpdated(out.HostsUpdated).SetConnectionsImported(out.Connections).Save(ctx)
				if err != nil {
					return fmt.Errorf("record import: %w", err)
				}
				out.Run = run
			}
			return nil
		}()
		if err == nil {
			if err = tx.Commit(); err != nil {
				err = fmt.Errorf("commit import: %w", err)
			}
		} else {
			tx.Rollback()
		}
		if err != nil {
			if out.HostOfRecord != nil {
				clear(out.HostOfRecord[records:])
			}
			hor := out.HostOfRecord
			*out = saved
			out.HostOfRecord = hor
			if first {
				return out, err // nothing of the batch was stored, not even its run
			}
			return out, failRun(ctx, client, runID, &b, out, err)
		}
		if st.connsFollow {
			for i := range ch.records {
				for _, ref := range ch.records[i].Refs {
					st.refs[hashKey(ref)] = m.hostOfRecord[i]
				}
			}
		}
		x.advance(m.created)
		created = append(created, m.created...)
		slices.Sort(created[len(created)-len(m.created):]) // already in order; cheap if so
		for _, id := range m.updated {
			if !wasCreated(id) {
				updated[id] = true
			}
		}
		records, conns = records+len(ch.records), conns+len(ch.conns)
		took := time.Since(txStart)
		out.Longest = max(out.Longest, took)
		if b.ChunkRows == 0 {
			st.limit = nextLimit(st.limit, took)
		}
		out.Rows, out.Chunks = records+conns, out.Chunks+1
		if last {
			break
		}
	}
	if out.Run != nil {
		out.Run = out.Run.Unwrap()
	}
	return out, nil
}

// nextLimit sizes the next chunk from how long the last one held the
// write lock: smaller when it took longer than chunkTarget, larger (up to
// DefaultChunkRows) when it took less than half.
func nextLimit(limit int, took time.Duration) int {
	switch {
	case took > chunkTarget:
		return max(minChunkRows, int(int64(limit)*int64(chunkTarget)/int64(took)))
	case took < chunkTarget/2:
		return min(DefaultChunkRows, limit*3/2)
	}
	return limit
}

// failRun marks the run of a batch that failed part-way (when one was
// stored) and returns err. The run says how much was stored before.
func failRun(ctx context.Context, client *ent.Client, runID int, b *Batch, out *Outcome, err error) error {
	if runID == 0 {
		return err
	}
	// The request may be gone (that may be why it failed): the run is
	// still marked, within its own short deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	errs := append(storedErrors(b.Errors, b.Dropped), map[string]any{"file": "", "row": 0, "column": "",
		"reason": fmt.Sprintf("stopped after %d stored rows: %v", out.Rows, err)})
	run, uerr := client.ImportRun.UpdateOneID(runID).SetStatus(importrun.StatusFailed).SetRowsImported(out.Rows).
		SetHostsCreated(out.HostsCreated).SetHostsUpdated(out.HostsUpdated).SetConnectionsImported(out.Connections).
		SetErrors(errs).Save(ctx)
	if uerr != nil {
		return errors.Join(err, fmt.Errorf("mark the import failed: %w", uerr))
	}
	out.Run = run
	return err
}

func (b *Batch) rowsTotal() int {
	if b.RowsTotal > 0 {
		return b.RowsTotal
	}
	return len(b.Records) + len(b.Connections) + len(b.Errors)
}

// status is the final state of a run that stored n rows.
func (b *Batch) status(n int) importrun.Status {
	switch {
	case len(b.Errors) == 0 && b.Dropped == 0:
		return importrun.StatusSucceeded
	case n == 0:
		return importrun.StatusFailed
	}
	return importrun.StatusPartial
}

// storedErrors is what a run keeps of the row errors: the first
// MaxStoredErrors, then a count of the rest.
func storedErrors(rowErrs []discovery.RowError, dropped int) []map[string]any {
	errs := make([]map[string]any, 0, min(len(rowErrs), MaxStoredErrors))
	for i, e := range rowErrs {
		if i == MaxStoredErrors {
			break
		}
		errs = append(errs, map[string]any{"file": e.File, "row": e.Row, "column": e.Column, "reason": e.Reason})
	}
	if dropped += max(0, len(rowErrs)-MaxStoredErrors); dropped > 0 {
		errs = append(errs, map[string]any{"file": "", "row": 0, "column": "", "reason": fmt.Sprintf("%d more errors not shown", dropped)})
	}
	return errs
}

// stream cuts a Source into chunks, reading one row ahead so that the last
// chunk is known to be the last (the run is completed in its transaction).
type stream struct {
	src      Source
	limit    int
	recDone  bool
	connDone bool
	rec      *discovery.Record
	conn     *discovery.ObservedConnection
	// refs maps the source-local refs of stored records (hashed) to their
	// hosts, so that connections of later chunks name them as "db:<id>";
	// kept only when connections follow.
	refs        map[identityKey]int
	connsFollow bool
}

func (s *stream) next() (chunk, bool, error) {
	var ch chunk
	for cost := 0; cost < s.limit; {
		if r, ok, err := s.takeRecord(); err != nil {
			return ch, false, err
		} else if ok {
			ch.records = append(ch.records, r)
			cost += 1 + len(r.Disks) + len(r.Software)
			continue
		}
		c, ok, err := s.takeConn()
		if err != nil {
			return ch, false, err
		}
		if !ok {
			break
		}
		s.rewrite(&c.Src)
		s.rewrite(&c.Dst)
		ch.conns = append(ch.conns, c)
		cost++
	}
	last, err := s.atEnd()
	return ch, last, err
}

// rewrite points an endpoint whose ref names a record of an earlier chunk
// at that record's stored host.
func (s *stream) rewrite(e *discovery.Endpoint) {
	if e.Ref == "" {
		return
	}
	if id, ok := s.refs[hashKey(e.Ref)]; ok && id != 0 {
		e.Ref = fmt.Sprintf("db:%d", id)
	}
}

func (s *stream) takeRecord() (discovery.Record, bool, error) {
	if s.rec != nil {
		r := *s.rec
		s.rec = nil
		return r, true, nil
	}
	if s.recDone {
		return discovery.Record{}, false, nil
	}
	r, err := s.src.NextRecord()
	if err == io.EOF {
		s.recDone = true
		return r, false, nil
	}
	return r, err == nil, err
}

func (s *stream) takeConn() (discovery.ObservedConnection, bool, error) {
	if s.conn != nil {
		c := *s.conn
		s.conn = nil
		return c, true, nil
	}
	if s.connDone {
		return discovery.ObservedConnection{}, false, nil
	}
	c, err := s.src.NextConnection()
	if err == io.EOF {
		s.connDone = true
		return c, false, nil
	}
	return c, err == nil, err
}

// atEnd peeks one row ahead.
func (s *stream) atEnd() (bool, error) {
	r, ok, err := s.takeRecord()
	if err != nil || ok {
		s.rec = &r
		return false, err
	}
	c, ok, err := s.takeConn()
	if err != nil || ok {
		s.conn = &c
		return false, err
	}
	return true, nil
}

// sliceSource is a Source over a batch held in memory.
type sliceSource struct {
	records []discovery.Record
	conns   []discovery.ObservedConnection
}

func (s *sliceSource) Connections() int { return len(s.conns) }

func (s *sliceSource) NextRecord() (discovery.Record, error) {
	if len(s.records) == 0 {
		return discovery.Record{}, io.EOF
	}
	r := s.records[0]
	s.records = s.records[1:]
	return r, nil
}

func (s *sliceSource) NextConnection() (discovery.ObservedConnection, error) {
	if len(s.conns) == 0 {
		return discovery.ObservedConnection{}, io.EOF
	}
	c := s.conns[0]
	s.conns = s.conns[1:]
	return c, nil
}
