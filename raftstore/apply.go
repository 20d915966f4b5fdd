package raftstore

import (
	"bytes"
	"errors"

	"github.com/barge-dev/barge/raftstore/lease"
	"github.com/barge-dev/barge/raftstore/mvcc"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"
)

// applyResult is what FSM.Apply returns to the proposer through
// raft.ApplyFuture.Response.
type applyResult struct {
	resp proto.Message
	rev  int64  // store revision after the entry
	err  error  // an rpctypes gRPC error, passed to the client as is
	term uint64 // of a no-op: the term of the entry, for the new leader
}

// applier executes one decoded request against the store. Every peer runs
// the same requests in the same order, so everything here must be
// deterministic: no clocks, no randomness, no map iteration order.
type applier struct {
	store  *mvcc.Store
	lessor *lease.Lessor
	notify func(rev int64, evs []mvcc.Event)
}

func (a *applier) apply(req *pb.InternalRaftRequest) applyResult {
	switch {
	case req.Put != nil:
		return a.txn(&pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: req.Put}}}}, unwrapPut)
	case req.DeleteRange != nil:
		return a.txn(&pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: req.DeleteRange}}}}, unwrapDelete)
	case req.Txn != nil:
		return a.txn(req.Txn, nil)
	case req.Compaction != nil:
		return a.compact(req.Compaction)
	case req.LeaseGrant != nil:
		return a.leaseGrant(req.LeaseGrant)
	case req.LeaseRevoke != nil:
		return a.leaseRevoke(req.LeaseRevoke)
	default:
		return applyResult{rev: a.store.Rev(), err: rpctypes.ErrGRPCNotCapable}
	}
}

func unwrapPut(r *pb.TxnResponse) proto.Message {
	return r.Responses[0].GetResponsePut()
}

func unwrapDelete(r *pb.TxnResponse) proto.Message {
	return r.Responses[0].GetResponseDeleteRange()
}

// txn applies a transaction in etcd's order: choose the whole branch path
// (nested compares included) against the state before the txn, check the
// ops on that path, then execute them at one new revision.
func (a *applier) txn(rt *pb.TxnRequest, unwrap func(*pb.TxnResponse) proto.Message) applyResult {
	w := a.store.Write()
	path := choosePath(w, rt)
	if err := checkPath(w, a.lessor, rt, path); err != nil {
		rev, _ := w.End()
		return applyResult{rev: rev, err: err}
	}
	resp, err := a.execTxn(w, rt, &path)
	rev, evs := w.End()
	if len(evs) > 0 && a.notify != nil {
		a.notify(rev, evs)
	}
	if err != nil {
		return applyResult{rev: rev, err: err}
	}
	fillRevs(resp, rev)
	var out proto.Message = resp
	if unwrap != nil {
		out = unwrap(resp)
	}
	return applyResult{resp: out, rev: rev}
}

// choosePath records, depth first, whether each txn on the path succeeded.
func choosePath(w *mvcc.Write, rt *pb.TxnRequest) []bool {
	ok := evalCompares(w, rt.Compare)
	path := []bool{ok}
	for _, op := range branch(rt, ok) {
		if t := op.GetRequestTxn(); t != nil {
			path = append(path, choosePath(w, t)...)
		}
	}
	return path
}

func branch(rt *pb.TxnRequest, ok bool) []*pb.RequestOp {
	if ok {
		return rt.Success
	}
	return rt.Failure
}

