package raftstore

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/barge-dev/barge/raftstore/raftlog"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// seedLog leaves dir with entries 1..n in the given store, opened
// directly so that a test can also build a directory with two.
func seedLog(t *testing.T, dir string, kind LogStoreKind, n uint64) {
	t.Helper()
	var (
		logs   raft.LogStore
		closer io.Closer
	)
	switch kind {
	case LogStoreBolt:
		stable, err := openStable(dir)
		if err != nil {
			t.Fatal(err)
		}
		logs, closer = stable, stable
	case LogStoreWAL:
		w, err := openRaftWAL(filepath.Join(dir, walDir), hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		logs, closer = w, w
	case LogStoreEtcdWAL:
		s, err := raftlog.Open(filepath.Join(dir, etcdWALDir), raftlog.Options{})
		if err != nil {
			t.Fatal(err)
		}
		logs, closer = s, s
	}
	defer closer.Close()
	var batch []*raft.Log
	for i := uint64(1); i <= n; i++ {
		batch = append(batch, &raft.Log{Index: i, Term: 1 + i/100, Type: raft.LogCommand, Data: fmt.Appendf(nil, "entry %d", i)})
	}
	if err := logs.StoreLogs(batch); err != nil {
		t.Fatal(err)
	}
}

func TestOpenLogStoreKeepsTheDataDirsStore(t *testing.T) {
	for _, tc := range []struct {
		name     string
		existing []LogStoreKind // stores that already hold entries
		want     LogStoreKind
		opens    LogStoreKind
		err      error
	}{
		{name: "new dir takes the default", opens: DefaultLogStore},
		{name: "new dir takes etcd-wal", want: LogStoreEtcdWAL, opens: LogStoreEtcdWAL},
		{name: "new dir takes bolt", want: LogStoreBolt, opens: LogStoreBolt},
		{name: "new dir refuses raft-wal", want: LogStoreWAL, err: errLogStoreRetired},
		{name: "etcd-wal dir kept without flag", existing: []LogStoreKind{LogStoreEtcdWAL}, opens: LogStoreEtcdWAL},
		{name: "bolt dir kept without flag", existing: []LogStoreKind{LogStoreBolt}, opens: LogStoreBolt},
		{name: "raft-wal dir still opens", existing: []LogStoreKind{LogStoreWAL}, opens: LogStoreWAL},
		{name: "raft-wal dir kept with flag", existing: []LogStoreKind{LogStoreWAL}, want: LogStoreWAL, opens: LogStoreWAL},
		{name: "bolt dir refuses etcd-wal", existing: []LogStoreKind{LogStoreBolt}, want: LogStoreEtcdWAL, err: errLogStoreMismatch},
		{name: "etcd-wal dir refuses bolt", existing: []LogStoreKind{LogStoreEtcdWAL}, want: LogStoreBolt, err: errLogStoreMismatch},
		{name: "raft-wal dir refuses etcd-wal", existing: []LogStoreKind{LogStoreWAL}, want: LogStoreEtcdWAL, err: errLogStoreMismatch},
		{name: "entries in two refused", existing: []LogStoreKind{LogStoreBolt, LogStoreEtcdWAL}, err: errLogStoreMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, k := range tc.existing {
				seedLog(t, dir, k, 3)
			}
			stable, err := openStable(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer stable.Close()
			logs, closer, got, err := openLogStore(dir, tc.want, stable, logStoreOptions{hlog: hclog.NewNullLogger()})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if closer != nil {
				defer closer.Close()
			}
			if got != tc.opens {
				t.Fatalf("opened %s, want %s", got, tc.opens)
			}
			last, err := logs.LastIndex()
			if err != nil {
				t.Fatal(err)
			}
			if want := uint64(3 * len(tc.existing)); last != want {
				t.Fatalf("last index %d, want %d: the existing log was not the one opened", last, want)
			}
		})
	}
}

func TestParseLogStoreKind(t *testing.T) {
	for in, want := range map[string]LogStoreKind{"": "", "etcd-wal": LogStoreEtcdWAL, "bolt": LogStoreBolt, "wal": LogStoreWAL} {
		if got, err := ParseLogStoreKind(in); err != nil || got != want {
			t.Errorf("ParseLogStoreKind(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseLogStoreKind("boltdb"); err == nil {
		t.Error("ParseLogStoreKind(boltdb) accepted an unknown store")
	}
}

// openedLog opens dir the way the server does and returns its log's kind
// and entries.
func openedLog(t *testing.T, dir string) (LogStoreKind, []raft.Log) {
	t.Helper()
	stable, err := openStable(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer stable.Close()
	logs, closer, kind, err := openLogStore(dir, "", stable, logStoreOptions{hlog: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if closer != nil {
		defer closer.Close()
	}
	first, last, err := logRange(logs)
	if err != nil {
		t.Fatal(err)
	}
	var out []raft.Log
	for i := first; i <= last && last > 0; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return kind, out
}

func TestMigrateLogStore(t *testing.T) {
	for _, tc := range []struct{ from, to LogStoreKind }{
		{LogStoreBolt, LogStoreEtcdWAL},
		{LogStoreWAL, LogStoreEtcdWAL},
		{LogStoreEtcdWAL, LogStoreBolt},
		{LogStoreWAL, LogStoreBolt},
	} {
		t.Run(fmt.Sprintf("%s to %s", tc.from, tc.to), func(t *testing.T) {
			dir := t.TempDir()
			seedLog(t, dir, tc.from, 700)
			_, before := openedLog(t, dir)
			if err := MigrateLogStore(dir, tc.to, discardLogger()); err != nil {
				t.Fatal(err)
			}
			kind, after := openedLog(t, dir)
			if kind != tc.to {
				t.Fatalf("after migration the data dir opens %s, want %s", kind, tc.to)
			}
			sameEntries(t, before, after)
			// Once more is a no-op.
			if err := MigrateLogStore(dir, tc.to, discardLogger()); err != nil {
				t.Fatal(err)
			}
			if _, again := openedLog(t, dir); len(again) != len(before) {
				t.Fatalf("second migration left %d entries of %d", len(again), len(before))
			}
		})
	}
}

// A migration that died after copying, before removing the old log,
// leaves two logs; running it again finishes the job.
func TestMigrateLogStoreFinishesAnInterruptedRun(t *testing.T) {
	dir := t.TempDir()
	seedLog(t, dir, LogStoreBolt, 300)
	_, before := openedLog(t, dir)
	// The copy got part of the way.
	seedLog(t, dir, LogStoreEtcdWAL, 120)
	if err := MigrateLogStore(dir, LogStoreEtcdWAL, discardLogger()); err != nil {
		t.Fatal(err)
	}
	kind, after := openedLog(t, dir)
	if kind != LogStoreEtcdWAL {
		t.Fatalf("opens %s", kind)
	}
	sameEntries(t, before, after)
}

func TestMigrateLogStoreRefuses(t *testing.T) {
	t.Run("a running member", func(t *testing.T) {
		dir := t.TempDir()
		seedLog(t, dir, LogStoreBolt, 3)
		stable, err := openStable(dir) // holds raft.db's lock, as a server does
		if err != nil {
			t.Fatal(err)
		}
		defer stable.Close()
		err = MigrateLogStore(dir, LogStoreEtcdWAL, discardLogger())
		if err == nil || !strings.Contains(err.Error(), "still running") {
			t.Fatalf("err = %v, want a hint that the member is running", err)
		}
	})
	t.Run("the retired store", func(t *testing.T) {
		dir := t.TempDir()
		seedLog(t, dir, LogStoreBolt, 3)
		if err := MigrateLogStore(dir, LogStoreWAL, discardLogger()); !errors.Is(err, errLogStoreRetired) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("not a data dir", func(t *testing.T) {
		if err := MigrateLogStore(t.TempDir(), LogStoreEtcdWAL, discardLogger()); err == nil || !strings.Contains(err.Error(), stableFile) {
			t.Fatalf("err = %v", err)
		}
	})
}

func sameEntries(t *testing.T, want, got []raft.Log) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Index != want[i].Index || got[i].Term != want[i].Term || string(got[i].Data) != string(want[i].Data) {
			t.Fatalf("entry %d: %+v, want %+v", want[i].Index, got[i], want[i])
		}
	}
}
