package lease

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestGrantRevokeAttach(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := New(2, clk.now)
	if ttl, _ := l.Grant(1, 1); ttl != 2 {
		t.Fatalf("TTL below the minimum granted as %d, want 2", ttl)
	}
	if _, err := l.Grant(1, 5); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate grant: %v", err)
	}
	l.Attach(1, "b")
	l.Attach(1, "a")
	l.Attach(99, "ignored")
	l.Detach(1, "b")
	keys, err := l.Revoke(1)
	if err != nil || fmt.Sprint(keys) != "[a]" {
		t.Fatalf("revoke = %v %v, want [a]", keys, err)
	}
	if _, err := l.Revoke(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
}

func TestExpiryOnlyOnPrimary(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := New(1, clk.now)
	l.Grant(1, 10)
	l.Grant(2, 20)
	clk.advance(time.Hour)
	if got := l.Expired(0); got != nil {
		t.Fatalf("a follower expired %v; only the leader decides", got)
	}
	if _, err := l.Renew(1); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("renew on follower: %v", err)
	}
	l.Promote()
	clk.advance(11 * time.Second)
	if got := l.Expired(0); fmt.Sprint(got) != "[1]" {
		t.Fatalf("expired = %v, want [1]", got)
	}
	if ttl, err := l.Renew(1); err != nil || ttl != 10 {
		t.Fatalf("renew = %d %v", ttl, err)
	}
	if got := l.Expired(0); got != nil {
		t.Fatalf("renewed lease still expired: %v", got)
	}
}

// TestPromoteRestartsTTLs: a lease one second from expiry when the old
// leader died gets its full TTL from the new leader, so the election
// cannot expire it early.
func TestPromoteRestartsTTLs(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	old := New(1, clk.now)
	old.Promote()
	old.Grant(7, 10)
	clk.advance(9 * time.Second)
	info, _ := old.Lookup(7)
	if info.Remaining != 1 {
		t.Fatalf("remaining before failover = %d, want 1", info.Remaining)
	}
	// The new leader applied the same grant as a follower.
	next := New(1, clk.now)
	next.Grant(7, 10)
	clk.advance(3 * time.Second) // the election
	next.Promote()
	if got := next.Expired(0); got != nil {
		t.Fatalf("lease expired right after promotion: %v", got)
	}
	info, _ = next.Lookup(7)
	if info.Remaining != 10 {
		t.Fatalf("remaining after promotion = %d, want the full 10", info.Remaining)
	}
	next.Demote()
	if info, _ := next.Lookup(7); info.Remaining != 10 {
		t.Fatalf("a follower reports remaining %d, want the granted TTL", info.Remaining)
	}
}
