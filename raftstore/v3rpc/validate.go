package v3rpc

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// The checks below reproduce etcd's (server/etcdserver/api/v3rpc/key.go)
// rule for rule, including its quirks, so that a request is rejected here
// exactly when etcd would reject it, with the same error.

func checkRangeRequest(r *pb.RangeRequest) error {
	if len(r.GetKey()) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.SortOrder)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.SortTarget)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	return nil
}

func checkPutRequest(r *pb.PutRequest) error {
	if len(r.GetKey()) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if r.IgnoreValue && len(r.Value) != 0 {
		return rpctypes.ErrGRPCValueProvided
	}
	if r.IgnoreLease && r.Lease != 0 {
		return rpctypes.ErrGRPCLeaseProvided
	}
	return nil
}

func checkDeleteRequest(r *pb.DeleteRangeRequest) error {
	if len(r.GetKey()) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	return nil
}

// checkTxnRequest bounds each list of the txn by maxTxnOps; a nested txn
// gets what the enclosing lists left of the budget.
func checkTxnRequest(r *pb.TxnRequest, maxTxnOps int) error {
	opc := max(len(r.GetCompare()), len(r.GetSuccess()), len(r.GetFailure()))
	if opc > maxTxnOps {
		return rpctypes.ErrGRPCTooManyOps
	}
	for _, c := range r.GetCompare() {
		if len(c.GetKey()) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	}
	for _, u := range r.GetSuccess() {
		if err := checkRequestOp(u, maxTxnOps-opc); err != nil {
			return err
		}
	}
	for _, u := range r.GetFailure() {
		if err := checkRequestOp(u, maxTxnOps-opc); err != nil {
			return err
		}
	}
	return nil
}

func checkRequestOp(u *pb.RequestOp, maxTxnOps int) error {
	switch uv := u.GetRequest().(type) {
	case *pb.RequestOp_RequestRange:
		return checkRangeRequest(uv.RequestRange)
	case *pb.RequestOp_RequestPut:
		return checkPutRequest(uv.RequestPut)
	case *pb.RequestOp_RequestDeleteRange:
		return checkDeleteRequest(uv.RequestDeleteRange)
	case *pb.RequestOp_RequestTxn:
		return checkTxnRequest(uv.RequestTxn, maxTxnOps)
	default:
		// An empty op; etcd answers it with "key not found".
		return rpctypes.ErrGRPCKeyNotFound
	}
}

// keyInterval is [begin, end) under etcd's "affine" string order, in which
// an empty end lies above every key.
type keyInterval struct{ begin, end string }

func (iv keyInterval) contains(key string) bool {
	return iv.begin <= key && (iv.end == "" || key < iv.end)
}

type intervals []keyInterval

func (ivs intervals) contain(key string) bool {
	for _, iv := range ivs {
		if iv.contains(key) {
			return true
		}
	}
	return false
}

// checkIntervals rejects ops of one txn branch that write the same key
// twice: two puts, or a put inside a deleted range, at this level or in
// nested txns. It returns this level's puts and deletes for the caller's
// check. Puts of the then and else branches of one nested txn may share
// keys, since only one branch runs.
//
// Two etcd quirks are kept on purpose, so that every txn etcd accepts is
// accepted here: a delete's range_end is taken literally, so a from-key
// delete (range_end "\x00") conflicts with no put; and a nested txn's puts
// are checked only against deletes of earlier nested txns, not later ones.
func checkIntervals(reqs []*pb.RequestOp) (map[string]struct{}, intervals, error) {
	var dels intervals
	for _, req := range reqs {
		tv, ok := req.GetRequest().(*pb.RequestOp_RequestDeleteRange)
		if !ok || tv.RequestDeleteRange == nil {
			continue
		}
		d := tv.RequestDeleteRange
		if len(d.RangeEnd) != 0 {
			dels = append(dels, keyInterval{string(d.Key), string(d.RangeEnd)})
		} else {
			dels = append(dels, keyInterval{string(d.Key), string(d.Key) + "\x00"})
		}
	}

	puts := map[string]struct{}{}
	for _, req := range reqs {
		tv, ok := req.GetRequest().(*pb.RequestOp_RequestTxn)
		if !ok || tv.RequestTxn == nil {
			continue
		}
		putsThen, delsThen, err := checkIntervals(tv.RequestTxn.Success)
		if err != nil {
			return nil, dels, err
		}
		putsElse, delsElse, err := checkIntervals(tv.RequestTxn.Failure)
		if err != nil {
			return nil, dels, err
		}
		for k := range putsThen {
			if _, dup := puts[k]; dup || dels.contain(k) {
				return nil, dels, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			if _, dup := puts[k]; dup {
				if _, sameTxn := putsThen[k]; !sameTxn {
					return nil, dels, rpctypes.ErrGRPCDuplicateKey
				}
			}
			if dels.contain(k) {
				return nil, dels, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		dels = append(dels, delsThen...)
		dels = append(dels, delsElse...)
	}

	for _, req := range reqs {
		tv, ok := req.GetRequest().(*pb.RequestOp_RequestPut)
		if !ok || tv.RequestPut == nil {
			continue
		}
		k := string(tv.RequestPut.Key)
		if _, dup := puts[k]; dup || dels.contain(k) {
			return nil, dels, rpctypes.ErrGRPCDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}
