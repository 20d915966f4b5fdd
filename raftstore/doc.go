// Package raftstore is one peer of barge's replicated store: a Raft group
// (hashicorp/raft) whose state machine is an MVCC key-value store with
// leases and watches, served over the etcd v3 gRPC API.
//
// It owns the peer's life (server.go: open the data dir, start Raft and
// the listeners, stop), the Raft log and stable state on disk
// (logstore.go), the state machine (fsm.go, apply.go, command.go), how
// writes reach the log (propose.go, forward.go: batching, and forwarding
// from followers to the leader), linearizable reads (readindex.go),
// leadership hooks for the control plane (leadership.go), membership
// (members.go, admin.go), history compaction (compactor.go), and offline
// and live snapshot restore (restore.go). The wire API is in v3rpc, the
// data structures in mvcc, lease and watch, the peer transport in peer,
// certificates in pki and the snapshot file format in snapfile.
//
// raftstore imports only its own subpackages and no other barge package:
// the control plane reaches it through the etcd v3 API or the narrow
// interfaces it exports.
package raftstore
