package raftstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/barge-dev/barge/raftstore"
	"github.com/barge-dev/barge/raftstore/snapfile"
	"github.com/barge-dev/barge/raftstore/storetest"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestLeaderFailoverKeepsAcknowledgedWrites writes continuously from
// several clients, kills the leader, and checks that a new leader is
// elected and every write that was acknowledged is still there.
func TestLeaderFailoverKeepsAcknowledgedWrites(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d peers", n), func(t *testing.T) {
			c := storetest.NewCluster(t, n)
			cli := c.Client()
			ctx := c.Ctx()

			var mu sync.Mutex
			acked := map[string]string{}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						k, v := fmt.Sprintf("w%d/%06d", w, i), fmt.Sprint(i)
						wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
						_, err := cli.Put(wctx, k, v)
						cancel()
						if err == nil {
							mu.Lock()
							acked[k] = v
							mu.Unlock()
						}
					}
				}()
			}
			// Let some writes land, kill the leader, and wait for writes
			// to be acknowledged again after the election.
			waitAcked := func(target int) {
				for {
					mu.Lock()
					got := len(acked)
					mu.Unlock()
					if got >= target {
						return
					}
					if ctx.Err() != nil {
						t.Fatalf("only %d writes acknowledged, want %d", got, target)
					}
					if _, err := cli.Get(ctx, "progress-probe"); err != nil && ctx.Err() != nil {
						t.Fatal(err)
					}
				}
			}
			waitAcked(50)
			old := c.Leader()
			c.Kill(old)
			newLeader := c.WaitLeader()
			if newLeader == old {
				t.Fatalf("leader %d was killed but is still reported", old)
			}
			mu.Lock()
			before := len(acked)
			mu.Unlock()
			waitAcked(before + 50)
			close(stop)
			wg.Wait()

			// Every acknowledged write is readable, linearizably, from the
			// survivors.
			for k, v := range acked {
				resp, err := cli.Get(ctx, k)
				if err != nil {
					t.Fatalf("get %s: %v", k, err)
				}
				if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != v {
					t.Fatalf("acknowledged write %s=%s lost after failover (got %v)", k, v, resp.Kvs)
				}
			}
			// The restarted ex-leader rejoins and converges.
			c.Restart(old)
			assertConverged(t, c)
		})
	}
}

// assertConverged waits until every running peer has applied the same
// index and reports the same HashKV.
func assertConverged(t *testing.T, c *storetest.Cluster) {
	t.Helper()
	ctx := c.Ctx()
	cli := c.Client()
	// A write through the leader gives every peer an index to reach.
	resp, err := cli.Put(ctx, "converge-marker", time.Now().String())
	if err != nil {
		t.Fatalf("marker write: %v", err)
	}
	rev := resp.Header.Revision
	var hashes []uint32
	for i, m := range c.Members {
		if m.Server == nil {
			continue
		}
		pc := c.Client(i)
		// A linearizable read served by this peer waits for it to apply
		// everything up to the read index.
		if _, err := pc.Get(ctx, "converge-marker"); err != nil {
			t.Fatalf("read from %s: %v", m.Name, err)
		}
		h, err := pc.HashKV(ctx, m.ClientAddr, rev)
		if err != nil {
			t.Fatalf("hashkv %s: %v", m.Name, err)
		}
		hashes = append(hashes, h.Hash)
	}
	for i := 1; i < len(hashes); i++ {
		if hashes[i] != hashes[0] {
			t.Fatalf("peers disagree at revision %d: hashes %x", rev, hashes)
		}
	}
}

