package raftlog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// Small segments, so that appends cut segments and compactions purge
// them within a test's few hundred entries.
const testSegmentBytes = 16 << 10

func TestMain(m *testing.M) {
	SetSegmentBytes(testSegmentBytes)
	os.Exit(m.Run())
}

func openT(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func mkLogs(from, to, term uint64) []*raft.Log {
	var out []*raft.Log
	for i := from; i <= to; i++ {
		out = append(out, &raft.Log{Index: i, Term: term, Type: raft.LogCommand,
			Data:       fmt.Appendf(nil, "entry %d term %d %s", i, term, strings.Repeat("x", int(i%97))),
			AppendedAt: time.Unix(1700000000, int64(i))})
	}
	return out
}

// store appends logs in batches of ten, as Raft would under load: etcd's
// WAL cuts a segment at the first append that finds the last one full.
func store(t *testing.T, s *Store, logs []*raft.Log) {
	t.Helper()
	for len(logs) > 0 {
		n := min(10, len(logs))
		if err := s.StoreLogs(logs[:n]); err != nil {
			t.Fatalf("store %d..: %v", logs[0].Index, err)
		}
		logs = logs[n:]
	}
}

// expect checks that s holds exactly the entries from..to of the given
// terms: terms[i] is the term of entry from+i.
func expect(t *testing.T, s *Store, from, to uint64, termOf func(uint64) uint64) {
	t.Helper()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if from > to {
		if first != 0 || last != 0 {
			t.Fatalf("log is %d..%d, want empty", first, last)
		}
		return
	}
	if first != from || last != to {
		t.Fatalf("log is %d..%d, want %d..%d", first, last, from, to)
	}
	for i := from; i <= to; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		want := mkLogs(i, i, termOf(i))[0]
		if l.Index != i || l.Term != want.Term || !bytes.Equal(l.Data, want.Data) || !l.AppendedAt.Equal(want.AppendedAt) || l.Type != want.Type {
			t.Fatalf("entry %d = %+v, want %+v", i, l, *want)
		}
	}
	var l raft.Log
	if err := s.GetLog(to+1, &l); err != raft.ErrLogNotFound {
		t.Fatalf("get past the end: %v", err)
	}
	if from > 1 {
		if err := s.GetLog(from-1, &l); err != raft.ErrLogNotFound {
			t.Fatalf("get before the start: %v", err)
		}
	}
}

func reopen(t *testing.T, s *Store) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return openT(t, s.dir)
}

func term1(uint64) uint64 { return 1 }

func TestStoreAppendReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	s := openT(t, dir)
	expect(t, s, 1, 0, term1)
	store(t, s, mkLogs(1, 1, 1))
	if err := s.StoreLog(mkLogs(2, 2, 1)[0]); err != nil {
		t.Fatal(err)
	}
	store(t, s, mkLogs(3, 400, 1))
	expect(t, s, 1, 400, term1)
	s = reopen(t, s)
	defer s.Close()
	expect(t, s, 1, 400, term1)
	segs, _ := listSegments(dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments after 400 entries of 16 KiB segments: no cut happened", len(segs))
	}
}

func TestStoreCompactionPurgesSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	s := openT(t, dir)
	store(t, s, mkLogs(1, 600, 1))
	before, _ := listSegments(dir)
	if err := s.DeleteRange(1, 500); err != nil {
		t.Fatal(err)
	}
	expect(t, s, 501, 600, term1)
	after, _ := listSegments(dir)
	if len(after) >= len(before) {
		t.Fatalf("%d segments before compaction, %d after: nothing purged", len(before), len(after))
	}
	store(t, s, mkLogs(601, 700, 1))
	s = reopen(t, s)
	defer s.Close()
	expect(t, s, 501, 700, term1)
}

func TestStoreTailTruncationIsDurable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	s := openT(t, dir)
	store(t, s, mkLogs(1, 100, 1))
	if err := s.DeleteRange(60, 100); err != nil {
		t.Fatal(err)
	}
	expect(t, s, 1, 59, term1)
	// No append after the truncation: it must hold on its own.
	s = reopen(t, s)
	expect(t, s, 1, 59, term1)
	store(t, s, mkLogs(60, 80, 2))
	s = reopen(t, s)
	defer s.Close()
	expect(t, s, 1, 80, func(i uint64) uint64 {
		if i >= 60 {
			return 2
		}
		return 1
	})
}

func TestStoreOverwritingAppend(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	s := openT(t, dir)
	store(t, s, mkLogs(1, 50, 1))
	store(t, s, mkLogs(40, 45, 3))
	s = reopen(t, s)
	defer s.Close()
	expect(t, s, 1, 45, func(i uint64) uint64 {
		if i >= 40 {
			return 3
		}
		return 1
	})
}

