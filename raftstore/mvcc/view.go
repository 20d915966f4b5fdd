package mvcc

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/barge-dev/barge/raftstore/snapfile"
	"github.com/google/btree"
)

// View is a frozen, point-in-time copy of the store. Taking one is O(1)
// (the B-tree is cloned copy-on-write) and reading it never blocks writers.
type View struct {
	tree       *btree.BTreeG[keyIndex]
	rev        int64
	compactRev int64
	liveKeys   int64
}

// View returns a point-in-time copy of the whole store.
func (s *Store) View() *View {
	// Clone mutates the source's copy-on-write context, so it needs the
	// write lock, but only for the O(1) clone itself.
	s.mu.Lock()
	defer s.mu.Unlock()
	return &View{tree: s.tree.Clone(), rev: s.rev, compactRev: s.compactRev, liveKeys: s.liveKeys}
}

// Rev is the revision the view was taken at.
func (v *View) Rev() int64 { return v.rev }

// CompactRev is the compaction point at the time of the view.
func (v *View) CompactRev() int64 { return v.compactRev }

// LiveKeys is the number of live keys in the view.
func (v *View) LiveKeys() int64 { return v.liveKeys }

// Hash returns a CRC-32C over every stored version up to rev (0 = the
// view's revision), key by key. Peers that applied the same log hash the
// same, which is what HashKV is for.
func (v *View) Hash(rev int64) (uint32, int64, error) {
	if rev <= 0 {
		rev = v.rev
	}
	if rev > v.rev {
		return 0, 0, ErrFutureRev
	}
	if rev < v.compactRev {
		return 0, 0, ErrCompacted
	}
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	var buf [8 * 6]byte
	v.tree.Ascend(func(ki keyIndex) bool {
		for _, ver := range ki.versions {
			if ver.rev.Main > rev {
				break
			}
			h.Write([]byte(ki.key))
			binary.BigEndian.PutUint64(buf[0:], uint64(ver.rev.Main))
			binary.BigEndian.PutUint64(buf[8:], uint64(ver.rev.Sub))
			binary.BigEndian.PutUint64(buf[16:], uint64(ver.create))
			binary.BigEndian.PutUint64(buf[24:], uint64(ver.ver))
			binary.BigEndian.PutUint64(buf[32:], uint64(ver.lease))
			tomb := uint64(0)
			if ver.tombstone {
				tomb = 1
			}
			binary.BigEndian.PutUint64(buf[40:], tomb)
			h.Write(buf[:])
			h.Write(ver.value)
		}
		return true
	})
	return h.Sum32(), rev, nil
}

// WriteTo emits every stored key version, in key then revision order.
func (v *View) WriteTo(w *snapfile.Writer) error {
	var err error
	v.tree.Ascend(func(ki keyIndex) bool {
		for _, ver := range ki.versions {
			kv := snapfile.KeyVersion{
				Key:            []byte(ki.key),
				Value:          ver.value,
				CreateRevision: ver.create,
				ModRevision:    ver.rev.Main,
				SubRevision:    ver.rev.Sub,
				Version:        ver.ver,
				Lease:          ver.lease,
				Tombstone:      ver.tombstone,
			}
			if err = w.WriteKey(&kv); err != nil {
				return false
			}
		}
		return true
	})
	return err
}

// Loader rebuilds a store from snapshot records. Records must arrive in the
// order View.WriteTo emits them; the result is only installed by Finish, so
// a snapshot that turns out corrupt half way changes nothing.
type Loader struct {
	s       *Store
	last    keyIndex
	haveKey bool
}

// NewLoader starts rebuilding a store at rev with the given compaction point.
func NewLoader(rev, compactRev int64) *Loader {
	s := New()
	s.rev = rev
	s.compactRev = compactRev
	return &Loader{s: s}
}

// Add appends one key version.
func (l *Loader) Add(kv *snapfile.KeyVersion) error {
	k := string(kv.Key)
	if l.haveKey && k != l.last.key {
		if k < l.last.key {
			return fmt.Errorf("snapshot keys out of order: %q after %q", k, l.last.key)
		}
		l.flush()
	}
	if !l.haveKey {
		l.last = keyIndex{key: k}
		l.haveKey = true
	}
	nv := version{
		rev:       Revision{Main: kv.ModRevision, Sub: kv.SubRevision},
		create:    kv.CreateRevision,
		ver:       kv.Version,
		lease:     kv.Lease,
		value:     kv.Value,
		tombstone: kv.Tombstone,
	}
	if n := len(l.last.versions); n > 0 && !nv.rev.GreaterThan(l.last.versions[n-1].rev) {
		return fmt.Errorf("snapshot versions of key %q out of order at revision %d", k, kv.ModRevision)
	}
	if nv.rev.Main > l.s.rev {
		return fmt.Errorf("snapshot key %q has revision %d beyond the snapshot revision %d", k, nv.rev.Main, l.s.rev)
	}
	l.last.versions = append(l.last.versions, nv)
	return nil
}

func (l *Loader) flush() {
	if !l.haveKey {
		return
	}
	ki := l.last
	s := l.s
	s.tree.ReplaceOrInsert(ki)
	for _, v := range ki.versions {
		s.sizeBytes += int64(len(ki.key) + len(v.value))
	}
	if _, ok := ki.latest(); ok {
		s.liveKeys++
	}
	if len(ki.versions) > 1 || ki.versions[0].tombstone {
		s.touched[ki.key] = ki.versions[len(ki.versions)-1].rev.Main
	}
	l.haveKey = false
	l.last = keyIndex{}
}

// Finish returns the rebuilt store.
func (l *Loader) Finish() *Store {
	l.flush()
	return l.s
}

// Replace swaps this store's contents for other's. The FSM uses it to
// install a restored snapshot in place, so readers holding *Store see it.
func (s *Store) Replace(other *Store) {
	other.mu.Lock()
	defer other.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tree, s.rev, s.compactRev = other.tree, other.rev, other.compactRev
	s.liveKeys, s.sizeBytes, s.touched = other.liveKeys, other.sizeBytes, other.touched
}

// SetRevisionFloor raises the current and compacted revision to rev
// without changing keys. A live restore uses it so revisions never go
// backwards for clients that saw the cluster before the restore.
func (s *Store) SetRevisionFloor(rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev > s.rev {
		s.rev = rev
		s.compactRev = rev
	}
}
