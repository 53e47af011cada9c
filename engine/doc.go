// Package engine owns Ferry's replication data path: reading a source disk in
// fixed-size blocks, the manifest of block hashes that makes syncs
// incremental, the agent side that scans, hashes, finds the changed 4 KiB
// sub-blocks of a changed block (from its sub-block store), offers whole
// blocks to the gateway's content index, compresses at a level that suits
// the link and streams frames, and the gateway side that verifies, applies
// patches and copies, writes, checkpoints by time and proves the target
// equal to the source. A pass (RunPass) syncs the disks of one host from one
// set of point-in-time snapshots (engine/snapshot) and records whether it is
// a point in time. It also owns the per-disk, tenant-scoped credentials, the
// pinned TLS identity of a gateway, and offline seed files.
//
// The frame format lives in engine/wire and rate control in engine/throttle.
// Where a target disk lives is the cloud driver's business: a Gateway takes a
// Resolve function from disk id to file path.
package engine
