package raftstore

import (
	"os"
	"testing"

	"github.com/barge-dev/barge/raftstore/raftlog"
)

// Every test cluster keeps its Raft log in 64 KiB segments, so that
// ordinary tests cut segments and snapshots purge them, as production
// does with 64 MB ones only after much longer.
func TestMain(m *testing.M) {
	raftlog.SetSegmentBytes(64 << 10)
	os.Exit(m.Run())
}
