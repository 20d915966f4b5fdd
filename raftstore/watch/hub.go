package watch

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/barge-dev/barge/raftstore/mvcc"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Source is the history a hub catches watchers up from.
type Source interface {
	EventsSince(key, end []byte, from int64, maxEvents int) ([]mvcc.RevEvent, int64, error)
	Rev() int64
	CompactRev() int64
}

// Response is one message for a stream: events of one or more whole
// revisions for one watcher, a progress notification, or a cancellation.
type Response struct {
	WatchID         int64
	Events          []*mvccpb.Event
	Revision        int64 // the store revision the response is current to
	CompactRevision int64 // set when the watcher was cancelled by compaction
	Canceled        bool
	CancelReason    string
	Progress        bool

	// from is the first revision whose events the response carries, and
	// size their key and value bytes: a response held for a full stream
	// takes the revisions after it too, up to mergeBytes.
	from, size int64
}

// Held and caught-up responses carry many revisions each, up to these
// bounds, as etcd's catch-up does: a watcher behind by N revisions costs
// its stream one message, not N, which is what lets a stream that fell
// behind under load catch up instead of falling further behind.
const (
	mergeEvents = 1000
	mergeBytes  = 1 << 20
)

func eventBytes(evs []*mvccpb.Event) int64 {
	var n int64
	for _, ev := range evs {
		n += int64(len(ev.Kv.Key) + len(ev.Kv.Value))
	}
	return n
}

// Filter selects events a watcher does not want.
type Filter struct {
	NoPut    bool
	NoDelete bool
}

// Spec describes a new watcher.
type Spec struct {
	ID             int64
	Key, End       []byte // End as in Range: empty = one key, "\x00" = from Key on
	StartRev       int64  // 0 = from the next revision
	PrevKV         bool
	Filter         Filter
	ProgressNotify bool
}

// Stream is a group of watchers sharing one ordered outbound channel, as
// one gRPC Watch stream does.
type Stream struct {
	hub *Hub
	out chan Response
}

// Watcher is one registered watch.
type Watcher struct {
	spec    Spec
	stream  *Stream
	nextRev int64
	// pending holds, in order, responses built for revisions before
	// nextRev that found the stream full (the watcher is a "victim", as
	// etcd calls it). They are retried as the stream drains; only a
	// watcher too far behind goes back to reading history.
	pending []Response
	// sentSinceTick suppresses a progress notification after real events.
	sentSinceTick bool
}

