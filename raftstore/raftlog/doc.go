// Package raftlog keeps hashicorp/raft's log in etcd's write-ahead log
// (go.etcd.io/etcd/server/v3/storage/wal): one append is one write and one
// fdatasync, and the entries since the last compaction stay in memory, as
// etcd keeps them, so reads for replication never touch the disk.
//
// It owns the entry encoding inside the WAL's records, the compaction
// marker (a WAL snapshot record) and the purging of segments wholly
// before it, suffix truncation after a conflict, and recovery on open: a
// torn tail is repaired as etcd repairs it, anything else that does not
// read back (a flipped bit, a missing segment) is refused with the file
// and offset. It imports no other barge package.
package raftlog
