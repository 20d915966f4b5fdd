package raftlog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// metadata heads every segment. A directory whose segments carry other
// metadata (etcd's own WAL, say) is refused rather than misread.
const metadata = "barge raft log v1"

// SetSegmentBytes sizes the segments of every Store opened after it in
// this process; etcd's WAL keeps the size in a package variable, so it
// cannot differ between stores. Call it before the first Open (tests and
// the crash torture use small segments to cut often). Zero or less keeps
// etcd's default of 64 MB.
func SetSegmentBytes(n int64) {
	if n > 0 {
		wal.SegmentSizeBytes = n
	}
}

// Options tune a Store.
type Options struct {
	// OnAppend, when set, is told how long every append took: the
	// write and its fdatasync, and a segment cut when one was due.
	OnAppend func(time.Duration)
	// Logger receives repairs and purges (default: discarded).
	Logger *slog.Logger
}

// Store is hashicorp/raft's LogStore on etcd's WAL. Entries after the
// compaction marker are in memory, in index order with no gaps.
type Store struct {
	dir  string
	opts Options
	zl   *zap.Logger

	wmu     sync.Mutex // serialises writes to w
	w       *wal.WAL
	purgeMu sync.Mutex // one purge at a time

	// maxWritten is at least the highest index of any entry record in
	// the segments; guarded by wmu.
	maxWritten uint64

	mu   sync.RWMutex
	base uint64 // the compaction marker: logs[0].Index == base+1
	logs []*raft.Log
}

var _ raft.LogStore = (*Store)(nil)
var _ raft.MonotonicLogStore = (*Store)(nil)

// Exists reports whether dir holds a Raft log of this package's (or any
// etcd WAL segment).
func Exists(dir string) bool { return wal.Exist(dir) }

// Open opens the log in dir, creating it when dir has no segment.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{dir: dir, opts: opts, zl: zap.NewNop()}
	if !wal.Exist(dir) {
		// Create builds the first segment in dir.tmp and renames it, so a
		// crash part-way leaves no half log behind.
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return nil, fmt.Errorf("raft log dir: %w", err)
		}
		w, err := wal.Create(s.zl, dir, []byte(metadata))
		if err != nil {
			return nil, fmt.Errorf("create raft log %s: %w", dir, err)
		}
		s.w = w
		return s, nil
	}
	if err := checkSegments(dir); err != nil {
		return nil, err
	}
	marker, maxWritten, err := lastMarker(dir)
	if err != nil {
		return nil, err
	}
	s.maxWritten = maxWritten
	for repaired := false; ; repaired = true {
		w, err := wal.Open(s.zl, dir, marker)
		if err != nil {
			return nil, fmt.Errorf("open raft log %s: %w", dir, err)
		}
		md, _, ents, err := w.ReadAll()
		if err == nil {
			if string(md) != metadata {
				w.Close()
				return nil, fmt.Errorf("raft log %s: segments carry metadata %q, not barge's %q: not a barge Raft log", dir, md, metadata)
			}
			s.w = w
			if err := s.load(marker, ents); err != nil {
				w.Close()
				return nil, err
			}
			return s, nil
		}
		w.Close()
		if repaired || !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("raft log %s does not read back, refusing to start on it: %w", dir, err)
		}
		// A record cut short at the end of the last segment was being
		// written when the process or machine died; it was never
		// acknowledged. etcd truncates it (keeping a .broken copy), and
		// so do we, but only when nothing intact follows the break: an
		// intact record after it means the damage is in the middle.
		if err := checkTornTail(dir); err != nil {
			return nil, err
		}
		if !wal.Repair(s.zl, dir) {
			return nil, fmt.Errorf("raft log %s: torn tail could not be repaired: %w", dir, err)
		}
		opts.Logger.Warn("repaired the raft log's torn tail", "dir", dir, "err", err)
	}
}

func (s *Store) load(marker *walpb.Snapshot, ents []*raftpb.Entry) error {
	s.base = marker.GetIndex()
	s.logs = make([]*raft.Log, 0, len(ents))
	for i, e := range ents {
		if want := s.base + uint64(i) + 1; e.GetIndex() != want {
			return fmt.Errorf("raft log %s: entry %d found where %d belongs", s.dir, e.GetIndex(), want)
		}
		l, err := decodeEntry(e)
		if err != nil {
			return fmt.Errorf("raft log %s: %w", s.dir, err)
		}
		s.logs = append(s.logs, l)
	}
	return nil
}