// A snapshot install empties the log (MonotonicLogStore); the next append
// starts just after the snapshot, which may be past the old log or inside
// it.
func TestStoreSnapshotInstall(t *testing.T) {
	for _, tc := range []struct {
		name string
		next uint64
	}{{"past the old log", 1001}, {"inside the old log", 31}, {"right after the old log", 51}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "log")
			s := openT(t, dir)
			store(t, s, mkLogs(1, 10, 1))
			if err := s.DeleteRange(1, 5); err != nil {
				t.Fatal(err)
			}
			store(t, s, mkLogs(11, 50, 1))
			if err := s.DeleteRange(6, 50); err != nil {
				t.Fatal(err)
			}
			expect(t, s, 1, 0, term1)
			s = reopen(t, s)
			expect(t, s, 1, 0, term1)
			store(t, s, mkLogs(tc.next, tc.next+20, 4))
			s = reopen(t, s)
			defer s.Close()
			expect(t, s, tc.next, tc.next+20, func(uint64) uint64 { return 4 })
		})
	}
}

func TestStoreRefusesGapsAndMiddleDeletes(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "log"))
	defer s.Close()
	store(t, s, mkLogs(1, 20, 1))
	if err := s.StoreLogs(mkLogs(30, 31, 1)); err == nil {
		t.Fatal("append with a gap accepted")
	}
	if err := s.StoreLogs([]*raft.Log{mkLogs(21, 21, 1)[0], mkLogs(23, 23, 1)[0]}); err == nil {
		t.Fatal("non-contiguous append accepted")
	}
	if err := s.DeleteRange(5, 10); err == nil {
		t.Fatal("deleting from the middle accepted")
	}
	if err := s.DeleteRange(1, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(mkLogs(5, 6, 1)); err == nil {
		t.Fatal("append before the compaction marker accepted")
	}
	expect(t, s, 11, 20, term1)
}

// TestStoreAgainstInmem drives the store and hashicorp/raft's InmemStore
// with the same random operations, the ones hashicorp/raft makes, and
// reopens the store now and then: both must always hold the same log.
func TestStoreAgainstInmem(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			dir := filepath.Join(t.TempDir(), "log")
			s := openT(t, dir)
			defer func() { s.Close() }()
			model := raft.NewInmemStore()
			term := uint64(1)
			var snapshot uint64 // index after which an emptied log resumes
			for op := 0; op < 400; op++ {
				first, _ := model.FirstIndex()
				last, _ := model.LastIndex()
				switch r := rng.IntN(100); {
				case r < 60: // append
					next := last + 1
					if last == 0 {
						next = snapshot + 1
					}
					logs := mkLogs(next, next+uint64(rng.IntN(20)), term)
					store(t, s, logs)
					if err := model.StoreLogs(logs); err != nil {
						t.Fatal(err)
					}
				case r < 72 && last > first: // conflict: new term from somewhere in the tail
					from := first + uint64(rng.IntN(int(last-first+1)))
					term++
					mustDelete(t, s, model, from, last)
					logs := mkLogs(from, from+uint64(rng.IntN(10)), term)
					store(t, s, logs)
					if err := model.StoreLogs(logs); err != nil {
						t.Fatal(err)
					}
				case r < 84 && last > first: // compaction after a snapshot
					mustDelete(t, s, model, first, first+uint64(rng.IntN(int(last-first))))
				case r < 90 && last > 0: // snapshot install: the log emptied
					mustDelete(t, s, model, first, last)
					// The snapshot is at least the committed part of the old
					// log, maybe far beyond it.
					snapshot = first + uint64(rng.IntN(int(last-first+1)))
					if rng.IntN(2) == 0 {
						snapshot = last + uint64(rng.IntN(500))
					}
				case r < 100:
					s = reopen(t, s)
				}
				f0, l0 := first, last
				first, _ = model.FirstIndex()
				last, _ = model.LastIndex()
				t.Logf("op %d: %d..%d -> %d..%d", op, f0, l0, first, last)
				sameLog(t, s, model, first, last)
			}
			s = reopen(t, s)
			first, _ := model.FirstIndex()
			last, _ := model.LastIndex()
			sameLog(t, s, model, first, last)
		})
	}
}

func mustDelete(t *testing.T, s *Store, model *raft.InmemStore, min, max uint64) {
	t.Helper()
	if err := s.DeleteRange(min, max); err != nil {
		t.Fatalf("delete %d..%d: %v", min, max, err)
	}
	if err := model.DeleteRange(min, max); err != nil {
		t.Fatal(err)
	}
}

func sameLog(t *testing.T, s *Store, model *raft.InmemStore, first, last uint64) {
	t.Helper()
	f, _ := s.FirstIndex()
	l, _ := s.LastIndex()
	if f != first || l != last {
		t.Fatalf("store holds %d..%d, model %d..%d", f, l, first, last)
	}
	for i := first; i <= last && last > 0; i++ {
		var a, b raft.Log
		if err := s.GetLog(i, &a); err != nil {
			t.Fatalf("store get %d: %v", i, err)
		}
		if err := model.GetLog(i, &b); err != nil {
			t.Fatal(err)
		}
		if a.Term != b.Term || !bytes.Equal(a.Data, b.Data) {
			t.Fatalf("entry %d: store term %d, model term %d", i, a.Term, b.Term)
		}
	}
}

// BenchmarkAppend is one durable append of one 300-byte entry, as a
// single client's put costs the log: a write and one fdatasync.
func BenchmarkAppend(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "log"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := make([]byte, 300)
	b.ResetTimer()
	for i := range b.N {
		if err := s.StoreLog(&raft.Log{Index: uint64(i) + 1, Term: 1, Data: data}); err != nil {
			b.Fatal(err)
		}
	}
}
