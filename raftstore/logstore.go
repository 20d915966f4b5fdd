package raftstore

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/barge-dev/barge/raftstore/raftlog"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"go.etcd.io/bbolt"
)

// LogStoreKind names where a peer keeps its Raft log. Raft's stable state
// (current term, vote) is in raft-boltdb (raft.db) with every kind.
type LogStoreKind string

const (
	// LogStoreEtcdWAL keeps the log in etcd's write-ahead log under
	// raftlog/ (package raftstore/raftlog): one write and one fdatasync
	// per append, the entries since the last compaction in memory. The
	// default for new data directories.
	LogStoreEtcdWAL LogStoreKind = "etcd-wal"
	// LogStoreBolt keeps the log in raft.db with the stable state
	// (hashicorp/raft-boltdb). A commit there costs two fdatasyncs: the
	// data pages, then the meta page.
	LogStoreBolt LogStoreKind = "bolt"
	// LogStoreWAL is hashicorp/raft-wal under wal/, the experimental store
	// of barge before etcd-wal. Retired: data directories that use it
	// still open, new ones cannot take it, and `barge server
	// --migrate-log-store` moves such a log to another store. It had an
	// open crash-recovery bug (a crash between sealing a segment and
	// recording the next leaves every later append failing with "segment
	// is sealed"), and etcd-wal won every bench row it was compared on.
	LogStoreWAL LogStoreKind = "wal"
)

// DefaultLogStore is the store a new data directory gets.
const DefaultLogStore = LogStoreEtcdWAL

// ParseLogStoreKind accepts "", "etcd-wal", "bolt" or "wal"; "" means
// whatever the data directory already uses, else DefaultLogStore.
func ParseLogStoreKind(s string) (LogStoreKind, error) {
	switch k := LogStoreKind(s); k {
	case "", LogStoreEtcdWAL, LogStoreBolt, LogStoreWAL:
		return k, nil
	}
	return "", fmt.Errorf("log store %q: want %s or %s (or %s, only for data dirs that already use it)", s, LogStoreEtcdWAL, LogStoreBolt, LogStoreWAL)
}

const (
	stableFile = "raft.db"
	walDir     = "wal" // LogStoreWAL
	walMeta    = "wal-meta.db"
	etcdWALDir = "raftlog" // LogStoreEtcdWAL
)

// errLogStoreMismatch means the data directory's log is in another store
// than the one asked for: starting would begin with an empty log.
var errLogStoreMismatch = errors.New("log store mismatch")

// errLogStoreRetired means a new data directory asked for raft-wal.
var errLogStoreRetired = errors.New("log store retired")

// stableBoltOptions are etcd's choices for its own bbolt file: the
// freelist is rebuilt on open rather than written on every commit, and
// kept as a map, whose allocations do not slow down as it grows after
// log truncations. Both cut what each commit writes and costs.
func stableBoltOptions() *bbolt.Options {
	return &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType}
}

func openStable(dataDir string) (*raftboltdb.BoltStore, error) {
	path := filepath.Join(dataDir, stableFile)
	store, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: stableBoltOptions()})
	if err != nil {
		return nil, fmt.Errorf("open raft state %s: %w", path, err)
	}
	return store, nil
}

// logStoresIn lists the stores that hold the data directory's Raft log.
// raft-boltdb counts when it has entries; the WALs count once they exist.
func logStoresIn(dataDir string, stable *raftboltdb.BoltStore) ([]LogStoreKind, error) {
	var used []LogStoreKind
	if raftlog.Exists(filepath.Join(dataDir, etcdWALDir)) {
		used = append(used, LogStoreEtcdWAL)
	}
	last, err := stable.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("read raft log %s: %w", filepath.Join(dataDir, stableFile), err)
	}
	if last > 0 {
		used = append(used, LogStoreBolt)
	}
	if _, err := os.Stat(filepath.Join(dataDir, walDir, walMeta)); err == nil {
		used = append(used, LogStoreWAL)
	}
	return used, nil
}

// logStoreOptions are what opening a log store may need besides the dir.
type logStoreOptions struct {
	hlog   hclog.Logger
	logger *slog.Logger
}

// openLogStore opens the Raft log next to stable; the closer is nil when
// the log is stable itself. A data directory keeps the store it was first
// written with: asking for another is an error rather than a silently
// empty log. A directory with no log yet (new, or just restored from a
// snapshot) takes want, or DefaultLogStore when want is "".
func openLogStore(dataDir string, want LogStoreKind, stable *raftboltdb.BoltStore, o logStoreOptions) (raft.LogStore, io.Closer, LogStoreKind, error) {
	used, err := logStoresIn(dataDir, stable)
	if err != nil {
		return nil, nil, "", err
	}
	kind := want
	switch {
	case len(used) > 1:
		return nil, nil, "", fmt.Errorf("%w: data dir %s has a Raft log in %s; remove the ones that are not current", errLogStoreMismatch, dataDir, joinKinds(used))
	case len(used) == 1 && want != "" && want != used[0]:
		return nil, nil, "", fmt.Errorf("%w: data dir %s keeps its Raft log in the %s store; --log-store=%s would start this member with an empty log (omit the flag, give --log-store=%s, or move the log with barge server --data-dir %s --migrate-log-store=%s while the member is stopped)",
			errLogStoreMismatch, dataDir, used[0], want, used[0], dataDir, want)
	case len(used) == 1:
		kind = used[0]
	case kind == "":
		kind = DefaultLogStore
	case kind == LogStoreWAL:
		return nil, nil, "", fmt.Errorf("%w: --log-store=%s (hashicorp/raft-wal) is no longer offered for new data dirs; use %s, the default", errLogStoreRetired, LogStoreWAL, LogStoreEtcdWAL)
	}
	switch kind {
	case LogStoreBolt:
		return stable, nil, kind, nil // closed as the stable store
	case LogStoreWAL:
		w, err := openRaftWAL(filepath.Join(dataDir, walDir), o.hlog)
		if err != nil {
			return nil, nil, "", err
		}
		return w, w, kind, nil
	default:
		s, err := raftlog.Open(filepath.Join(dataDir, etcdWALDir), raftlog.Options{Logger: o.logger})
		if err != nil {
			return nil, nil, "", err
		}
		return s, s, kind, nil
	}
}

func joinKinds(ks []LogStoreKind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, " and ")
}

func openRaftWAL(dir string, logger hclog.Logger) (*wal.WAL, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("raft log dir: %w", err)
	}
	w, err := wal.Open(dir, wal.WithLogger(logger.Named("wal")))
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	return w, nil
}
