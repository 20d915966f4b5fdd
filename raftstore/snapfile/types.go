package snapfile

import "time"

// FormatVersion is the version of the record layout written by this package.
const FormatVersion = 1

// Metadata is the header of a snapshot file. It is readable without
// scanning the records, so `barge snapshot inspect` and restore can report
// what a file holds before trusting it.
type Metadata struct {
	Format          int       `json:"format"`
	Revision        int64     `json:"revision"`
	CompactRevision int64     `json:"compactRevision"`
	KeyCount        int64     `json:"keyCount"` // live (non-deleted) keys at Revision
	ClusterID       uint64    `json:"clusterID"`
	MemberID        uint64    `json:"memberID"` // the peer that produced the snapshot
	RaftIndex       uint64    `json:"raftIndex"`
	RaftTerm        uint64    `json:"raftTerm"`
	CreatedAt       time.Time `json:"createdAt"`
	BargeVersion    string    `json:"bargeVersion"`
}

// KeyVersion is one stored revision of a key, including deletions
// (tombstones), so the MVCC history back to the compaction point survives
// a snapshot.
//
// The format does not tell nil from empty: a Reader returns nil for an
// empty Key or Value (and for an empty URL list of a Member), since etcd
// makes no such distinction either.
type KeyVersion struct {
	Key            []byte
	Value          []byte
	CreateRevision int64
	ModRevision    int64
	SubRevision    int64 // position of the change within its revision's txn
	Version        int64
	Lease          int64
	Tombstone      bool
}

// Lease is a granted lease. Remaining time is not stored: expiry is decided
// by the leader, which restarts every TTL when it loads a snapshot.
type Lease struct {
	ID  int64
	TTL int64
}

// Member is the replicated attributes of a cluster member. Voting rights and
// peer addresses live in the Raft configuration, not here.
type Member struct {
	ID         uint64
	Name       string
	ClientURLs []string
	PeerURLs   []string
}

// RecordKind tells which field of a Record is set.
type RecordKind uint8

const (
	KindKey    RecordKind = 1
	KindLease  RecordKind = 2
	KindMember RecordKind = 3
)

// Record is one entry of a snapshot's body. Exactly one of Key, Lease,
// Member is set, according to Kind.
type Record struct {
	Kind   RecordKind
	Key    *KeyVersion
	Lease  *Lease
	Member *Member
}
