package mvcc

import "go.etcd.io/etcd/api/v3/mvccpb"

// Revision orders every change: Main is the store revision of the write
// transaction, Sub the position of the change inside it.
type Revision struct {
	Main int64
	Sub  int64
}

// GreaterThan reports whether r happened after o.
func (r Revision) GreaterThan(o Revision) bool {
	if r.Main != o.Main {
		return r.Main > o.Main
	}
	return r.Sub > o.Sub
}

// version is one stored state of a key. A tombstone marks a deletion and
// ends a generation of the key.
type version struct {
	rev       Revision
	create    int64
	ver       int64
	lease     int64
	value     []byte
	tombstone bool
}

// keyIndex is the B-tree item: a key and its versions, oldest first.
//
// The versions slice is append-only between compactions. A cloned tree
// (a snapshot view) shares the backing array but holds a shorter slice
// header, so appends by the live tree are invisible to it. Compaction
// always builds a new slice and never edits one in place.
type keyIndex struct {
	key      string
	versions []version
}

func lessKeyIndex(a, b keyIndex) bool { return a.key < b.key }

// at returns the version visible at revision rev, if the key is live then.
func (ki *keyIndex) at(rev int64) (version, bool) {
	for i := len(ki.versions) - 1; i >= 0; i-- {
		v := ki.versions[i]
		if v.rev.Main <= rev {
			if v.tombstone {
				return version{}, false
			}
			return v, true
		}
	}
	return version{}, false
}

// latest returns the newest version if the key is currently live.
func (ki *keyIndex) latest() (version, bool) {
	if len(ki.versions) == 0 {
		return version{}, false
	}
	v := ki.versions[len(ki.versions)-1]
	return v, !v.tombstone
}

// compacted returns the versions that must survive a compaction at rev:
// everything after rev, plus the version visible at rev unless it is a
// tombstone. ok is false when the key can be dropped entirely.
func (ki *keyIndex) compacted(rev int64) (kept []version, changed bool) {
	keep := -1 // index of the newest version with Main <= rev
	for i := len(ki.versions) - 1; i >= 0; i-- {
		if ki.versions[i].rev.Main <= rev {
			keep = i
			break
		}
	}
	if keep < 0 {
		return ki.versions, false
	}
	start := keep
	if ki.versions[keep].tombstone {
		start = keep + 1
	}
	if start == 0 {
		return ki.versions, false
	}
	kept = make([]version, len(ki.versions)-start)
	copy(kept, ki.versions[start:])
	return kept, true
}

func (v version) toKV(key string, keysOnly bool) *mvccpb.KeyValue {
	kv := &mvccpb.KeyValue{
		Key:            []byte(key),
		CreateRevision: v.create,
		ModRevision:    v.rev.Main,
		Version:        v.ver,
		Lease:          v.lease,
	}
	if !keysOnly {
		kv.Value = v.value
	}
	return kv
}