// Config tunes a hub.
type Config struct {
	// ProgressInterval is how often watchers that asked for progress
	// notifications get one when idle (etcd uses 10 minutes).
	ProgressInterval time.Duration
	// StreamBuffer is the number of responses a stream may queue before its
	// watchers fall back to catch-up from history.
	StreamBuffer int
	// SyncInterval bounds how long an unsynced watcher waits between
	// catch-up attempts when nothing wakes the loop.
	SyncInterval time.Duration
	// CatchUpBatch caps events read from history in one step.
	CatchUpBatch int
	// MaxPending is how many responses a watcher whose stream is full may
	// hold before it falls back to catch-up from history.
	MaxPending int
	// RetryInterval is how often responses held for full streams are
	// sent again.
	RetryInterval time.Duration
	// OnSlow, when set, is called each time a watcher's stream is found
	// full and the watcher falls back to catch-up from history.
	OnSlow func()
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = 10 * time.Minute
	}
	if c.StreamBuffer <= 0 {
		c.StreamBuffer = 1024
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = 100 * time.Millisecond
	}
	if c.CatchUpBatch <= 0 {
		c.CatchUpBatch = 1000
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 256
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 5 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Hub is the set of all watchers of one store.
type Hub struct {
	cfg Config
	src Source

	mu       sync.Mutex
	rev      int64 // last revision passed to Notify
	synced   map[*Watcher]struct{}
	unsynced map[*Watcher]struct{}
	victims  int // synced watchers with pending responses
	kick     chan struct{}
}

// NewHub returns a hub over src. Run must be started for catch-up and
// progress notifications.
func NewHub(src Source, cfg Config) *Hub {
	cfg.setDefaults()
	return &Hub{
		cfg:      cfg,
		src:      src,
		rev:      src.Rev(),
		synced:   map[*Watcher]struct{}{},
		unsynced: map[*Watcher]struct{}{},
		kick:     make(chan struct{}, 1),
	}
}

// NewStream opens a stream; it is closed by cancelling ctx, which removes
// its watchers.
func (h *Hub) NewStream(ctx context.Context) *Stream {
	s := &Stream{hub: h, out: make(chan Response, h.cfg.StreamBuffer)}
	context.AfterFunc(ctx, func() { h.removeStream(s) })
	return s
}

// Out is the stream's ordered outbound channel.
func (s *Stream) Out() <-chan Response { return s.out }

// Watch registers a watcher on the stream and returns the revision the
// hub is current to.
func (s *Stream) Watch(spec Spec) int64 {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	w := &Watcher{spec: spec, stream: s}
	if spec.StartRev == 0 || spec.StartRev > h.rev {
		w.nextRev = h.rev + 1
		if spec.StartRev > w.nextRev {
			w.nextRev = spec.StartRev
		}
		h.synced[w] = struct{}{}
	} else {
		w.nextRev = spec.StartRev
		h.unsynced[w] = struct{}{}
		h.wake()
	}
	return h.rev
}

// Cancel removes watcher id from the stream. It reports whether it existed.
func (s *Stream) Cancel(id int64) bool {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	found := false
	for _, set := range []map[*Watcher]struct{}{h.synced, h.unsynced} {
		for w := range set {
			if w.stream == s && w.spec.ID == id {
				h.drop(set, w)
				found = true
			}
		}
	}
	return found
}

// RequestProgress queues a progress response (WatchID -1, as etcd does)
// if every watcher of the stream is synced, so the revision it carries is
// a promise that no older event is still to come. It reports whether it
// was queued.
func (s *Stream) RequestProgress() bool {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.unsynced {
		if w.stream == s {
			return false
		}
	}
	for w := range h.synced {
		if w.stream == s && len(w.pending) > 0 {
			return false
		}
	}
	select {
	case s.out <- Response{WatchID: -1, Revision: h.rev, Progress: true}:
		return true
	default:
		return false
	}
}

func (h *Hub) removeStream(s *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range []map[*Watcher]struct{}{h.synced, h.unsynced} {
		for w := range set {
			if w.stream == s {
				h.drop(set, w)
			}
		}
	}
}

// drop removes w from set, and its held responses with it.
func (h *Hub) drop(set map[*Watcher]struct{}, w *Watcher) {
	if len(w.pending) > 0 {
		w.pending = nil
		h.victims--
	}
	delete(set, w)
}

func (h *Hub) wake() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// Notify pushes the events of one committed revision to synced watchers.
// It never blocks: a watcher whose stream is full becomes unsynced and is
// caught up from history later. Notify must be called in revision order.
func (h *Hub) Notify(rev int64, events []mvcc.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rev <= h.rev {
		return
	}
	h.rev = rev
	shared := sharedEvents{events: events}
	for w := range h.synced {
		if rev < w.nextRev {
			continue
		}
		evs := shared.forWatcher(w)
		if len(evs) == 0 {
			w.nextRev = rev + 1
			continue
		}
		resp := Response{WatchID: w.spec.ID, Events: evs, Revision: rev, from: rev}
		w.nextRev = rev + 1
		if n := len(w.pending); n > 0 {
			// Behind already: the events join the last held response
			// (copied: evs may be shared with other watchers), or queue
			// behind it once it is full.
			last := &w.pending[n-1]
			size := eventBytes(evs)
			if len(last.Events)+len(evs) <= mergeEvents && last.size+size <= mergeBytes {
				last.Events = append(last.Events[:len(last.Events):len(last.Events)], evs...)
				last.Revision, last.size = rev, last.size+size
				continue
			}
			resp.size = size
			w.pending = append(w.pending, resp)
			if len(w.pending) > h.cfg.MaxPending {
				h.toHistory(w)
			}
			continue
		}
		select {
		case w.stream.out <- resp:
			w.sentSinceTick = true
		default:
			// The stream is full. The response is held, not dropped for a
			// re-read of history: when a whole stream of watchers falls
			// behind at once (a GC pause, a busy core), reading history
			// for each of them is what kept it behind.
			resp.size = eventBytes(evs)
			w.pending = append(w.pending, resp)
			h.victims++
			if h.cfg.OnSlow != nil {
				h.cfg.OnSlow()
			}
		}
	}
}

// toHistory sends a watcher holding too many responses back to catch-up
// from history, from its first undelivered revision. Called with mu held.
func (h *Hub) toHistory(w *Watcher) {
	if len(w.pending) > 0 {
		w.nextRev = w.pending[0].from
		w.pending = nil
		h.victims--
	}
	delete(h.synced, w)
	h.unsynced[w] = struct{}{}
	h.wake()
}

// retryPending sends the responses held for full streams, each
// watcher's in order, as far as the streams take them.
func (h *Hub) retryPending() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.victims == 0 {
		return
	}
	for w := range h.synced {
		if len(w.pending) == 0 {
			continue
		}
		n := 0
	send:
		for _, resp := range w.pending {
			select {
			case w.stream.out <- resp:
				n++
				w.sentSinceTick = true
			default:
				break send
			}
		}
		clear(w.pending[:n])
		w.pending = w.pending[n:]
		if len(w.pending) == 0 {
			w.pending = nil
			h.victims--
		}
	}
}

