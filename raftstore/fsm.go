package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/barge-dev/barge/raftstore/lease"
	"github.com/barge-dev/barge/raftstore/mvcc"
	"github.com/barge-dev/barge/raftstore/snapfile"
	"github.com/barge-dev/barge/raftstore/watch"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// fsm is the replicated state machine: the MVCC store, leases and member
// attributes. Raft calls Apply from one goroutine, in log order.
type fsm struct {
	store   *mvcc.Store
	lessor  *lease.Lessor
	hub     *watch.Hub
	members *memberTable
	applier *applier
	logger  *slog.Logger

	clusterID, memberID uint64

	mu      sync.Mutex
	applied uint64 // index of the last command entry applied
	waiters []applyWaiter

	restores atomic.Int64 // snapshots installed, for tests and metrics

	// logBytes counts entry bytes applied since the last snapshot; once
	// it passes logBytesLimit, bigLog is signalled (see SnapshotLogBytes).
	logBytes      atomic.Int64
	logBytesLimit int64
	bigLog        chan struct{}

	// applyObs, saveObs and installObs time applies, snapshot writes and
	// snapshot installs; nil when nobody measures.
	applyObs, saveObs, installObs prometheus.Observer
}

type applyWaiter struct {
	index uint64
	ch    chan struct{}
}

func newFSM(logger *slog.Logger, minLeaseTTL int64, hubCfg watch.Config) *fsm {
	st := mvcc.New()
	f := &fsm{
		store:   st,
		lessor:  lease.New(minLeaseTTL, nil),
		members: newMemberTable(),
		logger:  logger,
		bigLog:  make(chan struct{}, 1),
	}
	hubCfg.Logger = logger
	f.hub = watch.NewHub(st, hubCfg)
	f.applier = &applier{store: st, lessor: f.lessor, notify: f.hub.Notify}
	return f
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	defer observeSince(f.applyObs, time.Now())
	res := f.applyData(l.Data, l.Term)
	f.markApplied(l.Index)
	if n := f.logBytes.Add(int64(len(l.Data))); f.logBytesLimit > 0 && n >= f.logBytesLimit {
		select {
		case f.bigLog <- struct{}{}:
		default:
		}
	}
	return res
}

// applyData applies one entry of the given term.
func (f *fsm) applyData(data []byte, term uint64) applyResult {
	cmd, err := decodeCommand(data)
	if err != nil {
		// A peer that cannot read an entry must not guess; it reports the
		// error to the proposer and keeps going so the log stays usable.
		f.logger.Error("skipping undecodable raft entry", "err", err)
		return applyResult{rev: f.store.Rev(), err: err}
	}
	switch cmd.kind {
	case kindNoop:
		return applyResult{rev: f.store.Rev(), term: term}
	}
	if cmd.fence != 0 && cmd.fence != term {
		// Every peer sees the same entry term, so every peer rejects it.
		return applyResult{rev: f.store.Rev(), err: errFenced(cmd.fence, term)}
	}
	req := cmd.req
	if req.ClusterMemberAttrSet != nil {
		a := req.ClusterMemberAttrSet
		if a.MemberAttributes == nil {
			return applyResult{rev: f.store.Rev(), err: rpctypes.ErrGRPCMemberBadURLs}
		}
		f.members.setAttrs(a.Member_ID, a.MemberAttributes.Name, a.MemberAttributes.ClientUrls)
		return applyResult{rev: f.store.Rev()}
	}
	return f.applier.apply(req)
}