func checkPath(w *mvcc.Write, ls *lease.Lessor, rt *pb.TxnRequest, path []bool) error {
	var walk func(rt *pb.TxnRequest) error
	i := 0
	walk = func(rt *pb.TxnRequest) error {
		ok := path[i]
		i++
		for _, op := range branch(rt, ok) {
			switch r := op.Request.(type) {
			case *pb.RequestOp_RequestPut:
				if err := checkPut(w, ls, r.RequestPut); err != nil {
					return err
				}
			case *pb.RequestOp_RequestRange:
				if rr := r.RequestRange; rr.Revision > w.Rev() {
					return rpctypes.ErrGRPCFutureRev
				} else if rr.Revision > 0 && rr.Revision < w.CompactRev() {
					return rpctypes.ErrGRPCCompacted
				}
			case *pb.RequestOp_RequestTxn:
				if err := walk(r.RequestTxn); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(rt)
}

func checkPut(w *mvcc.Write, ls *lease.Lessor, p *pb.PutRequest) error {
	if p.IgnoreValue || p.IgnoreLease {
		if _, ok := w.Get(p.Key); !ok {
			return rpctypes.ErrGRPCKeyNotFound
		}
	}
	if p.Lease != 0 && !p.IgnoreLease && !ls.Exists(p.Lease) {
		return rpctypes.ErrGRPCLeaseNotFound
	}
	return nil
}

func (a *applier) execTxn(w *mvcc.Write, rt *pb.TxnRequest, path *[]bool) (*pb.TxnResponse, error) {
	ok := (*path)[0]
	*path = (*path)[1:]
	ops := branch(rt, ok)
	resp := &pb.TxnResponse{Succeeded: ok, Responses: make([]*pb.ResponseOp, 0, len(ops))}
	for _, op := range ops {
		switch r := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			rr, err := execRange(w, r.RequestRange)
			if err != nil {
				return nil, err
			}
			resp.Responses = append(resp.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: rr}})
		case *pb.RequestOp_RequestPut:
			resp.Responses = append(resp.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: a.execPut(w, r.RequestPut)}})
		case *pb.RequestOp_RequestDeleteRange:
			resp.Responses = append(resp.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: a.execDelete(w, r.RequestDeleteRange)}})
		case *pb.RequestOp_RequestTxn:
			tr, err := a.execTxn(w, r.RequestTxn, path)
			if err != nil {
				return nil, err
			}
			resp.Responses = append(resp.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: tr}})
		}
	}
	return resp, nil
}

func (a *applier) execPut(w *mvcc.Write, p *pb.PutRequest) *pb.PutResponse {
	value, leaseID := p.Value, p.Lease
	if p.IgnoreValue || p.IgnoreLease {
		cur, _ := w.Get(p.Key)
		if p.IgnoreValue {
			value = cur.Value
		}
		if p.IgnoreLease {
			leaseID = cur.Lease
		}
	}
	ev := w.Put(p.Key, value, leaseID)
	key := string(p.Key)
	if ev.PrevKv != nil && ev.PrevKv.Lease != 0 && ev.PrevKv.Lease != leaseID {
		a.lessor.Detach(ev.PrevKv.Lease, key)
	}
	if leaseID != 0 {
		a.lessor.Attach(leaseID, key)
	}
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{}}
	if p.PrevKv {
		resp.PrevKv = ev.PrevKv
	}
	return resp
}

func (a *applier) execDelete(w *mvcc.Write, d *pb.DeleteRangeRequest) *pb.DeleteRangeResponse {
	evs := w.DeleteRange(d.Key, d.RangeEnd)
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}, Deleted: int64(len(evs))}
	for _, ev := range evs {
		if ev.PrevKv.Lease != 0 {
			a.lessor.Detach(ev.PrevKv.Lease, string(ev.PrevKv.Key))
		}
		if d.PrevKv {
			resp.PrevKvs = append(resp.PrevKvs, ev.PrevKv)
		}
	}
	return resp
}

// fillRevs stamps the txn's final revision into every nested header, as
// etcd reports the revision after the whole txn.
func fillRevs(resp *pb.TxnResponse, rev int64) {
	resp.Header = &pb.ResponseHeader{Revision: rev}
	for _, r := range resp.Responses {
		switch x := r.Response.(type) {
		case *pb.ResponseOp_ResponsePut:
			x.ResponsePut.Header = &pb.ResponseHeader{Revision: rev}
		case *pb.ResponseOp_ResponseDeleteRange:
			x.ResponseDeleteRange.Header = &pb.ResponseHeader{Revision: rev}
		case *pb.ResponseOp_ResponseRange:
			x.ResponseRange.Header = &pb.ResponseHeader{Revision: rev}
		case *pb.ResponseOp_ResponseTxn:
			fillRevs(x.ResponseTxn, rev)
		}
	}
}

func evalCompares(w *mvcc.Write, cs []*pb.Compare) bool {
	for _, c := range cs {
		if !evalCompare(w, c) {
			return false
		}
	}
	return true
}