// Reset is called after the store was replaced by a snapshot: every
// watcher re-reads what it needs from the new store's history, or is
// cancelled as compacted if that history is gone.
func (h *Hub) Reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rev = h.src.Rev()
	for w := range h.synced {
		h.toHistory(w)
	}
	h.wake()
}

func (w *Watcher) match(key []byte) bool {
	k, end := w.spec.Key, w.spec.End
	switch {
	case len(end) == 0:
		return bytes.Equal(key, k)
	case len(end) == 1 && end[0] == 0:
		return bytes.Compare(key, k) >= 0
	default:
		return bytes.Compare(key, k) >= 0 && bytes.Compare(key, end) < 0
	}
}

// sharedEvents builds one revision's events once for all the watchers
// that want every one of them, which is the common case of many watchers
// on one prefix: with 1,000 of them, a private copy each was most of the
// apply path's time. Responses only read their events, so sharing is safe.
type sharedEvents struct {
	events          []mvcc.Event
	plain, withPrev []*mvccpb.Event
}

func (s *sharedEvents) forWatcher(w *Watcher) []*mvccpb.Event {
	if w.spec.Filter.NoPut || w.spec.Filter.NoDelete {
		return w.filter(s.events)
	}
	for _, ev := range s.events {
		if !w.match(ev.Kv.Key) {
			return w.filter(s.events)
		}
	}
	out := &s.plain
	if w.spec.PrevKV {
		out = &s.withPrev
	}
	if *out == nil {
		*out = w.filter(s.events)
	}
	return *out
}

func (w *Watcher) filter(events []mvcc.Event) []*mvccpb.Event {
	var out []*mvccpb.Event
	for _, ev := range events {
		if !w.match(ev.Kv.Key) {
			continue
		}
		if (ev.Type == mvccpb.PUT && w.spec.Filter.NoPut) || (ev.Type == mvccpb.DELETE && w.spec.Filter.NoDelete) {
			continue
		}
		pe := &mvccpb.Event{Type: ev.Type, Kv: ev.Kv}
		if w.spec.PrevKV {
			pe.PrevKv = ev.PrevKv
		}
		out = append(out, pe)
	}
	return out
}