func (f *fsm) markApplied(index uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if index > f.applied {
		f.applied = index
	}
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.index <= f.applied {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	f.waiters = kept
}

func (f *fsm) appliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// waitApplied blocks until the command at index has been applied here.
func (f *fsm) waitApplied(ctx context.Context, index uint64) error {
	f.mu.Lock()
	if f.applied >= index {
		f.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	f.waiters = append(f.waiters, applyWaiter{index: index, ch: ch})
	f.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Snapshot implements raft.FSM. It only freezes a view (O(1)); Persist
// streams it while Apply carries on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.logBytes.Store(0)
	return &fsmSnapshot{
		saved:   f.saveObs,
		view:    f.store.View(),
		leases:  f.lessor.List(),
		members: f.members.list(),
		meta: snapfile.Metadata{
			ClusterID:    f.clusterID,
			MemberID:     f.memberID,
			RaftIndex:    f.appliedIndex(),
			BargeVersion: Version,
		},
	}, nil
}

// Restore implements raft.FSM. The new state is built aside and swapped in
// only once the whole stream has been read and its checksum verified.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	defer observeSince(f.installObs, time.Now())
	st, err := loadSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.install(st)
	return nil
}

// install swaps in loaded state. Watchers are re-synced from the new
// history, and leases restart their full TTL if this peer leads.
func (f *fsm) install(st *loadedState) {
	f.store.Replace(st.store)
	f.lessor.Reset()
	for _, l := range st.leases {
		if _, err := f.lessor.Grant(l.ID, l.TTL); err != nil {
			f.logger.Warn("duplicate lease in snapshot", "lease", l.ID)
		}
	}
	for key, id := range st.attached {
		f.lessor.Attach(id, key)
	}
	f.members.replace(st.members)
	// Counted before the applied index moves: whoever waits for that
	// index and then asks whether a snapshot was installed must see it.
	f.restores.Add(1)
	f.markApplied(st.meta.RaftIndex)
	f.hub.Reset()
}

// loadedState is a snapshot read into memory, ready to install.
type loadedState struct {
	meta     snapfile.Metadata
	store    *mvcc.Store
	leases   []snapfile.Lease
	members  []snapfile.Member
	attached map[string]int64 // live key → lease
}

func loadSnapshot(r io.Reader) (*loadedState, error) {
	sr, err := snapfile.NewReader(r)
	if err != nil {
		return nil, err
	}
	meta := sr.Metadata()
	loader := mvcc.NewLoader(meta.Revision, meta.CompactRevision)
	st := &loadedState{meta: meta, attached: map[string]int64{}}
	var last *snapfile.KeyVersion
	flushLast := func() {
		if last != nil && !last.Tombstone && last.Lease != 0 {
			st.attached[string(last.Key)] = last.Lease
		}
	}
	for n := 0; ; n++ {
		rec, err := sr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch rec.Kind {
		case snapfile.KindKey:
			if last != nil && string(last.Key) != string(rec.Key.Key) {
				flushLast()
			}
			if err := loader.Add(rec.Key); err != nil {
				return nil, fmt.Errorf("record %d: %w", n, err)
			}
			last = rec.Key
		case snapfile.KindLease:
			st.leases = append(st.leases, *rec.Lease)
		case snapfile.KindMember:
			st.members = append(st.members, *rec.Member)
		}
	}
	flushLast()
	granted := make(map[int64]bool, len(st.leases))
	for _, l := range st.leases {
		granted[l.ID] = true
	}
	for key, id := range st.attached {
		if !granted[id] {
			return nil, fmt.Errorf("snapshot key %q is attached to lease %x, which the snapshot does not hold", key, id)
		}
	}
	st.store = loader.Finish()
	return st, nil
}

type fsmSnapshot struct {
	saved   prometheus.Observer
	view    *mvcc.View
	leases  []lease.Info
	members []snapfile.Member
	meta    snapfile.Metadata
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	defer observeSince(s.saved, time.Now())
	if err := s.writeTo(sink); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) writeTo(out io.Writer) error {
	meta := s.meta
	meta.Revision = s.view.Rev()
	meta.CompactRevision = s.view.CompactRev()
	meta.KeyCount = s.view.LiveKeys()
	meta.CreatedAt = time.Now().UTC()
	w, err := snapfile.NewWriter(out, meta)
	if err != nil {
		return err
	}
	if err := s.view.WriteTo(w); err != nil {
		return err
	}
	for _, l := range s.leases {
		if err := w.WriteLease(&snapfile.Lease{ID: l.ID, TTL: l.TTL}); err != nil {
			return err
		}
	}
	for i := range s.members {
		if err := w.WriteMember(&s.members[i]); err != nil {
			return err
		}
	}
	return w.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}

// memberTable holds the replicated member attributes (names and client
// URLs). Who votes, and at which peer address, is the Raft configuration's.
type memberTable struct {
	mu sync.RWMutex
	m  map[uint64]snapfile.Member
}

func newMemberTable() *memberTable { return &memberTable{m: map[uint64]snapfile.Member{}} }

func (t *memberTable) setAttrs(id uint64, name string, clientURLs []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.m[id]
	m.ID, m.Name, m.ClientURLs = id, name, append([]string(nil), clientURLs...)
	t.m[id] = m
}

func (t *memberTable) get(id uint64) (snapfile.Member, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	m, ok := t.m[id]
	return m, ok
}

func (t *memberTable) list() []snapfile.Member {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]snapfile.Member, 0, len(t.m))
	for _, m := range t.m {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (t *memberTable) replace(ms []snapfile.Member) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m = map[uint64]snapfile.Member{}
	for _, m := range ms {
		t.m[m.ID] = m
	}
}