// TestFollowerCatchesUpBySnapshot stops a follower, writes past the
// leader's log retention, and checks the follower catches up by
// installing a snapshot rather than replaying the log.
func TestFollowerCatchesUpBySnapshot(t *testing.T) {
	c := storetest.NewCluster(t, 3, storetest.WithConfig(func(cfg *raftstore.Config) {
		cfg.SnapshotThreshold = 64
		cfg.TrailingLogs = 16
	}))
	cli := c.Client()
	ctx := c.Ctx()
	leader := c.Leader()
	follower := (leader + 1) % 3
	c.Stop(follower)
	for i := 0; i < 500; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("k%04d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	// Truncate the log on every running peer, not just the current
	// leader: leadership may move (CI machines are slow), and whoever
	// leads when the follower returns must have to send a snapshot.
	for i, m := range c.Members {
		if m.Server == nil {
			continue
		}
		if err := m.Server.TakeSnapshot(); err != nil {
			t.Fatalf("snapshot on %d: %v", i, err)
		}
	}
	c.Restart(follower)
	fc := c.Client(follower)
	resp, err := fc.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 500 {
		t.Fatalf("restarted follower sees %d keys, want 500", resp.Count)
	}
	if n := c.Members[follower].Server.SnapshotsInstalled(); n == 0 {
		t.Fatal("follower caught up without installing a snapshot; the test did not exercise InstallSnapshot")
	}
	assertConverged(t, c)
}

func TestLeaseExpiryDeletesKeys(t *testing.T) {
	c := storetest.NewCluster(t, 3)
	cli := c.Client()
	ctx := c.Ctx()
	lease, err := cli.Grant(ctx, 1) // raised to the 2 s minimum
	if err != nil {
		t.Fatal(err)
	}
	if lease.TTL != 2 {
		t.Fatalf("granted TTL %d, want the 2 s minimum", lease.TTL)
	}
	put, err := cli.Put(ctx, "ephemeral", "x", clientv3.WithLease(lease.ID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "durable", "y"); err != nil {
		t.Fatal(err)
	}
	// Wait for the deletion event rather than for time to pass.
	wch := cli.Watch(ctx, "ephemeral", clientv3.WithRev(put.Header.Revision+1))
	for resp := range wch {
		if err := resp.Err(); err != nil {
			t.Fatal(err)
		}
		if len(resp.Events) > 0 {
			if ev := resp.Events[0]; ev.Type != mvccpb.DELETE {
				t.Fatalf("got %v, want the lease expiry's DELETE", ev.Type)
			}
			break
		}
	}
	ttl, err := cli.TimeToLive(ctx, lease.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ttl.TTL != -1 {
		t.Fatalf("expired lease still has TTL %d", ttl.TTL)
	}
	for i := range c.Members {
		resp, err := c.Client(i).Get(ctx, "", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != "durable" {
			t.Fatalf("peer %d holds %v after expiry, want only durable", i, resp.Kvs)
		}
	}
}

// TestLeaseSurvivesLeaderChanges keeps a short lease alive through
// several leader kills. A new leader restarts every TTL, so the time the
// election takes never counts against a lease.
func TestLeaseSurvivesLeaderChanges(t *testing.T) {
	c := storetest.NewCluster(t, 3)
	cli := c.Client()
	ctx := c.Ctx()
	lease, err := cli.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "held", "x", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	ka, err := cli.KeepAlive(ctx, lease.ID)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ka { // drain keep-alive responses
		}
	}()
	for round := 0; round < 3; round++ {
		old := c.Leader()
		c.Kill(old)
		c.WaitLeader()
		ttl, err := cli.TimeToLive(ctx, lease.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ttl.TTL <= 0 {
			t.Fatalf("round %d: lease expired across a leader change (TTL %d)", round, ttl.TTL)
		}
		resp, err := cli.Get(ctx, "held")
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 1 {
			t.Fatalf("round %d: key attached to a kept-alive lease vanished", round)
		}
		c.Restart(old)
	}
}

func TestWatchResumeAndCompacted(t *testing.T) {
	c := storetest.NewCluster(t, 3)
	cli := c.Client()
	ctx := c.Ctx()
	var revs []int64
	for i := 0; i < 6; i++ {
		resp, err := cli.Put(ctx, fmt.Sprintf("w/%d", i), fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, resp.Header.Revision)
	}
	if _, err := cli.Put(ctx, "other", "x"); err != nil {
		t.Fatal(err)
	}
	// Resume from the third write: exactly writes 2..5, in order, once.
	for i := range c.Members {
		wctx, cancel := context.WithCancel(ctx)
		wch := c.Client(i).Watch(wctx, "w/", clientv3.WithPrefix(), clientv3.WithRev(revs[2]), clientv3.WithPrevKV())
		var got []string
		for len(got) < 4 {
			resp := <-wch
			if err := resp.Err(); err != nil {
				t.Fatal(err)
			}
			for _, ev := range resp.Events {
				got = append(got, fmt.Sprintf("%s@%d", ev.Kv.Key, ev.Kv.ModRevision))
			}
		}
		want := []string{}
		for j := 2; j < 6; j++ {
			want = append(want, fmt.Sprintf("w/%d@%d", j, revs[j]))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("peer %d resumed watch got %v, want %v", i, got, want)
		}
		cancel()
	}
	if _, err := cli.Compact(ctx, revs[4]); err != nil {
		t.Fatal(err)
	}
	for i := range c.Members {
		pc := c.Client(i)
		// A linearizable read makes this peer apply the compaction first.
		if _, err := pc.Get(ctx, "sync"); err != nil {
			t.Fatal(err)
		}
		resp := <-pc.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithRev(revs[1]))
		if !errors.Is(resp.Err(), rpctypes.ErrCompacted) || resp.CompactRevision != revs[4] {
			t.Fatalf("peer %d: watch from compacted revision: err %v compactRev %d, want ErrCompacted at %d", i, resp.Err(), resp.CompactRevision, revs[4])
		}
	}
	if _, err := cli.Get(ctx, "w/0", clientv3.WithRev(revs[1])); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("range at compacted revision: %v", err)
	}
	if _, err := cli.Get(ctx, "w/0", clientv3.WithRev(revs[5]+100)); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Fatalf("range at future revision: %v", err)
	}
}

func saveSnapshot(t *testing.T, cli *clientv3.Client, path string) snapfile.Metadata {
	t.Helper()
	rc, err := cli.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	err = snapfile.WriteFileAtomic(path, func(w io.Writer) error {
		_, err := io.Copy(w, rc)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	meta, _, err := snapfile.Verify(f)
	if err != nil {
		t.Fatalf("saved snapshot does not verify: %v", err)
	}
	return meta
}

func TestSnapshotSaveAndOfflineRestore(t *testing.T) {
	c := storetest.NewCluster(t, 3)
	cli := c.Client()
	ctx := c.Ctx()
	for i := 0; i < 200; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("k%03d", i%50), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Delete(ctx, "k049"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "backup.snap")
	meta := saveSnapshot(t, cli, path)
	// A write forwarded by a follower is acknowledged once the leader
	// applied it; a linearizable read through member 0 makes it catch up.
	if _, err := c.Client(0).Get(ctx, "k000"); err != nil {
		t.Fatal(err)
	}
	srcHash, err := cli.HashKV(ctx, c.Members[0].ClientAddr, meta.Revision)
	if err != nil {
		t.Fatal(err)
	}

	// Restore into a brand-new 3-peer cluster.
	restored := storetest.NewRestoredCluster(t, 3, path)
	rcli := restored.Client()
	rctx := restored.Ctx()
	st, err := rcli.Status(rctx, restored.Members[0].ClientAddr)
	if err != nil {
		t.Fatal(err)
	}
	if st.Header.Revision < meta.Revision {
		t.Fatalf("restored cluster at revision %d, snapshot was %d", st.Header.Revision, meta.Revision)
	}
	for i := range restored.Members {
		h, err := rcli.HashKV(rctx, restored.Members[i].ClientAddr, meta.Revision)
		if err != nil {
			t.Fatal(err)
		}
		if h.Hash != srcHash.Hash {
			t.Fatalf("restored peer %d hash %x at revision %d, source %x", i, h.Hash, meta.Revision, srcHash.Hash)
		}
	}
	resp, err := rcli.Get(rctx, "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 49 {
		t.Fatalf("restored cluster has %d keys (%v), want 49", resp.Count, err)
	}
	if st.Header.ClusterId == meta.ClusterID {
		t.Fatal("restored cluster kept the old cluster ID")
	}
}

func TestLiveRestore(t *testing.T) {
	c := storetest.NewCluster(t, 3)
	cli := c.Client()
	ctx := c.Ctx()
	for i := 0; i < 20; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("keep/%02d", i), "v1"); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "backup.snap")
	meta := saveSnapshot(t, cli, path)
	// Diverge after the backup: change, add and delete keys.
	if _, err := cli.Put(ctx, "keep/00", "changed"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "new/after-backup", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(ctx, "keep/01"); err != nil {
		t.Fatal(err)
	}
	before, _ := cli.Get(ctx, "nothing")
	// Watch from the revision after everything written so far, so the
	// first response is the restore and not a lagging peer's catch-up.
	wch := cli.Watch(ctx, "", clientv3.WithPrefix(), clientv3.WithRev(before.Header.Revision+1))

	got := c.RestoreLive(path)
	if got.KeyCount != meta.KeyCount {
		t.Fatalf("live restore reports %d keys, snapshot holds %d", got.KeyCount, meta.KeyCount)
	}
	// Open watches are told the history they relied on is gone.
	resp := <-wch
	if !errors.Is(resp.Err(), rpctypes.ErrCompacted) {
		t.Fatalf("watch across live restore: %v, want compacted", resp.Err())
	}
	for i := range c.Members {
		pc := c.Client(i)
		all, err := pc.Get(ctx, "", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if len(all.Kvs) != 20 {
			t.Fatalf("peer %d has %d keys after live restore, want 20", i, len(all.Kvs))
		}
		for _, kv := range all.Kvs {
			if !bytes.HasPrefix(kv.Key, []byte("keep/")) || string(kv.Value) != "v1" {
				t.Fatalf("peer %d has %s=%s after live restore", i, kv.Key, kv.Value)
			}
		}
		if all.Header.Revision <= before.Header.Revision {
			t.Fatalf("revision went backwards across live restore: %d → %d", before.Header.Revision, all.Header.Revision)
		}
	}
	// The cluster keeps working.
	if _, err := cli.Put(ctx, "after", "restore"); err != nil {
		t.Fatal(err)
	}
	assertConverged(t, c)
}

func TestCorruptSnapshotsRefused(t *testing.T) {
	c := storetest.NewCluster(t, 1)
	cli := c.Client()
	ctx := c.Ctx()
	for i := 0; i < 10; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.snap")
	saveSnapshot(t, cli, good)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), data...)
	flipped[len(flipped)/2] ^= 0xff
	cases := map[string][]byte{
		"truncated": data[:len(data)-40],
		"corrupted": flipped,
		"foreign":   []byte("SQLite format 3\x00 definitely not a barge snapshot"),
		"empty":     nil,
	}
	peers := []raftstore.Peer{{Name: "n1", Addr: "127.0.0.1:1"}}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".snap")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			f, _ := os.Open(path)
			defer f.Close()
			target := filepath.Join(dir, "restore-"+name)
			if _, err := raftstore.PrepareRestore(f, raftstore.RestoreConfig{DataDir: target, Name: "n1", InitialCluster: peers}); err == nil {
				t.Fatal("offline restore accepted a bad snapshot")
			}
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("refused restore left %s behind", target)
			}
			before, _ := cli.Get(ctx, "", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err := c.TryRestoreLive(path); err == nil {
				t.Fatal("live restore accepted a bad snapshot")
			}
			after, _ := cli.Get(ctx, "", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if after.Count != before.Count || after.Header.Revision != before.Header.Revision {
				t.Fatal("a refused live restore changed the store")
			}
		})
	}
}