// Run catches up unsynced watchers and sends progress notifications until
// ctx ends.
func (h *Hub) Run(ctx context.Context) {
	sync := time.NewTicker(h.cfg.SyncInterval)
	defer sync.Stop()
	progress := time.NewTicker(h.cfg.ProgressInterval)
	defer progress.Stop()
	retry := time.NewTicker(h.cfg.RetryInterval)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.kick:
		case <-sync.C:
		case <-retry.C:
			h.retryPending()
			continue
		case <-progress.C:
			h.sendProgress()
			continue
		}
		h.syncOnce()
	}
}

func (h *Hub) sendProgress() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.synced {
		// A progress revision must not overtake events still held.
		if !w.spec.ProgressNotify || len(w.pending) > 0 {
			continue
		}
		if w.sentSinceTick {
			w.sentSinceTick = false
			continue
		}
		select {
		case w.stream.out <- Response{WatchID: w.spec.ID, Revision: h.rev, Progress: true}:
		default:
		}
	}
}

// syncOnce makes one catch-up pass over the unsynced watchers.
func (h *Hub) syncOnce() {
	h.mu.Lock()
	pending := make([]*Watcher, 0, len(h.unsynced))
	for w := range h.unsynced {
		pending = append(pending, w)
	}
	h.mu.Unlock()
	for _, w := range pending {
		h.catchUp(w)
	}
}

func (h *Hub) catchUp(w *Watcher) {
	h.mu.Lock()
	from := w.nextRev
	_, still := h.unsynced[w]
	h.mu.Unlock()
	if !still {
		return
	}
	evs, next, err := h.src.EventsSince(w.spec.Key, w.spec.End, from, h.cfg.CatchUpBatch)

	h.mu.Lock()
	defer h.mu.Unlock()
	if _, still := h.unsynced[w]; !still || w.nextRev != from {
		return // cancelled, or delivered by someone else meanwhile
	}
	if errors.Is(err, mvcc.ErrCompacted) {
		resp := Response{WatchID: w.spec.ID, Revision: h.rev, CompactRevision: h.src.CompactRev(), Canceled: true,
			CancelReason: "mvcc: required revision has been compacted"}
		select {
		case w.stream.out <- resp:
			delete(h.unsynced, w)
		default: // stream full; try again next pass
		}
		return
	}
	if err != nil {
		h.cfg.Logger.Warn("watch catch-up failed", "watch", w.spec.ID, "from", from, "err", err)
		return
	}
	// Whole revisions, as many as fit one response, go out together.
	for i := 0; i < len(evs); {
		var (
			group []mvcc.Event
			last  int64
			size  int64
		)
		j := i
		for j < len(evs) && len(group) < mergeEvents && size < mergeBytes {
			rev := evs[j].Rev.Main
			for j < len(evs) && evs[j].Rev.Main == rev {
				group = append(group, evs[j].Event)
				size += int64(len(evs[j].Event.Kv.Key) + len(evs[j].Event.Kv.Value))
				j++
			}
			last = rev
		}
		if out := w.filter(group); len(out) > 0 {
			select {
			case w.stream.out <- Response{WatchID: w.spec.ID, Events: out, Revision: last}:
				w.sentSinceTick = true
			default:
				return // stream still full; resume from the same revision next pass
			}
		}
		w.nextRev = last + 1
		i = j
	}
	if next > w.nextRev {
		w.nextRev = next
	}
	if w.nextRev > h.rev {
		delete(h.unsynced, w)
		h.synced[w] = struct{}{}
	} else {
		h.wake()
	}
}

// Counts returns how many watchers are synced (fed as revisions commit;
// victims of them hold responses their full stream could not take) and
// how many are catching up from history.
func (h *Hub) Counts() (synced, victims, unsynced int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.synced), h.victims, len(h.unsynced)
}

// Watchers counts the open watchers, synced or catching up.
func (h *Hub) Watchers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.synced) + len(h.unsynced)
}
