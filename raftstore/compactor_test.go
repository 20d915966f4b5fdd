package raftstore_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/barge-dev/barge/raftstore"
	"github.com/barge-dev/barge/raftstore/storetest"
)

// The automatic compactor compacts on its own and records the revision in
// compact_rev_key, where Kubernetes API servers look for it.
func TestPeriodicCompactionRecordsRevision(t *testing.T) {
	c := storetest.NewCluster(t, 1, storetest.WithConfig(func(cfg *raftstore.Config) {
		cfg.CompactionMode = raftstore.CompactionPeriodic
		cfg.CompactionRetention = time.Second
	}))
	cli := c.Client()
	ctx := c.Ctx()
	first, err := cli.Put(ctx, "k", "v0")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 5; i++ {
		if _, err := cli.Put(ctx, "k", "v"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	w := cli.Watch(ctx, "compact_rev_key", clientv3.WithRev(first.Header.Revision))
	var compacted int64
	for resp := range w {
		if err := resp.Err(); err != nil {
			t.Fatalf("watch compact_rev_key: %v", err)
		}
		if len(resp.Events) > 0 {
			compacted, err = strconv.ParseInt(string(resp.Events[len(resp.Events)-1].Kv.Value), 10, 64)
			if err != nil {
				t.Fatalf("compact_rev_key holds %q", resp.Events[0].Kv.Value)
			}
			break
		}
	}
	if compacted < first.Header.Revision {
		t.Fatalf("recorded compaction at %d, before the first write %d", compacted, first.Header.Revision)
	}
	if _, err := cli.Get(ctx, "k", clientv3.WithRev(compacted-1)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("read below the recorded compaction: %v, want ErrCompacted", err)
	}
}

// Leadership that moves more often than the retention window still
// compacts on schedule: every peer samples revisions, so whoever leads
// when a sample ages out compacts to it. (A compactor that started its
// samples afresh each term would never compact here.)
func TestPeriodicCompactionAcrossLeaderChanges(t *testing.T) {
	const retention = 2 * time.Second
	c := storetest.NewCluster(t, 3, storetest.WithConfig(func(cfg *raftstore.Config) {
		cfg.CompactionMode = raftstore.CompactionPeriodic
		cfg.CompactionRetention = retention
	}))
	cli := c.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	first, err := cli.Put(ctx, "k", "v0")
	if err != nil {
		t.Fatal(err)
	}
	compacted := cli.Watch(ctx, "compact_rev_key", clientv3.WithRev(first.Header.Revision))
	members, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The workload: a write and a leadership move every quarter of the
	// retention, so no term lasts a whole window.
	tick := time.NewTicker(retention / 4)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	for i := 0; ; i++ {
		select {
		case resp := <-compacted:
			if err := resp.Err(); err != nil {
				t.Fatalf("watch compact_rev_key: %v", err)
			}
			if len(resp.Events) > 0 {
				return
			}
		case <-tick.C:
			c.Retry(func() error { _, err := cli.Put(ctx, "k", "v"+strconv.Itoa(i)); return err })
			leader := c.WaitLeader()
			st, err := c.Client(leader).Status(ctx, c.Endpoints(leader)[0])
			if err != nil {
				continue
			}
			target := members.Members[0].ID
			for _, m := range members.Members {
				if m.ID != st.Leader {
					target = m.ID
				}
			}
			if _, err := c.Client(leader).MoveLeader(ctx, target); err != nil {
				t.Logf("move leader: %v", err) // an election may have moved it already
			}
		case <-deadline:
			t.Fatal("no compaction while leadership moved every quarter of the retention")
		}
	}
}
