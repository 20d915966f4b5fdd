package mvcc

import (
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Write is an open write transaction. It holds the store's write lock from
// Store.Write until End, so it must be short and must not block on I/O.
// All its changes share one revision; a Write that changes nothing does not
// advance the revision, as in etcd.
type Write struct {
	s      *Store
	rev    int64 // the revision this txn writes at
	events []Event
}

// Write opens a write transaction.
func (s *Store) Write() *Write {
	s.mu.Lock()
	return &Write{s: s, rev: s.rev + 1}
}

// Rev returns the revision reads inside the txn observe: the new revision
// once the txn has changed something, otherwise the current one.
func (w *Write) Rev() int64 {
	if len(w.events) > 0 {
		return w.rev
	}
	return w.rev - 1
}

// Range reads inside the transaction, seeing its own earlier changes.
func (w *Write) Range(key, end []byte, opts RangeOptions) (*RangeResult, error) {
	rev := w.Rev()
	if opts.Rev == 0 {
		opts.Rev = rev
	}
	res, err := rangeTree(w.s.tree, rev, w.s.compactRev, key, end, opts)
	if res != nil {
		res.Rev = rev
	}
	return res, err
}

// Get returns the live key, for compares and ignore_value/ignore_lease.
func (w *Write) Get(key []byte) (*mvccpb.KeyValue, bool) {
	ki, ok := w.s.tree.Get(keyIndex{key: string(key)})
	if !ok {
		return nil, false
	}
	v, ok := ki.latest()
	if !ok {
		return nil, false
	}
	return v.toKV(ki.key, false), true
}

// Put stores value under key with the given lease and returns the event.
func (w *Write) Put(key, value []byte, lease int64) Event {
	s := w.s
	k := string(key)
	ki, _ := s.tree.Get(keyIndex{key: k})
	ki.key = k
	nv := version{rev: Revision{Main: w.rev, Sub: int64(len(w.events))}, lease: lease, value: value, ver: 1, create: w.rev}
	var prev *mvccpb.KeyValue
	if cur, ok := ki.latest(); ok {
		nv.create = cur.create
		nv.ver = cur.ver + 1
		prev = cur.toKV(k, false)
	} else {
		s.liveKeys++
	}
	ki.versions = append(ki.versions, nv)
	s.tree.ReplaceOrInsert(ki)
	s.sizeBytes += int64(len(k) + len(value))
	s.touched[k] = w.rev
	ev := Event{Type: mvccpb.PUT, Kv: nv.toKV(k, false), PrevKv: prev, Sub: nv.rev.Sub}
	w.events = append(w.events, ev)
	return ev
}

// DeleteRange deletes every live key in [key, end) and returns the events.
func (w *Write) DeleteRange(key, end []byte) []Event {
	s := w.s
	var doomed []keyIndex
	ascendRange(s.tree, key, end, func(ki keyIndex) bool {
		if _, ok := ki.latest(); ok {
			doomed = append(doomed, ki)
		}
		return true
	})
	out := make([]Event, 0, len(doomed))
	for _, ki := range doomed {
		cur, _ := ki.latest()
		tomb := version{rev: Revision{Main: w.rev, Sub: int64(len(w.events))}, tombstone: true}
		ki.versions = append(ki.versions, tomb)
		s.tree.ReplaceOrInsert(ki)
		s.liveKeys--
		s.sizeBytes += int64(len(ki.key))
		s.touched[ki.key] = w.rev
		ev := Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: []byte(ki.key), ModRevision: w.rev}, PrevKv: cur.toKV(ki.key, false), Sub: tomb.rev.Sub}
		w.events = append(w.events, ev)
		out = append(out, ev)
	}
	return out
}

// End commits the transaction and releases the write lock. It returns the
// store revision after the txn and the txn's events (nil if it changed
// nothing).
func (w *Write) End() (int64, []Event) {
	s := w.s
	if len(w.events) > 0 {
		s.rev = w.rev
	}
	rev := s.rev
	s.mu.Unlock()
	return rev, w.events
}

// CompactRev is the compaction point, for validating reads before any
// change of the txn is made.
func (w *Write) CompactRev() int64 { return w.s.compactRev }
