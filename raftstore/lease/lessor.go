package lease

import (
	"container/heap"
	"errors"
	"sort"
	"sync"
	"time"
)

var (
	// ErrNotFound is returned for an unknown lease ID.
	ErrNotFound = errors.New("lease not found")
	// ErrExists is returned when granting an ID that is already granted.
	ErrExists = errors.New("lease already exists")
	// ErrNotPrimary is returned for leader-only operations on a follower.
	ErrNotPrimary = errors.New("not the lease primary (leader)")
)

// MaxTTL is etcd's upper bound on a lease TTL, in seconds.
const MaxTTL = 9_000_000_000

type lease struct {
	id     int64
	ttl    int64 // seconds, as granted (after the minimum is applied)
	keys   map[string]struct{}
	expiry time.Time // leader only; zero on followers
	index  int       // position in the expiry queue; -1 when not queued
}

// Lessor tracks leases. It is safe for concurrent use.
type Lessor struct {
	mu      sync.Mutex
	leases  map[int64]*lease
	queue   expiryQueue // the leases by expiry, while primary
	primary bool
	minTTL  int64
	now     func() time.Time
}

// New returns an empty lessor. Grants below minTTL seconds are raised to
// it, as etcd does, so a lease always outlives an election.
func New(minTTL int64, now func() time.Time) *Lessor {
	if now == nil {
		now = time.Now
	}
	return &Lessor{leases: map[int64]*lease{}, minTTL: minTTL, now: now}
}

// EffectiveTTL returns the TTL a grant of ttl seconds receives.
func (l *Lessor) EffectiveTTL(ttl int64) int64 {
	if ttl < l.minTTL {
		return l.minTTL
	}
	return ttl
}

// Grant creates a lease. It is called from the apply path on every peer.
func (l *Lessor) Grant(id, ttl int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.leases[id]; ok {
		return 0, ErrExists
	}
	ttl = l.EffectiveTTL(ttl)
	le := &lease{id: id, ttl: ttl, keys: map[string]struct{}{}, index: -1}
	if l.primary {
		le.expiry = l.now().Add(time.Duration(ttl) * time.Second)
		l.queue.add(le)
	}
	l.leases[id] = le
	return ttl, nil
}

// Revoke removes a lease and returns its attached keys, sorted, so that
// every peer deletes them in the same order.
func (l *Lessor) Revoke(id int64) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	le, ok := l.leases[id]
	if !ok {
		return nil, ErrNotFound
	}
	delete(l.leases, id)
	l.queue.remove(le)
	keys := make([]string, 0, len(le.keys))
	for k := range le.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

// Exists reports whether the lease is granted.
func (l *Lessor) Exists(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.leases[id]
	return ok
}

// Attach records that key is held by lease id; Detach undoes it. Unknown
// leases are ignored: the apply path validated them before writing.
func (l *Lessor) Attach(id int64, key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if le, ok := l.leases[id]; ok {
		le.keys[key] = struct{}{}
	}
}

// Detach removes key from lease id.
func (l *Lessor) Detach(id int64, key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if le, ok := l.leases[id]; ok {
		delete(le.keys, key)
	}
}

// Info describes a lease.
type Info struct {
	ID        int64
	TTL       int64    // granted TTL in seconds
	Remaining int64    // seconds left; the granted TTL on a follower
	Keys      []string // sorted
}

// Lookup returns a lease's details.
func (l *Lessor) Lookup(id int64) (Info, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	le, ok := l.leases[id]
	if !ok {
		return Info{}, ErrNotFound
	}
	info := Info{ID: id, TTL: le.ttl, Remaining: le.ttl}
	if l.primary {
		rem := le.expiry.Sub(l.now())
		info.Remaining = int64((rem + time.Second - 1) / time.Second)
		if info.Remaining < 0 {
			info.Remaining = 0
		}
	}
	for k := range le.keys {
		info.Keys = append(info.Keys, k)
	}
	sort.Strings(info.Keys)
	return info, nil
}

// List returns every lease, sorted by ID.
func (l *Lessor) List() []Info {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Info, 0, len(l.leases))
	for id, le := range l.leases {
		out = append(out, Info{ID: id, TTL: le.ttl})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Renew restarts a lease's TTL. Only the primary renews.
func (l *Lessor) Renew(id int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.primary {
		return 0, ErrNotPrimary
	}
	le, ok := l.leases[id]
	if !ok {
		return 0, ErrNotFound
	}
	le.expiry = l.now().Add(time.Duration(le.ttl) * time.Second)
	l.queue.moved(le)
	return le.ttl, nil
}

// Promote makes this lessor the primary and restarts every lease's full
// TTL, so time lost to the election never counts against a lease.
func (l *Lessor) Promote() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.primary = true
	now := l.now()
	l.queue.clear()
	for _, le := range l.leases {
		le.expiry = now.Add(time.Duration(le.ttl) * time.Second)
		l.queue.add(le)
	}
}

// Demote stops expiry tracking when leadership is lost.
func (l *Lessor) Demote() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.primary = false
	l.queue.clear()
	for _, le := range l.leases {
		le.expiry = time.Time{}
	}
}

// Primary reports whether this lessor decides expiry.
func (l *Lessor) Primary() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.primary
}

// Expired returns up to max leases whose time is up, oldest first. The
// caller proposes their revocation; until that applies they stay listed.
func (l *Lessor) Expired(max int) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.primary {
		return nil
	}
	now := l.now()
	var due []*lease
	for l.queue.Len() > 0 && !l.queue[0].expiry.After(now) && (max <= 0 || len(due) < max) {
		due = append(due, heap.Pop(&l.queue).(*lease))
	}
	var ids []int64
	for _, le := range due {
		ids = append(ids, le.id)
		l.queue.add(le) // listed again next time, until revoked
	}
	return ids
}

// Reset drops every lease; used before loading a snapshot.
func (l *Lessor) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leases = map[int64]*lease{}
	l.queue.clear()
}
