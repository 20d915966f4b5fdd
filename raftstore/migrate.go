package raftstore

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/barge-dev/barge/raftstore/raftlog"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// migrateBatch is how many entries one append of a migration carries.
const migrateBatch = 256

// MigrateLogStore moves a stopped member's Raft log into the store to,
// entry for entry, then removes it from the store it was in. Term, vote,
// snapshots and identity stay where they are. A migration cut short (a
// crash, Ctrl-C) is finished by running it again: until the old log is
// removed the data dir holds two logs, which the server refuses to start
// on and a second run sorts out.
func MigrateLogStore(dataDir string, to LogStoreKind, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	switch to {
	case LogStoreEtcdWAL, LogStoreBolt:
	case LogStoreWAL:
		return fmt.Errorf("%w: cannot migrate to %s (hashicorp/raft-wal); use %s or %s", errLogStoreRetired, to, LogStoreEtcdWAL, LogStoreBolt)
	default:
		return fmt.Errorf("migrate to log store %q: want %s or %s", to, LogStoreEtcdWAL, LogStoreBolt)
	}
	if _, err := os.Stat(filepath.Join(dataDir, stableFile)); err != nil {
		return fmt.Errorf("data dir %s has no %s: not a barge member's data dir: %w", dataDir, stableFile, err)
	}
	// A running member holds raft.db's lock; waiting a moment, not
	// forever, tells the operator to stop it first.
	opts := stableBoltOptions()
	opts.Timeout = 2 * time.Second
	stable, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dataDir, stableFile), BoltOptions: opts})
	if err != nil {
		return fmt.Errorf("open %s (is the member still running? stop it first): %w", filepath.Join(dataDir, stableFile), err)
	}
	defer stable.Close()
	used, err := logStoresIn(dataDir, stable)
	if err != nil {
		return err
	}
	var from LogStoreKind
	switch {
	case len(used) == 0:
		logger.Info("no Raft log to migrate; the member will create one", "dataDir", dataDir, "store", to)
		return nil
	case len(used) == 1 && used[0] == to:
		logger.Info("Raft log already in the wanted store", "dataDir", dataDir, "store", to)
		return nil
	case len(used) == 1:
		from = used[0]
	case len(used) == 2 && (used[0] == to || used[1] == to):
		// An earlier migration was cut short; the other one is the source.
		from = used[0]
		if from == to {
			from = used[1]
		}
		logger.Info("finishing an interrupted migration", "from", from, "to", to)
	default:
		return fmt.Errorf("%w: data dir %s has a Raft log in %s; cannot tell which is current", errLogStoreMismatch, dataDir, joinKinds(used))
	}

	o := logStoreOptions{hlog: hclog.NewNullLogger(), logger: logger}
	src, srcCloser, err := openKind(dataDir, from, stable, o)
	if err != nil {
		return err
	}
	first, last, err := logRange(src)
	if err != nil {
		closeQuiet(srcCloser)
		return fmt.Errorf("read the %s log: %w", from, err)
	}
	// A target left part-filled by the interrupted run starts over.
	if len(used) == 2 {
		if err := removeLog(dataDir, to, stable); err != nil {
			closeQuiet(srcCloser)
			return err
		}
	}
	dst, dstCloser, err := openKind(dataDir, to, stable, o)
	if err != nil {
		closeQuiet(srcCloser)
		return err
	}
	err = copyLog(src, dst, first, last)
	if err == nil {
		err = sameRange(src, dst)
	}
	if dstCloser != nil {
		err = errors.Join(err, dstCloser.Close())
	}
	closeQuiet(srcCloser)
	if err != nil {
		return fmt.Errorf("migrate the Raft log of %s from %s to %s (the %s log is untouched; run again to retry): %w", dataDir, from, to, from, err)
	}
	if err := removeLog(dataDir, from, stable); err != nil {
		return fmt.Errorf("migrated, but removing the old %s log failed (run again to finish): %w", from, err)
	}
	logger.Info("migrated the Raft log", "dataDir", dataDir, "from", from, "to", to, "first", first, "last", last)
	return nil
}

func openKind(dataDir string, k LogStoreKind, stable *raftboltdb.BoltStore, o logStoreOptions) (raft.LogStore, io.Closer, error) {
	switch k {
	case LogStoreBolt:
		return stable, nil, nil
	case LogStoreWAL:
		w, err := openRaftWAL(filepath.Join(dataDir, walDir), o.hlog)
		return w, w, err
	default:
		s, err := raftlog.Open(filepath.Join(dataDir, etcdWALDir), raftlog.Options{Logger: o.logger})
		if err != nil {
			return nil, nil, err
		}
		return s, s, nil
	}
}

func logRange(s raft.LogStore) (first, last uint64, err error) {
	if first, err = s.FirstIndex(); err != nil {
		return 0, 0, err
	}
	last, err = s.LastIndex()
	return first, last, err
}

func copyLog(src, dst raft.LogStore, first, last uint64) error {
	if last == 0 {
		return nil
	}
	batch := make([]*raft.Log, 0, migrateBatch)
	for i := first; i <= last; i++ {
		l := new(raft.Log)
		if err := src.GetLog(i, l); err != nil {
			return fmt.Errorf("read entry %d of %d..%d: %w", i, first, last, err)
		}
		batch = append(batch, l)
		if len(batch) == migrateBatch || i == last {
			if err := dst.StoreLogs(batch); err != nil {
				return fmt.Errorf("write entries %d..%d: %w", batch[0].Index, i, err)
			}
			batch = batch[:0]
		}
	}
	return nil
}

// sameRange checks that dst holds what src holds, down to the last
// entry's term and bytes.
func sameRange(src, dst raft.LogStore) error {
	f1, l1, err := logRange(src)
	if err != nil {
		return err
	}
	f2, l2, err := logRange(dst)
	if err != nil {
		return err
	}
	if f1 != f2 || l1 != l2 {
		return fmt.Errorf("copied log holds %d..%d, the original %d..%d", f2, l2, f1, l1)
	}
	if l1 == 0 {
		return nil
	}
	var a, b raft.Log
	if err := src.GetLog(l1, &a); err != nil {
		return err
	}
	if err := dst.GetLog(l1, &b); err != nil {
		return err
	}
	if a.Term != b.Term || string(a.Data) != string(b.Data) {
		return fmt.Errorf("entry %d differs after the copy", l1)
	}
	return nil
}

// removeLog deletes the log a store holds; raft.db keeps the stable state.
func removeLog(dataDir string, k LogStoreKind, stable *raftboltdb.BoltStore) error {
	switch k {
	case LogStoreBolt:
		first, last, err := logRange(stable)
		if err != nil || last == 0 {
			return err
		}
		return stable.DeleteRange(first, last)
	case LogStoreWAL:
		return os.RemoveAll(filepath.Join(dataDir, walDir))
	default:
		return os.RemoveAll(filepath.Join(dataDir, etcdWALDir))
	}
}

func closeQuiet(c io.Closer) {
	if c != nil {
		_ = c.Close()
	}
}
