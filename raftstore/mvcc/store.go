package mvcc

import (
	"bytes"
	"sort"
	"sync"

	"github.com/google/btree"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Event is one change committed at a revision, as watchers see it.
type Event struct {
	Type   mvccpb.Event_EventType
	Kv     *mvccpb.KeyValue
	PrevKv *mvccpb.KeyValue // nil when the key did not exist before
	Sub    int64            // order inside the revision
}

// Store is the MVCC key-value state. Reads may run concurrently with each
// other; writes are serialised (the Raft FSM applies one entry at a time).
type Store struct {
	mu         sync.RWMutex
	tree       *btree.BTreeG[keyIndex]
	rev        int64
	compactRev int64
	liveKeys   int64
	sizeBytes  int64

	// touched records keys changed since they were last fully compacted,
	// with the revision of their latest change, so compaction visits only
	// them instead of the whole keyspace.
	touched map[string]int64
}

// New returns an empty store at revision 1, as etcd starts: revision 1 is
// the empty initial state, so the first write is revision 2.
func New() *Store {
	return &Store{
		tree:    btree.NewG(32, lessKeyIndex),
		rev:     1,
		touched: map[string]int64{},
	}
}

// Rev returns the current revision.
func (s *Store) Rev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// CompactRev returns the revision of the last compaction (0 if none).
func (s *Store) CompactRev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.compactRev
}

// Stats describes the store's size.
type Stats struct {
	Revision        int64
	CompactRevision int64
	LiveKeys        int64
	SizeBytes       int64 // approximate bytes of keys and values held
}

// Stats returns counts for Status and metrics.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Stats{Revision: s.rev, CompactRevision: s.compactRev, LiveKeys: s.liveKeys, SizeBytes: s.sizeBytes}
}

// RangeOptions select what a Range returns.
type RangeOptions struct {
	Rev       int64 // 0 means current
	Limit     int64 // 0 means unlimited
	KeysOnly  bool
	CountOnly bool
}

// RangeResult is the outcome of a Range.
type RangeResult struct {
	KVs   []*mvccpb.KeyValue
	Count int64 // matching keys, ignoring Limit
	Rev   int64 // the revision the range was served at
}

// Range returns live keys in [key, end) at a revision. An empty end means
// the single key; end "\x00" means every key >= key.
func (s *Store) Range(key, end []byte, opts RangeOptions) (*RangeResult, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return rangeTree(s.tree, s.rev, s.compactRev, key, end, opts)
}

func rangeTree(tree *btree.BTreeG[keyIndex], curRev, compactRev int64, key, end []byte, opts RangeOptions) (*RangeResult, error) {
	rev := opts.Rev
	if rev <= 0 {
		rev = curRev
	}
	if rev > curRev {
		return nil, ErrFutureRev
	}
	if rev < compactRev {
		return nil, ErrCompacted
	}
	res := &RangeResult{Rev: curRev}
	visit := func(ki keyIndex) bool {
		v, ok := ki.at(rev)
		if !ok {
			return true
		}
		res.Count++
		if opts.CountOnly {
			return true
		}
		if opts.Limit > 0 && int64(len(res.KVs)) >= opts.Limit {
			return true // keep counting
		}
		res.KVs = append(res.KVs, v.toKV(ki.key, opts.KeysOnly))
		return true
	}
	ascendRange(tree, key, end, visit)
	return res, nil
}

// ascendRange walks [key, end) with etcd's conventions for end.
func ascendRange(tree *btree.BTreeG[keyIndex], key, end []byte, fn func(keyIndex) bool) {
	switch {
	case len(end) == 0:
		if ki, ok := tree.Get(keyIndex{key: string(key)}); ok {
			fn(ki)
		}
	case len(end) == 1 && end[0] == 0:
		tree.AscendGreaterOrEqual(keyIndex{key: string(key)}, fn)
	default:
		if bytes.Compare(key, end) >= 0 {
			return
		}
		tree.AscendRange(keyIndex{key: string(key)}, keyIndex{key: string(end)}, fn)
	}
}

// EventsSince returns the changes to keys in [key, end) with revision >=
// from, ordered by revision, covering whole revisions only and at most
// about maxEvents events (0 means no bound). next is the first revision not
// covered. It fails with ErrCompacted when from is at or before the
// compaction point, since the history there is gone.
func (s *Store) EventsSince(key, end []byte, from int64, maxEvents int) (evs []RevEvent, next int64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if from <= s.compactRev {
		return nil, 0, ErrCompacted
	}
	if from > s.rev {
		return nil, from, nil
	}
	ascendRange(s.tree, key, end, func(ki keyIndex) bool {
		for i := len(ki.versions) - 1; i >= 0; i-- {
			v := ki.versions[i]
			if v.rev.Main < from {
				break
			}
			evs = append(evs, makeEvent(ki, i))
		}
		return true
	})
	sort.Slice(evs, func(i, j int) bool { return evs[j].Rev.GreaterThan(evs[i].Rev) })
	next = s.rev + 1
	if maxEvents > 0 && len(evs) > maxEvents {
		// Cut at a revision boundary so a revision is never split.
		cut := maxEvents
		for cut < len(evs) && evs[cut].Rev.Main == evs[cut-1].Rev.Main {
			cut++
		}
		if cut < len(evs) {
			next = evs[cut].Rev.Main
			evs = evs[:cut]
		}
	}
	return evs, next, nil
}

// RevEvent is an Event with its full revision.
type RevEvent struct {
	Event
	Rev Revision
}

func makeEvent(ki keyIndex, i int) RevEvent {
	v := ki.versions[i]
	var prev *mvccpb.KeyValue
	if i > 0 && !ki.versions[i-1].tombstone {
		prev = ki.versions[i-1].toKV(ki.key, false)
	}
	ev := RevEvent{Rev: v.rev}
	ev.Sub = v.rev.Sub
	ev.PrevKv = prev
	if v.tombstone {
		ev.Type = mvccpb.DELETE
		ev.Kv = &mvccpb.KeyValue{Key: []byte(ki.key), ModRevision: v.rev.Main}
	} else {
		ev.Type = mvccpb.PUT
		ev.Kv = v.toKV(ki.key, false)
	}
	return ev
}

// Compact discards history before rev. Ranges and watches at older
// revisions fail with ErrCompacted afterwards.
func (s *Store) Compact(rev int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev <= s.compactRev {
		return ErrCompacted
	}
	if rev > s.rev {
		return ErrFutureRev
	}
	s.compactRev = rev
	for key, last := range s.touched {
		ki, ok := s.tree.Get(keyIndex{key: key})
		if !ok {
			delete(s.touched, key)
			continue
		}
		kept, changed := ki.compacted(rev)
		if changed {
			for _, v := range ki.versions[:len(ki.versions)-len(kept)] {
				s.sizeBytes -= int64(len(key) + len(v.value))
			}
			if len(kept) == 0 {
				s.tree.Delete(ki)
			} else {
				ki.versions = kept
				s.tree.ReplaceOrInsert(ki)
			}
		}
		if last <= rev {
			delete(s.touched, key)
		}
	}
	return nil
}
