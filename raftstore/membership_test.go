package raftstore_test

import (
	"fmt"
	"testing"

	"errors"
	"github.com/barge-dev/barge/raftstore/storetest"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestJoinPromoteRemove grows a cluster with a learner that joins through
// the client port, promotes it to voter, and removes another member.
func TestJoinPromoteRemove(t *testing.T) {
	c := storetest.NewCluster(t, 3)
	cli := c.Client()
	ctx := c.Ctx()
	for i := 0; i < 20; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("k%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	n := c.Join(true)
	learner := c.Members[n].Server.MemberID()
	ml, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range ml.Members {
		if m.ID == learner {
			found = true
			if !m.IsLearner {
				t.Fatalf("joined with --learner but listed as voter: %+v", m)
			}
		}
	}
	if !found || len(ml.Members) != 4 {
		t.Fatalf("member list after join: %+v", ml.Members)
	}
	// The learner receives the log: a serializable read from it sees the
	// data once a linearizable one (which waits for its apply) returns.
	lc := c.Client(n)
	if _, err := lc.Get(ctx, "k00"); err != nil {
		t.Fatal(err)
	}
	resp, err := lc.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable())
	if err != nil || resp.Count != 20 {
		t.Fatalf("learner holds %d keys (%v), want 20", resp.Count, err)
	}
	if _, err := cli.MemberPromote(ctx, learner); err != nil {
		t.Fatalf("promote: %v", err)
	}
	if _, err := cli.MemberPromote(ctx, learner); !errors.Is(err, rpctypes.ErrMemberNotLearner) {
		t.Fatalf("second promote: %v, want member-not-learner", err)
	}
	// Remove a follower that is not the new member.
	leader := c.Leader()
	victim := (leader + 1) % 3
	if _, err := cli.MemberRemove(ctx, c.Members[victim].Server.MemberID()); err != nil {
		t.Fatalf("remove: %v", err)
	}
	c.Stop(victim)
	ml, err = c.Client(leader).MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 3 {
		t.Fatalf("member list after remove: %+v", ml.Members)
	}
	for _, m := range ml.Members {
		if m.IsLearner || m.Name == "" {
			t.Fatalf("unexpected member %+v", m)
		}
	}
	if _, err := c.Client(leader).Put(ctx, "after", "reconfig"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.MemberRemove(ctx, 12345); !errors.Is(err, rpctypes.ErrMemberNotFound) {
		t.Fatalf("removing an unknown member: %v", err)
	}
}

// TestFollowerForwardsWritesAndServesReads sends every request to one
// follower only.
func TestFollowerForwardsWritesAndServesReads(t *testing.T) {
	c := storetest.NewCluster(t, 3)
	f := (c.Leader() + 1) % 3
	fc := c.Client(f)
	ctx := c.Ctx()
	put, err := fc.Put(ctx, "via-follower", "ok")
	if err != nil {
		t.Fatal(err)
	}
	txn, err := fc.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("via-follower"), "=", put.Header.Revision)).
		Then(clientv3.OpPut("via-follower", "cas"), clientv3.OpGet("via-follower")).Commit()
	if err != nil || !txn.Succeeded {
		t.Fatalf("txn via follower: %v %v", txn, err)
	}
	if got := txn.Responses[1].GetResponseRange().Kvs[0].Value; string(got) != "cas" {
		t.Fatalf("txn read its own write as %q", got)
	}
	get, err := fc.Get(ctx, "via-follower")
	if err != nil || string(get.Kvs[0].Value) != "cas" {
		t.Fatalf("linearizable read on follower: %v %v", get, err)
	}
	lease, err := fc.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fc.KeepAliveOnce(ctx, lease.ID); err != nil {
		t.Fatalf("keep-alive via follower: %v", err)
	}
	ttl, err := fc.TimeToLive(ctx, lease.ID)
	if err != nil || ttl.TTL <= 0 || ttl.GrantedTTL != 30 {
		t.Fatalf("time-to-live via follower: %+v %v", ttl, err)
	}
	if _, err := fc.MoveLeader(ctx, c.Members[f].Server.MemberID()); err != nil {
		t.Fatalf("move leader to the follower: %v", err)
	}
	if got := c.WaitLeader(); got != f {
		t.Fatalf("leader is %d after transfer to %d", got, f)
	}
}
