package v3rpc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/barge-dev/barge/raftstore/watch"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"
)

// invalidWatchID marks replies that belong to no watcher: progress for the
// whole stream and refused creates (clientv3.InvalidWatchID).
const invalidWatchID = -1

// Cancel reasons of refused creates, worded as etcd's mvcc errors so that
// tools matching on them keep working.
const (
	reasonEmptyRange  = "mvcc: watcher range is empty"
	reasonDuplicateID = "mvcc: duplicate watch ID provided on the WatchStream"
)

type watchServer struct {
	pb.UnimplementedWatchServer
	b   Backend
	cfg Config
}

// Watch serves one etcd watch stream. Three goroutines share it: a reader
// that only calls Recv, the handler goroutine that acts on requests, and a
// sender that forwards hub responses. The handler and the sender both
// Send, serialised by watchSession.mu; the handler waits for the sender
// before returning, so nothing is sent after the RPC has ended.
func (s *watchServer) Watch(stream pb.Watch_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()

	ws := &watchSession{
		b:        s.b,
		maxBytes: s.cfg.maxMessageBytes(),
		stream:   stream,
		hub:      s.b.WatchStream(ctx),
		byClient: map[int64]int64{},
		byHub:    map[int64]*watchEntry{},
	}

	reqs, recvErr := receive(ctx, stream.Recv)

	sendDone := make(chan error, 1)
	go func() { sendDone <- ws.sendLoop(ctx) }()

	senderExited, err := ws.serve(ctx, reqs, recvErr, sendDone)
	cancel() // removes the stream's watchers from the hub and stops the sender
	if !senderExited {
		<-sendDone
	}
	if err != nil && !isClientGone(stream.Context(), err) {
		s.cfg.Logger.Warn("watch stream failed", "err", err)
	}
	return err
}

// serve acts on requests until the stream ends. It reports whether it
// consumed the sender's exit.
func (ws *watchSession) serve(ctx context.Context, reqs <-chan *pb.WatchRequest, recvErr <-chan error, sendDone <-chan error) (senderExited bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return false, watchEndError(ctx)
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				// The client sends no more requests but its watchers
				// stay, as in etcd: the grpc-gateway half-closes right
				// after the create request of a JSON watch.
				recvErr = nil
				continue
			}
			return false, err
		case err := <-sendDone:
			if err == nil { // the sender only stops cleanly when ctx ends
				err = watchEndError(ctx)
			}
			return true, err
		case req := <-reqs:
			if err := ws.handle(req); err != nil {
				return false, err
			}
		}
	}
}

// watchEndError is what a stream ended by its context returns; etcd
// reports a cancelled stream as "watch canceled".
func watchEndError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return rpctypes.ErrGRPCWatchCanceled
	}
	return toGRPCError(ctx.Err())
}

type watchEntry struct {
	clientID int64
	fragment bool
}

// watchSession is the state of one watch stream.
//
// Watchers are registered in the hub under IDs of our own that are never
// reused within the stream, and translated to the client's IDs on the way
// out. A client may cancel a watch and create another with the same ID;
// responses of the old watcher still queued in the hub then carry a hub ID
// that no longer maps to anything and are dropped, instead of reaching the
// client as events of the new watch.
type watchSession struct {
	b        Backend
	maxBytes int
	stream   pb.Watch_WatchServer
	hub      *watch.Stream

	// mu serialises Send and guards the ID maps. A create holds it from
	// registering the watcher in the hub until its created reply is sent,
	// and the sender needs it to forward any response, so a watcher's
	// events can never overtake its created reply.
	mu       sync.Mutex
	byClient map[int64]int64       // client watch ID -> hub watch ID
	byHub    map[int64]*watchEntry // hub watch ID -> client watch
	nextAuto int64                 // next candidate for a server-chosen ID
	nextHub  int64

	// ident and identAt cache the cluster, member and term part of event
	// headers; see eventHeader.
	ident   *pb.ResponseHeader
	identAt time.Time
}

// identRefresh bounds how stale the Raft term in event headers may be.
const identRefresh = 100 * time.Millisecond

// eventHeader is the header of a forwarded hub response. Backend.Header
// can be costly (raftstore reads Raft stats for the term) and a busy
// stream forwards many responses, so the identity part is reused for a
// short while; a term lagging by that much tells a client nothing wrong,
// as events carry their own revision. Must be called with mu held.
func (ws *watchSession) eventHeader(rev int64) *pb.ResponseHeader {
	if now := time.Now(); ws.ident == nil || now.Sub(ws.identAt) > identRefresh {
		ws.ident, ws.identAt = headerAt(ws.b, 0), now
	}
	return cloneHeader(ws.ident, rev)
}

func (ws *watchSession) handle(req *pb.WatchRequest) error {
	switch r := req.GetRequestUnion().(type) {
	case *pb.WatchRequest_CreateRequest:
		if r.CreateRequest != nil {
			return ws.create(r.CreateRequest)
		}
	case *pb.WatchRequest_CancelRequest:
		if r.CancelRequest != nil {
			return ws.cancel(r.CancelRequest.WatchId)
		}
	case *pb.WatchRequest_ProgressRequest:
		if r.ProgressRequest != nil {
			// The hub answers only when every watcher of the stream is
			// current, since the reply promises that no older event is
			// still to come; etcd drops the request otherwise, too.
			ws.hub.RequestProgress()
		}
	}
	// Unknown requests are ignored rather than ending the stream, as etcd
	// does.
	return nil
}

