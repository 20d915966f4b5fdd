package raftstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"go.etcd.io/bbolt"
)

// LogStoreKind names where a peer keeps its Raft log. Raft's stable state
// (current term, vote) is in raft-boltdb (raft.db) with either.
type LogStoreKind string

const (
	// LogStoreBolt keeps the log in raft.db with the stable state
	// (hashicorp/raft-boltdb), the design's default. A commit there costs
	// two fdatasyncs: the data pages, then the meta page.
	LogStoreBolt LogStoreKind = "bolt"
	// LogStoreWAL keeps the log in preallocated, append-only segment
	// files under wal/ (hashicorp/raft-wal, which Consul offers instead of
	// raft-boltdb). An append costs one fsync, so a write waits for two
	// syncs in series (leader, then follower) rather than four.
	//
	// Experimental, as it still is in Consul: a crash between sealing a
	// full segment and recording the next one in wal-meta.db leaves every
	// later append failing with "segment is sealed" (reproduced with
	// v0.4.2; the member must then be removed and re-added with an empty
	// data dir), and hashicorp/raft#697 reports a stale last index after
	// a follower installs a snapshot on such a store.
	LogStoreWAL LogStoreKind = "wal"
)

// ParseLogStoreKind accepts "", "bolt" or "wal"; "" means whatever the
// data directory already uses, else bolt.
func ParseLogStoreKind(s string) (LogStoreKind, error) {
	switch k := LogStoreKind(s); k {
	case "", LogStoreBolt, LogStoreWAL:
		return k, nil
	}
	return "", fmt.Errorf("log store %q: want %s or %s", s, LogStoreBolt, LogStoreWAL)
}

const (
	stableFile = "raft.db"
	walDir     = "wal"
	walMeta    = "wal-meta.db"
)

// errLogStoreMismatch means the data directory's log is in another store
// than the one asked for: starting would begin with an empty log.
var errLogStoreMismatch = errors.New("log store mismatch")

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

// openLogStore opens the Raft log next to stable; the closer is nil when
// the log is stable itself. A data directory keeps the store it was first
// written with: the one holding entries wins, and asking for the other is
// an error rather than a silently empty log. A directory whose log is
// empty (new, or just restored from a snapshot) takes want, or bolt when
// want is "".
func openLogStore(dataDir string, want LogStoreKind, segmentBytes int, stable *raftboltdb.BoltStore, logger hclog.Logger) (raft.LogStore, io.Closer, LogStoreKind, error) {
	dir := filepath.Join(dataDir, walDir)
	_, statErr := os.Stat(filepath.Join(dir, walMeta))
	walUsed := statErr == nil
	last, err := stable.LastIndex()
	if err != nil {
		return nil, nil, "", fmt.Errorf("read raft log %s: %w", filepath.Join(dataDir, stableFile), err)
	}
	boltUsed := last > 0
	switch {
	case walUsed && boltUsed:
		return nil, nil, "", fmt.Errorf("%w: data dir %s has Raft log entries both in %s and in %s/; remove the one that is not current", errLogStoreMismatch, dataDir, stableFile, walDir)
	case walUsed && want == LogStoreBolt, boltUsed && want == LogStoreWAL:
		have := LogStoreBolt
		if walUsed {
			have = LogStoreWAL
		}
		return nil, nil, "", fmt.Errorf("%w: data dir %s keeps its Raft log in the %s store; --log-store=%s would start this member with an empty log (omit the flag, or give --log-store=%s)", errLogStoreMismatch, dataDir, have, want, have)
	}
	kind := want
	switch {
	case walUsed:
		kind = LogStoreWAL
	case boltUsed || kind == "":
		kind = LogStoreBolt
	}
	if kind == LogStoreBolt {
		return stable, nil, kind, nil // closed as the stable store
	}
	w, err := openWAL(dir, segmentBytes, logger)
	if err != nil {
		return nil, nil, "", err
	}
	return w, w, kind, nil
}

func openWAL(dir string, segmentBytes int, logger hclog.Logger) (*wal.WAL, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("raft log dir: %w", err)
	}
	// A zero segment size takes raft-wal's default.
	w, err := wal.Open(dir, wal.WithLogger(logger.Named("wal")), wal.WithSegmentSize(segmentBytes))
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	return w, nil
}