// FirstIndex is the first stored index, 0 when there is none.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.logs) == 0 {
		return 0, nil
	}
	return s.base + 1, nil
}

// LastIndex is the last stored index, 0 when there is none.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.logs) == 0 {
		return 0, nil
	}
	return s.base + uint64(len(s.logs)), nil
}

// GetLog copies the entry at index into log.
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if index <= s.base || index > s.base+uint64(len(s.logs)) {
		return raft.ErrLogNotFound
	}
	*log = *s.logs[index-s.base-1]
	return nil
}

// StoreLog appends one entry.
func (s *Store) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

// IsMonotonic tells hashicorp/raft that the log never has gaps: after
// installing a snapshot it deletes the whole log instead of leaving one.
func (s *Store) IsMonotonic() bool { return true }

// StoreLogs appends logs with one write and one fdatasync. An append
// that starts at or before the last index replaces the entries from
// there on, as a Raft follower's log must after a conflict; etcd's WAL
// keeps the newer records when it reads them back.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	first := logs[0].Index
	for i, l := range logs {
		if l.Index != first+uint64(i) {
			return fmt.Errorf("raft log %s: append of entries %d.. is not contiguous at %d", s.dir, first, l.Index)
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	base, n := s.base, uint64(len(s.logs))
	s.mu.RUnlock()
	switch {
	case n == 0 && first-1 > base:
		// The first entry after a snapshot install, past everything the
		// log ever held: the marker moves up to just before it.
		if err := s.moveMarker(first - 1); err != nil {
			return err
		}
		base = first - 1
	case n == 0 && first-1 < base:
		// The first entry after a snapshot install that is older than
		// the marker the emptied log left. The marker must move back, and
		// a replay from there would bring back whatever the log once held
		// after it; entry first, written before the marker, truncates all
		// of that in the replay. So: entry first (invisible behind the
		// current marker), the marker, then the append.
		if err := s.canReplayFrom(first - 1); err != nil {
			return err
		}
		if err := s.save(logs[:1]); err != nil {
			return err
		}
		if err := s.moveMarker(first - 1); err != nil {
			return err
		}
		base = first - 1
	case first <= base:
		return fmt.Errorf("raft log %s: append at %d, at or before the compaction marker %d", s.dir, first, base)
	case first > base+n+1:
		return fmt.Errorf("raft log %s: append at %d leaves a gap after the last entry %d", s.dir, first, base+n)
	}
	if err := s.save(logs); err != nil {
		return err
	}
	s.mu.Lock()
	s.logs = append(s.logs[:first-s.base-1], logs...)
	s.mu.Unlock()
	if n == 0 && base > 0 {
		// The first append after the log was emptied (a snapshot install):
		// the marker is final now, and the segments before it can go.
		return s.purge(base)
	}
	return nil
}

// save writes logs to the WAL with one fdatasync; the caller holds wmu.
func (s *Store) save(logs []*raft.Log) error {
	ents := make([]*raftpb.Entry, len(logs))
	for i, l := range logs {
		ents[i] = encodeEntry(l)
	}
	start := time.Now()
	if err := s.w.Save(&raftpb.HardState{}, ents); err != nil {
		return fmt.Errorf("raft log %s: append %d..%d: %w", s.dir, logs[0].Index, logs[len(logs)-1].Index, err)
	}
	if s.opts.OnAppend != nil {
		s.opts.OnAppend(time.Since(start))
	}
	s.maxWritten = max(s.maxWritten, logs[len(logs)-1].Index)
	return nil
}

// canReplayFrom checks that a segment starts at or before index, as a
// replay from a marker there needs.
func (s *Store) canReplayFrom(index uint64) error {
	segs, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	if len(segs) == 0 || segs[0].index > index {
		return fmt.Errorf("raft log %s: cannot move the compaction marker back to %d: the oldest segment starts later", s.dir, index)
	}
	return nil
}

// DeleteRange removes entries min..max, inclusive: either a head (after a
// snapshot, or all of it after a snapshot install) or a tail (a conflict).
func (s *Store) DeleteRange(lo, hi uint64) error {
	s.wmu.Lock()
	s.mu.RLock()
	base, n := s.base, uint64(len(s.logs))
	s.mu.RUnlock()
	first, last := base+1, base+n
	if n == 0 || lo > last || hi < first || lo > hi {
		s.wmu.Unlock()
		return nil
	}
	switch {
	case lo <= first && hi >= last:
		// Everything goes: the marker moves past every entry the WAL ever
		// held, durably, so that none comes back on replay, not even one
		// truncated long ago (a truncation is a record too, and one
		// behind the marker no longer counts). Segments are not purged
		// yet: the next append may move the marker back to the snapshot
		// that replaced the log, and needs a segment starting before it.
		err := s.moveMarker(max(last, s.maxWritten))
		s.wmu.Unlock()
		return err
	case lo <= first:
		err := s.moveMarker(hi)
		s.wmu.Unlock()
		if err != nil {
			return err
		}
		return s.purge(hi)
	case hi >= last:
		// A tail after a conflict. Rewriting the entry before it makes the
		// truncation durable now: a replay keeps the newest record for an
		// index and drops everything after it.
		defer s.wmu.Unlock()
		keep := s.logs[lo-base-2]
		if err := s.w.Save(&raftpb.HardState{}, []*raftpb.Entry{encodeEntry(keep)}); err != nil {
			return fmt.Errorf("raft log %s: truncate after %d: %w", s.dir, lo-1, err)
		}
		s.mu.Lock()
		clear(s.logs[lo-base-1:])
		s.logs = s.logs[:lo-base-1]
		s.mu.Unlock()
		return nil
	default:
		s.wmu.Unlock()
		return fmt.Errorf("raft log %s: cannot delete %d..%d from the middle of %d..%d", s.dir, lo, hi, first, last)
	}
}

// moveMarker records a compaction marker (a WAL snapshot record, synced)
// and drops the entries up to it from memory. The caller holds wmu.
//
// Markers carry term 0: a replay refuses a marker whose term differs from
// another's at the same index, and the term of the entry before the log
// is not always known here (after a snapshot install it is the
// snapshot's). Nothing reads it: Raft keeps its snapshot's term itself.
func (s *Store) moveMarker(index uint64) error {
	snap := &walpb.Snapshot{Index: new(index), Term: new(uint64(0)), ConfState: &raftpb.ConfState{}}
	if err := s.w.SaveSnapshot(snap); err != nil {
		return fmt.Errorf("raft log %s: compaction marker at %d: %w", s.dir, index, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case index < s.base:
		// Back to a snapshot installed over an emptied log.
		s.logs = nil
	case index-s.base >= uint64(len(s.logs)):
		s.logs = nil
	default:
		// A fresh slice, so the dropped entries can be collected.
		s.logs = append([]*raft.Log(nil), s.logs[index-s.base:]...)
	}
	s.base = index
	return nil
}

// purge deletes the segments that hold nothing after the marker at
// index: all before the one a replay from index starts in. etcd's WAL
// first gives up its locks on them.
func (s *Store) purge(index uint64) error {
	s.purgeMu.Lock()
	defer s.purgeMu.Unlock()
	if err := s.w.ReleaseLockTo(index); err != nil {
		return fmt.Errorf("raft log %s: release segments before %d: %w", s.dir, index, err)
	}
	segs, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	// ReleaseLockTo keeps the segment before the first one starting at or
	// after index; so does the purge, which never removes a segment the
	// WAL still holds open.
	k := len(segs)
	for i, sg := range segs {
		if sg.index >= index {
			k = i
			break
		}
	}
	for _, sg := range segs[:max(k-1, 0)] {
		if err := os.Remove(filepath.Join(s.dir, sg.name)); err != nil {
			return fmt.Errorf("raft log %s: purge: %w", s.dir, err)
		}
		s.opts.Logger.Debug("purged raft log segment", "file", sg.name, "marker", index)
	}
	return nil
}

// Close syncs and closes the log.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.w == nil {
		return nil
	}
	err := s.w.Close()
	s.w = nil
	return err
}