func (ws *watchSession) create(c *pb.WatchCreateRequest) error {
	key := c.Key
	if len(key) == 0 {
		// etcd reads a missing key as "\x00", the smallest key, so that
		// key "" with range_end "\x00" watches everything.
		key = []byte{0}
	}
	end := c.RangeEnd
	if len(end) == 0 {
		end = nil
	}
	fromKey := len(end) == 1 && end[0] == 0

	ws.mu.Lock()
	defer ws.mu.Unlock()

	refuse := func(reason string) error {
		return ws.send(&pb.WatchResponse{
			Header:       newFiller(ws.b).fill(nil),
			WatchId:      invalidWatchID,
			Created:      true,
			Canceled:     true,
			CancelReason: reason,
		})
	}
	if c.StartRevision < 0 {
		return refuse(rpctypes.ErrCompacted.Error())
	}
	if end != nil && !fromKey && bytes.Compare(key, end) >= 0 {
		return refuse(reasonEmptyRange)
	}

	id := c.WatchId
	if id == 0 { // clientv3.AutoWatchID: the server picks, skipping IDs in use
		for {
			if _, used := ws.byClient[ws.nextAuto]; !used {
				break
			}
			ws.nextAuto++
		}
		id = ws.nextAuto
		ws.nextAuto++
	} else if _, used := ws.byClient[id]; used {
		return refuse(reasonDuplicateID)
	}

	hubID := ws.nextHub
	ws.nextHub++
	spec := watch.Spec{
		ID:             hubID,
		Key:            key,
		End:            end,
		StartRev:       c.StartRevision,
		PrevKV:         c.PrevKv,
		ProgressNotify: c.ProgressNotify,
	}
	for _, f := range c.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			spec.Filter.NoPut = true
		case pb.WatchCreateRequest_NODELETE:
			spec.Filter.NoDelete = true
		}
	}
	rev := ws.hub.Watch(spec)
	ws.byClient[id] = hubID
	ws.byHub[hubID] = &watchEntry{clientID: id, fragment: c.Fragment}
	return ws.send(&pb.WatchResponse{Header: headerAt(ws.b, rev), WatchId: id, Created: true})
}

func (ws *watchSession) cancel(id int64) error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	hubID, ok := ws.byClient[id]
	if !ok {
		// etcd ignores cancels of unknown watchers; the client may have
		// raced a server-side cancellation.
		return nil
	}
	ws.hub.Cancel(hubID)
	delete(ws.byClient, id)
	delete(ws.byHub, hubID)
	return ws.send(&pb.WatchResponse{Header: newFiller(ws.b).fill(nil), WatchId: id, Canceled: true})
}

// sendLoop forwards hub responses until ctx ends or a Send fails.
func (ws *watchSession) sendLoop(ctx context.Context) error {
	out := ws.hub.Out()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-out:
			if err := ws.forward(r); err != nil {
				return err
			}
		}
	}
}

func (ws *watchSession) forward(r watch.Response) error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	id := int64(invalidWatchID)
	fragment := false
	if r.WatchID != invalidWatchID {
		e, ok := ws.byHub[r.WatchID]
		if !ok {
			return nil // left over from a cancelled watcher
		}
		id, fragment = e.clientID, e.fragment
		if r.Canceled {
			// The hub dropped the watcher (compaction); free its ID.
			delete(ws.byHub, r.WatchID)
			delete(ws.byClient, id)
		}
	}
	wr := &pb.WatchResponse{
		Header:          ws.eventHeader(r.Revision),
		WatchId:         id,
		Events:          r.Events,
		CompactRevision: r.CompactRevision,
		Canceled:        r.Canceled,
		CancelReason:    r.CancelReason,
	}
	if fragment {
		return sendFragments(wr, ws.maxBytes, ws.send)
	}
	return ws.send(wr)
}

// send must be called with mu held.
func (ws *watchSession) send(wr *pb.WatchResponse) error {
	return ws.stream.Send(wr)
}

// sendFragments splits a response that would exceed maxBytes into
// fragments of whole events for watchers that asked for it; clients
// reassemble them. A single event too large on its own still goes out
// whole, as in etcd.
func sendFragments(wr *pb.WatchResponse, maxBytes int, send func(*pb.WatchResponse) error) error {
	if len(wr.Events) < 2 || proto.Size(wr) < maxBytes {
		return send(wr)
	}
	evs := wr.Events
	for len(evs) > 0 {
		// A fresh message per fragment: the previous one may still be
		// referenced by the transport.
		cur := &pb.WatchResponse{
			Header:          wr.Header,
			WatchId:         wr.WatchId,
			Created:         wr.Created,
			Canceled:        wr.Canceled,
			CompactRevision: wr.CompactRevision,
			CancelReason:    wr.CancelReason,
			Fragment:        true,
			Events:          make([]*mvccpb.Event, 0, len(evs)),
		}
		n := 0
		for n < len(evs) {
			cur.Events = append(cur.Events, evs[n])
			if len(cur.Events) > 1 && proto.Size(cur) >= maxBytes {
				cur.Events = cur.Events[:len(cur.Events)-1]
				break
			}
			n++
		}
		evs = evs[n:]
		cur.Fragment = len(evs) > 0
		if err := send(cur); err != nil {
			return err
		}
	}
	return nil
}
