package gossip

import (
	"bytes"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// State is a member's state as this member sees it.
type State string

const (
	StateAlive State = "alive"
	// StateSuspect: this member's own probes of it failed and it has not
	// answered one since. memberlist keeps its suspicions private, so this
	// is the local half of them; it turns into StateDead when the pool's
	// suspicion timeout runs out.
	StateSuspect State = "suspect"
	StateDead    State = "dead" // failed: stopped answering probes
	StateLeft    State = "left" // said goodbye
)

// Member is one member of the pool.
type Member struct {
	Name  string
	Addr  netip.AddrPort
	State State
	// Meta is the member's metadata; MetaErr says why it could not be
	// decoded, in which case Meta is zero.
	Meta    Meta
	MetaErr string
	// Since is when this member last saw the state change.
	Since time.Time
}

// EventKind is what happened to a member.
type EventKind string

const (
	EventJoin   EventKind = "join"   // joined, or came back after failing or leaving
	EventUpdate EventKind = "update" // changed its metadata
	EventLeave  EventKind = "leave"  // left gracefully
	EventFail   EventKind = "fail"   // declared dead by the failure detector
)

// Event is one change in the pool.
type Event struct {
	Kind   EventKind
	Member Member
}

// view is the pool as events from memberlist describe it. It is the only
// place members are read from: memberlist's own node list hands out
// pointers into state it mutates under its lock.
type view struct {
	logger *slog.Logger

	mu      sync.Mutex
	byName  map[string]*Member
	suspect map[string]bool
	leaving map[string]time.Time // leave notices, by when they came
	subs    map[*Subscription]struct{}
	closed  bool
}

func newView(logger *slog.Logger) *view {
	return &view{logger: logger, byName: map[string]*Member{}, suspect: map[string]bool{}, leaving: map[string]time.Time{}, subs: map[*Subscription]struct{}{}}
}

func (v *view) event(kind EventKind, n *memberlist.Node) {
	now := time.Now()
	m := Member{Name: n.Name, Since: now}
	if a, ok := netip.AddrFromSlice(n.Addr); ok {
		m.Addr = netip.AddrPortFrom(a.Unmap(), n.Port)
	}
	switch kind {
	case EventJoin, EventUpdate:
		m.State = StateAlive
	case EventLeave:
		m.State = StateLeft
	case EventFail:
		m.State = StateDead
	}
	meta, err := DecodeMeta(bytes.Clone(n.Meta))
	if err != nil {
		m.MetaErr = err.Error()
		v.logger.Warn("gossip member has unreadable metadata", "member", n.Name, "err", err)
	} else {
		m.Meta = meta
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	if old, ok := v.byName[m.Name]; ok && kind == EventUpdate && old.State == m.State {
		m.Since = old.Since
	}
	v.byName[m.Name] = &m
	delete(v.suspect, m.Name)
	if kind != EventUpdate {
		delete(v.leaving, m.Name)
	}
	ev := Event{Kind: kind, Member: m}
	for s := range v.subs {
		s.push(ev)
	}
}

// suspected records this member's own failed probe of name.
func (v *view) suspected(name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if m, ok := v.byName[name]; ok && m.State == StateAlive {
		v.suspect[name] = true
	}
}

// leaveNoticeTTL bounds how long a leave notice counts: a member that
// announced leaving but then did not, and crashed later, has failed.
const leaveNoticeTTL = time.Minute

func (v *view) markLeaving(name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.leaving[name] = time.Now()
}

func (v *view) isLeaving(name string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	at, ok := v.leaving[name]
	return ok && time.Since(at) < leaveNoticeTTL
}

// acked records an answered probe.
func (v *view) acked(name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.suspect, name)
}

func (v *view) stateOf(m Member) Member {
	if m.State == StateAlive && v.suspect[m.Name] {
		m.State = StateSuspect
	}
	return m
}

func (v *view) members() []Member {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.snapshotLocked()
}

// forgetAfter is how long a member that left or failed stays listed.
const forgetAfter = time.Hour

func (v *view) snapshotLocked() []Member {
	out := make([]Member, 0, len(v.byName))
	for name, m := range v.byName {
		if (m.State == StateDead || m.State == StateLeft) && time.Since(m.Since) > forgetAfter {
			delete(v.byName, name)
			continue
		}
		out = append(out, v.stateOf(*m))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (v *view) member(name string) (Member, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m, ok := v.byName[name]
	if !ok {
		return Member{}, false
	}
	return v.stateOf(*m), true
}

func (v *view) subscribe() ([]Member, *Subscription) {
	s := newSubscription(v)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		s.closeLocked()
	} else {
		v.subs[s] = struct{}{}
	}
	return v.snapshotLocked(), s
}

func (v *view) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closed = true
	for s := range v.subs {
		s.closeLocked()
		delete(v.subs, s)
	}
}

func (v *view) unsubscribe(s *Subscription) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.subs[s]; ok {
		delete(v.subs, s)
		s.closeLocked()
	}
}

// Subscription delivers pool events in order. Its queue grows as needed:
// memberlist must never wait for a reader, and a health controller must
// never miss a failure.
type Subscription struct {
	v      *view
	c      chan Event
	mu     sync.Mutex
	queue  []Event
	wake   chan struct{}
	done   chan struct{}
	closed bool
}

func newSubscription(v *view) *Subscription {
	s := &Subscription{v: v, c: make(chan Event), wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.run()
	return s
}

// C receives the events; it is closed after Close or when the pool stops.
func (s *Subscription) C() <-chan Event { return s.c }

// Close stops the subscription.
func (s *Subscription) Close() { s.v.unsubscribe(s) }

func (s *Subscription) push(ev Event) {
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// closeLocked runs with the view's lock held.
func (s *Subscription) closeLocked() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
}

func (s *Subscription) run() {
	defer close(s.c)
	for {
		s.mu.Lock()
		var (
			ev  Event
			has bool
		)
		if len(s.queue) > 0 {
			ev, has = s.queue[0], true
			s.queue[0] = Event{}
			s.queue = s.queue[1:]
		}
		s.mu.Unlock()
		if !has {
			select {
			case <-s.wake:
				continue
			case <-s.done:
				return
			}
		}
		select {
		case s.c <- ev:
		case <-s.done:
			return
		}
	}
}
