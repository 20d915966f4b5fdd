package v3rpc

import (
	"context"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// headerFiller completes response headers from one Backend.Header call,
// made only when a header actually needs it.
type headerFiller struct {
	b    Backend
	base *pb.ResponseHeader
}

func newFiller(b Backend) *headerFiller { return &headerFiller{b: b} }

func (f *headerFiller) current() *pb.ResponseHeader {
	if f.base == nil {
		f.base = f.b.Header()
		if f.base == nil {
			f.base = &pb.ResponseHeader{}
		}
	}
	return f.base
}

// fill returns h with every zero field taken from the backend's header. A
// revision the backend set is kept: for writes it is the revision of the
// write, which the current revision may already have passed.
func (f *headerFiller) fill(h *pb.ResponseHeader) *pb.ResponseHeader {
	base := f.current()
	if h == nil {
		// A copy, because the backend may hand out a shared header.
		return cloneHeader(base, base.Revision)
	}
	if h.ClusterId == 0 {
		h.ClusterId = base.ClusterId
	}
	if h.MemberId == 0 {
		h.MemberId = base.MemberId
	}
	if h.Revision == 0 {
		h.Revision = base.Revision
	}
	if h.RaftTerm == 0 {
		h.RaftTerm = base.RaftTerm
	}
	return h
}

func cloneHeader(h *pb.ResponseHeader, rev int64) *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: h.ClusterId, MemberId: h.MemberId, Revision: rev, RaftTerm: h.RaftTerm}
}

// headerAt is the backend's header with the revision replaced, for
// responses (watch events, created replies) that speak for a revision
// other than the current one.
func headerAt(b Backend, rev int64) *pb.ResponseHeader {
	h := b.Header()
	if h == nil {
		return &pb.ResponseHeader{Revision: rev}
	}
	return cloneHeader(h, rev)
}

// fillTxn fills the txn's header and those of every response inside it.
// Inner headers the backend left empty inherit the txn's own header, whose
// revision is the one the txn ran at; the current revision may be later.
func fillTxn(f *headerFiller, r *pb.TxnResponse) {
	r.Header = f.fill(r.Header)
	inner := &headerFiller{b: f.b, base: r.Header}
	fillOps(inner, r.Responses)
}

func fillOps(f *headerFiller, ops []*pb.ResponseOp) {
	for _, op := range ops {
		switch v := op.GetResponse().(type) {
		case *pb.ResponseOp_ResponseRange:
			if v.ResponseRange != nil {
				v.ResponseRange.Header = f.fill(v.ResponseRange.Header)
			}
		case *pb.ResponseOp_ResponsePut:
			if v.ResponsePut != nil {
				v.ResponsePut.Header = f.fill(v.ResponsePut.Header)
			}
		case *pb.ResponseOp_ResponseDeleteRange:
			if v.ResponseDeleteRange != nil {
				v.ResponseDeleteRange.Header = f.fill(v.ResponseDeleteRange.Header)
			}
		case *pb.ResponseOp_ResponseTxn:
			if v.ResponseTxn != nil {
				v.ResponseTxn.Header = f.fill(v.ResponseTxn.Header)
				fillOps(f, v.ResponseTxn.Responses)
			}
		}
	}
}

// toGRPCError turns a backend error into what goes on the wire. etcd
// clients recognise errors by exact status message, so a status error
// wrapped with context by the backend is unwrapped to the bare status;
// context errors get their gRPC codes; anything else passes through and
// gRPC reports it as Unknown, as etcd does.
func toGRPCError(err error) error {
	if err == nil {
		return nil
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Err()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	return err
}

// isClientGone reports whether a stream error only means the client went
// away, which is routine and not worth a warning.
func isClientGone(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(err) {
	case codes.Canceled, codes.DeadlineExceeded:
		return true
	}
	return false
}
