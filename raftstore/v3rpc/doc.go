// Package v3rpc is the etcd v3 gRPC API of a barge store peer: KV, Watch,
// Lease, Cluster and Maintenance, with etcd's request limits and errors.
// It validates and translates; the state and the Raft plumbing live behind
// the Backend interface, which raftstore.Server implements.
//
// Requests are checked exactly as etcd checks them, quirks included, so a
// client sees the same acceptance and the same errors as against etcd.
// Where barge has nothing to match an etcd feature with, the service
// answers in the way least surprising to etcd tooling:
//
//   - Maintenance.Alarm reports no alarms and accepts changes without
//     effect, and Defragment succeeds at once: the store is in memory.
//   - Maintenance.Hash answers with the HashKV of the current revision.
//   - Maintenance.Snapshot streams a snapfile, not a bbolt database, with
//     no SHA-256 trailer; RemainingBytes only tells last from not last.
//   - Maintenance.Downgrade is Unimplemented.
//   - KV.RangeStream is served from one Range and sent in chunks.
//
// v3rpc imports raftstore/watch (for watch streams) and nothing else of barge.
package v3rpc
