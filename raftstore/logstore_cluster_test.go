package raftstore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/barge-dev/barge/raftstore"
	"github.com/barge-dev/barge/raftstore/storetest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestEtcdWALLogStore runs a cluster on the default log store (etcd's
// WAL, in the 64 KiB segments TestMain sets) through what the log store
// must survive: a follower catching up by snapshot (its log emptied under
// it), a leader crash, and a full restart replaying every log.
func TestEtcdWALLogStore(t *testing.T) {
	c := storetest.NewCluster(t, 3, storetest.WithConfig(func(cfg *raftstore.Config) {
		// Snapshot often, so that compactions purge whole segments and a
		// lagging follower must take the snapshot.
		cfg.SnapshotThreshold = 64
		cfg.TrailingLogs = 16
	}))
	// 1 KiB values fill several segments.
	value := strings.Repeat("v", 1<<10)
	// Each step gets its own deadline: the whole test can outlast one.
	// The puts go through a leader crash, so they retry as a client
	// would; a put is idempotent.
	put := func(from, to int) {
		t.Helper()
		ctx := c.Ctx()
		cli := c.Client()
		for i := from; i < to; i++ {
			c.Retry(func() error {
				_, err := cli.Put(ctx, fmt.Sprintf("k%04d", i), value)
				return err
			})
		}
	}
	count := func(i int) int64 {
		t.Helper()
		resp, err := c.Client(i).Get(c.Ctx(), "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatalf("count on %s: %v", c.Members[i].Name, err)
		}
		return resp.Count
	}

	follower := (c.Leader() + 1) % 3
	c.Stop(follower)
	put(0, 300)
	for i, m := range c.Members {
		if m.Server != nil {
			if err := m.Server.TakeSnapshot(); err != nil {
				t.Fatalf("snapshot on %d: %v", i, err)
			}
		}
	}
	c.Restart(follower)
	if n := count(follower); n != 300 {
		t.Fatalf("follower back from a snapshot sees %d keys, want 300", n)
	}
	if c.Members[follower].Server.SnapshotsInstalled() == 0 {
		t.Fatal("follower caught up without a snapshot; the log reset was not exercised")
	}

	leader := c.Leader()
	c.Kill(leader)
	put(300, 400)
	c.Restart(leader)

	for i := range c.Members {
		c.Stop(i)
	}
	for i := range c.Members {
		c.Restart(i)
	}
	for i, m := range c.Members {
		if n := count(i); n != 400 {
			t.Fatalf("%s sees %d keys after a full restart, want 400", m.Name, n)
		}
		segs, err := filepath.Glob(filepath.Join(m.DataDir, "raftlog", "*.wal"))
		if err != nil || len(segs) == 0 {
			t.Fatalf("%s has no WAL segments in %s (err %v)", m.Name, m.DataDir, err)
		}
		if first := filepath.Base(segs[0]); i != follower && first == "0000000000000000-0000000000000000.wal" {
			t.Errorf("%s still has its first segment: compaction purged nothing", m.Name)
		}
		if _, err := os.Stat(filepath.Join(m.DataDir, "raft.db")); err != nil {
			t.Fatalf("%s keeps no stable state: %v", m.Name, err)
		}
	}
	assertConverged(t, c)
}
