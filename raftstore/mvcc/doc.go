// Package mvcc is barge's multi-version key-value state machine: keys with
// create/mod revisions, versions and leases, history back to the compaction
// point, ranges at past revisions, and the change events that feed watches.
//
// State lives in memory in a copy-on-write B-tree, so a point-in-time view
// (for Raft snapshots, Maintenance.Snapshot and HashKV) costs O(1) and never
// blocks the apply path. Durability comes from the Raft log and snapshots,
// not from this package.
//
// mvcc imports only raftstore/snapfile from barge. It knows nothing of Raft,
// gRPC or leases beyond the lease ID stored with each key.
package mvcc
