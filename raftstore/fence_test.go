package raftstore_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/barge-dev/barge/raftstore"
	"github.com/barge-dev/barge/raftstore/storetest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestFencedWrites: a write fenced to the leader's term lands, on the
// leader and forwarded by a follower; one fenced to any other term is
// refused with a clear error and changes nothing; after leadership moves,
// the old term's writes are refused everywhere.
func TestFencedWrites(t *testing.T) {
	c := storetest.NewCluster(t, 3)
	lead := c.WaitLeader()
	term, ok := c.Members[lead].Server.LeaderTerm()
	if !ok || term == 0 {
		t.Fatalf("leader %d reports term %d, %v", lead, term, ok)
	}
	follower := (lead + 1) % 3
	fenced := func(term uint64) context.Context {
		return metadata.AppendToOutgoingContext(c.Ctx(), raftstore.FenceMetadataKey, strconv.FormatUint(term, 10))
	}
	for _, tc := range []struct {
		name   string
		via    int
		term   uint64
		landed bool
	}{
		{"leader, its term", lead, term, true},
		{"follower, the leader's term", follower, term, true},
		{"leader, an earlier term", lead, term - 1, false},
		{"follower, a later term", follower, term + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "fence/" + tc.name
			_, err := c.Client(tc.via).Put(fenced(tc.term), key, "v")
			if tc.landed && err != nil {
				t.Fatalf("put: %v", err)
			}
			if !tc.landed {
				if !raftstore.IsFenced(err) || status.Code(err) != codes.FailedPrecondition {
					t.Fatalf("put fenced to term %d in term %d: %v, want FailedPrecondition naming the fence", tc.term, term, err)
				}
				t.Logf("refused: %v", err)
			}
			resp, err := c.Client().Get(c.Ctx(), key)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(resp.Kvs) == 1; got != tc.landed {
				t.Fatalf("key stored: %v, want %v", got, tc.landed)
			}
		})
	}

	t.Run("bad fence values", func(t *testing.T) {
		for _, v := range []string{"0", "-1", "x"} {
			ctx := metadata.AppendToOutgoingContext(c.Ctx(), raftstore.FenceMetadataKey, v)
			if _, err := c.Client(lead).Put(ctx, "fence/bad", "v"); status.Code(err) != codes.InvalidArgument {
				t.Errorf("fence %q: %v, want InvalidArgument", v, err)
			}
		}
	})

	t.Run("after a leader change", func(t *testing.T) {
		c.Kill(lead)
		next := c.WaitLeader()
		newTerm, _ := c.Members[next].Server.LeaderTerm()
		if newTerm <= term {
			t.Fatalf("new leader's term %d, not after %d", newTerm, term)
		}
		for _, via := range []int{next, (next + 1) % 3} {
			if via == lead {
				continue
			}
			var err error
			c.Retry(func() error {
				_, err = c.Client(via).Put(fenced(term), "fence/stale", "v")
				if raftstore.IsFenced(err) {
					return nil
				}
				return err
			})
			if !raftstore.IsFenced(err) {
				t.Fatalf("stale write through %d: %v, want it fenced", via, err)
			}
		}
		resp, err := c.Client(next).Get(c.Ctx(), "fence/stale")
		if err != nil || len(resp.Kvs) != 0 {
			t.Fatalf("stale write landed: %v %v", resp, err)
		}
		c.Retry(func() error {
			_, err := c.Client(next).Put(fenced(newTerm), "fence/new", "v")
			return err
		})
	})
}
