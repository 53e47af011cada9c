// Package engine owns Ferry's replication data path: reading a source disk in
// fixed-size blocks, the manifest of block hashes that makes syncs
// incremental, the agent side that scans, compresses and streams changed
// blocks, and the gateway side that verifies, writes, checkpoints and proves
// the target equal to the source. It also owns the per-disk credentials and
// the pinned TLS identity of a gateway, and offline seed files.
//
// The frame format lives in engine/wire and rate control in engine/throttle.
// Where a target disk lives is the cloud driver's business: a Gateway takes a
// Resolve function from disk id to file path.
package engine