// evalCompare follows etcd: a compare over a range holds only if it holds
// for every key; a missing key compares as zero, except that a value
// compare against a missing key is always false.
func evalCompare(w *mvcc.Write, c *pb.Compare) bool {
	rr, err := w.Range(c.Key, c.RangeEnd, mvcc.RangeOptions{})
	if err != nil {
		return false
	}
	if len(rr.KVs) == 0 {
		if c.Target == pb.Compare_VALUE {
			return false
		}
		return compareKV(c, &mvccpb.KeyValue{})
	}
	for _, kv := range rr.KVs {
		if !compareKV(c, kv) {
			return false
		}
	}
	return true
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var r int
	switch c.Target {
	case pb.Compare_VALUE:
		r = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_CREATE:
		r = cmpInt(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		r = cmpInt(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		r = cmpInt(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		r = cmpInt(kv.Lease, c.GetLease())
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return r == 0
	case pb.Compare_NOT_EQUAL:
		return r != 0
	case pb.Compare_GREATER:
		return r > 0
	case pb.Compare_LESS:
		return r < 0
	}
	return false
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (a *applier) compact(c *pb.CompactionRequest) applyResult {
	err := a.store.Compact(c.Revision)
	rev := a.store.Rev()
	if err != nil {
		return applyResult{rev: rev, err: mvccError(err)}
	}
	return applyResult{resp: &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: rev}}, rev: rev}
}

func (a *applier) leaseGrant(g *pb.LeaseGrantRequest) applyResult {
	ttl, err := a.lessor.Grant(g.ID, g.TTL)
	rev := a.store.Rev()
	if errors.Is(err, lease.ErrExists) {
		return applyResult{rev: rev, err: rpctypes.ErrGRPCLeaseExist}
	}
	return applyResult{resp: &pb.LeaseGrantResponse{Header: &pb.ResponseHeader{Revision: rev}, ID: g.ID, TTL: ttl}, rev: rev}
}

// leaseRevoke deletes the lease's keys in one revision on every peer.
func (a *applier) leaseRevoke(r *pb.LeaseRevokeRequest) applyResult {
	keys, err := a.lessor.Revoke(r.ID)
	if err != nil {
		return applyResult{rev: a.store.Rev(), err: rpctypes.ErrGRPCLeaseNotFound}
	}
	w := a.store.Write()
	for _, k := range keys {
		w.DeleteRange([]byte(k), nil)
	}
	rev, evs := w.End()
	if len(evs) > 0 && a.notify != nil {
		a.notify(rev, evs)
	}
	return applyResult{resp: &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: rev}}, rev: rev}
}

// execRange serves a RangeRequest from a store view (inside a txn or a
// plain read), with etcd's sorting, limits and revision filters.
func execRange(r interface {
	Range(key, end []byte, opts mvcc.RangeOptions) (*mvcc.RangeResult, error)
}, rr *pb.RangeRequest) (*pb.RangeResponse, error) {
	// Sorting by anything but ascending key, or filtering, needs every
	// match before the limit is applied.
	needAll := (rr.SortOrder != pb.RangeRequest_NONE && !(rr.SortTarget == pb.RangeRequest_KEY && rr.SortOrder == pb.RangeRequest_ASCEND)) ||
		rr.MinModRevision != 0 || rr.MaxModRevision != 0 || rr.MinCreateRevision != 0 || rr.MaxCreateRevision != 0
	opts := mvcc.RangeOptions{Rev: rr.Revision, KeysOnly: rr.KeysOnly, CountOnly: rr.CountOnly && !needAll}
	if !needAll && rr.Limit > 0 {
		opts.Limit = rr.Limit
	}
	res, err := r.Range(rr.Key, rr.RangeEnd, opts)
	if err != nil {
		return nil, mvccError(err)
	}
	kvs := res.KVs
	// Count is what the range matched before the revision filters, as
	// etcd reports it (its filters prune the page, not the count).
	count := res.Count
	if needAll {
		kvs = filterKVs(kvs, rr)
		sortKVs(kvs, rr.SortTarget, rr.SortOrder)
		if rr.CountOnly {
			kvs = nil
		}
	}
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: res.Rev}, Count: count}
	if rr.Limit > 0 && int64(len(kvs)) > rr.Limit {
		kvs = kvs[:rr.Limit]
		resp.More = true
	} else if !needAll && rr.Limit > 0 && count > int64(len(kvs)) && !rr.CountOnly {
		resp.More = true
	}
	resp.Kvs = kvs
	return resp, nil
}

// mvccError maps store errors to the etcd errors clients know.
func mvccError(err error) error {
	switch {
	case errors.Is(err, mvcc.ErrCompacted):
		return rpctypes.ErrGRPCCompacted
	case errors.Is(err, mvcc.ErrFutureRev):
		return rpctypes.ErrGRPCFutureRev
	}
	return err
}
