package lease

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"
)

// TestExpiredMatchesScan drives a lessor through random grants, renewals,
// revokes and leadership changes and checks, after every step, that
// Expired gives what a scan of every lease would, in expiry order.
func TestExpiredMatchesScan(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			clk := &fakeClock{t: time.Unix(1000, 0)}
			l := New(1, clk.now)
			l.Promote()
			for step := range 2000 {
				id := rng.Int64N(50) + 1
				switch op := rng.IntN(10); {
				case op < 4:
					l.Grant(id, rng.Int64N(20)+1)
				case op < 6:
					l.Renew(id)
				case op < 8:
					l.Revoke(id)
				case op == 8:
					clk.advance(time.Duration(rng.IntN(3000)) * time.Millisecond)
				case rng.IntN(20) == 0:
					l.Demote()
					l.Promote()
				}
				max := rng.IntN(5)
				got, want := l.Expired(max), scanExpired(l, max)
				// Leases due at the same instant may come in any order,
				// so compare the expiries and check every ID is due.
				if g, w := expiriesOf(l, got), expiriesOf(l, want); !slices.Equal(g, w) || !allDistinct(got) {
					t.Fatalf("step %d: Expired(%d) = %v (expiries %v), a scan says %v (%v)", step, max, got, g, want, w)
				}
			}
		})
	}
}

func expiriesOf(l *Lessor, ids []int64) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]time.Time, len(ids))
	for i, id := range ids {
		if le, ok := l.leases[id]; ok && !le.expiry.After(l.now()) {
			out[i] = le.expiry
		} // else the zero time, which no due lease has
	}
	return out
}

func allDistinct(ids []int64) bool {
	seen := map[int64]bool{}
	for _, id := range ids {
		if seen[id] {
			return false
		}
		seen[id] = true
	}
	return true
}

// scanExpired is the obvious O(n) answer Expired must agree with.
func scanExpired(l *Lessor, max int) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var due []*lease
	for _, le := range l.leases {
		if !le.expiry.After(now) {
			due = append(due, le)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].expiry.Equal(due[j].expiry) {
			return due[i].expiry.Before(due[j].expiry)
		}
		return due[i].id < due[j].id
	})
	if max > 0 && len(due) > max {
		due = due[:max]
	}
	var ids []int64
	for _, le := range due {
		ids = append(ids, le.id)
	}
	return ids
}

// BenchmarkExpiredTick is the leader's expiry tick with 15,000 live
// leases of which none is due, the common case.
func BenchmarkExpiredTick(b *testing.B) {
	l := New(1, nil)
	l.Promote()
	for id := range int64(15000) {
		l.Grant(id+1, 3600)
	}
	b.ResetTimer()
	for range b.N {
		if got := l.Expired(1000); got != nil {
			b.Fatalf("expired %v", got)
		}
	}
}
