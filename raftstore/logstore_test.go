package raftstore

import (
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// seedLog leaves dir with one Raft log entry in the given store, opened
// directly so that a test can also build a directory with both.
func seedLog(t *testing.T, dir string, kind LogStoreKind) {
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
		w, err := openWAL(filepath.Join(dir, walDir), 0, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		logs, closer = w, w
	}
	defer closer.Close()
	if err := logs.StoreLog(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenLogStoreKeepsTheDataDirsStore(t *testing.T) {
	for _, tc := range []struct {
		name     string
		existing []LogStoreKind // stores that already hold entries
		want     LogStoreKind
		opens    LogStoreKind
		mismatch bool
	}{
		{name: "new dir defaults to bolt", opens: LogStoreBolt},
		{name: "new dir takes bolt", want: LogStoreBolt, opens: LogStoreBolt},
		{name: "new dir takes wal", want: LogStoreWAL, opens: LogStoreWAL},
		{name: "bolt dir kept without flag", existing: []LogStoreKind{LogStoreBolt}, opens: LogStoreBolt},
		{name: "wal dir kept without flag", existing: []LogStoreKind{LogStoreWAL}, opens: LogStoreWAL},
		{name: "wal dir kept with flag", existing: []LogStoreKind{LogStoreWAL}, want: LogStoreWAL, opens: LogStoreWAL},
		{name: "bolt dir refuses wal", existing: []LogStoreKind{LogStoreBolt}, want: LogStoreWAL, mismatch: true},
		{name: "wal dir refuses bolt", existing: []LogStoreKind{LogStoreWAL}, want: LogStoreBolt, mismatch: true},
		{name: "entries in both refused", existing: []LogStoreKind{LogStoreBolt, LogStoreWAL}, mismatch: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, k := range tc.existing {
				seedLog(t, dir, k)
			}
			stable, err := openStable(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer stable.Close()
			logs, closer, got, err := openLogStore(dir, tc.want, 0, stable, hclog.NewNullLogger())
			if tc.mismatch {
				if !errors.Is(err, errLogStoreMismatch) {
					t.Fatalf("err = %v, want a log store mismatch", err)
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
			if want := uint64(len(tc.existing)); last != want {
				t.Fatalf("last index %d, want %d: the existing log was not the one opened", last, want)
			}
		})
	}
}

func TestParseLogStoreKind(t *testing.T) {
	for in, want := range map[string]LogStoreKind{"": "", "bolt": LogStoreBolt, "wal": LogStoreWAL} {
		if got, err := ParseLogStoreKind(in); err != nil || got != want {
			t.Errorf("ParseLogStoreKind(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseLogStoreKind("boltdb"); err == nil {
		t.Error("ParseLogStoreKind(boltdb) accepted an unknown store")
	}
}
