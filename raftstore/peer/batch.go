package peer

import (
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Result is the outcome of one proposal of a batch: the leader's response
// (such as an *etcdserverpb.PutResponse wrapped in an Any), or the error
// the leader answered that proposal with.
type Result struct {
	Resp *anypb.Any
	Err  error
}

// ErrBadBatch is returned for a batch body this peer cannot decode.
var ErrBadBatch = errors.New("peer: malformed proposal batch")

// A batch travels as the wire form of `message { repeated bytes item = 1; }`
// inside a BytesValue: each item is a marshalled InternalRaftRequest going
// out, and a google.rpc.Status coming back (code OK with the response as
// its only detail, or the error). Reusing well-known messages spares the
// peer protocol a generated .proto of its own.
const batchItemField protowire.Number = 1

func encodeItems[T proto.Message](items []T) (*wrapperspb.BytesValue, error) {
	var buf []byte
	for i, it := range items {
		b, err := proto.Marshal(it)
		if err != nil {
			return nil, fmt.Errorf("encode batch item %d: %w", i, err)
		}
		buf = protowire.AppendTag(buf, batchItemField, protowire.BytesType)
		buf = protowire.AppendBytes(buf, b)
	}
	return wrapperspb.Bytes(buf), nil
}

func decodeItems[T proto.Message](b []byte, newItem func() T) ([]T, error) {
	var out []T
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: item %d: %w", ErrBadBatch, len(out), protowire.ParseError(n))
		}
		b = b[n:]
		if num != batchItemField || typ != protowire.BytesType {
			return nil, fmt.Errorf("%w: item %d: field %d of wire type %d, want field %d bytes", ErrBadBatch, len(out), num, typ, batchItemField)
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: item %d: %w", ErrBadBatch, len(out), protowire.ParseError(n))
		}
		b = b[n:]
		it := newItem()
		if err := proto.Unmarshal(v, it); err != nil {
			return nil, fmt.Errorf("%w: item %d: %w", ErrBadBatch, len(out), err)
		}
		out = append(out, it)
	}
	return out, nil
}

// Proposal is one write of a batch and the Raft term it is fenced to:
// the leader's FSM applies it only from a log entry of that term, so a
// write sent by a leader of an earlier term can never land (0: any term).
type Proposal struct {
	Req   *pb.InternalRaftRequest
	Fence uint64
}

// batchFenceField holds the proposals' fences, packed, one per item in
// item order, when any is set: `repeated uint64 fence = 2`.
const batchFenceField protowire.Number = 2

// EncodeProposals is the body of a ProposeBatch call.
func EncodeProposals(ps []Proposal) (*wrapperspb.BytesValue, error) {
	reqs := make([]*pb.InternalRaftRequest, len(ps))
	fenced := false
	for i, p := range ps {
		reqs[i] = p.Req
		fenced = fenced || p.Fence != 0
	}
	body, err := encodeItems(reqs)
	if err != nil || !fenced {
		return body, err
	}
	var packed []byte
	for _, p := range ps {
		packed = protowire.AppendVarint(packed, p.Fence)
	}
	buf := protowire.AppendTag(body.GetValue(), batchFenceField, protowire.BytesType)
	return wrapperspb.Bytes(protowire.AppendBytes(buf, packed)), nil
}

// DecodeProposals reads the body of a ProposeBatch call.
func DecodeProposals(b []byte) ([]Proposal, error) {
	items, fences, err := splitFences(b)
	if err != nil {
		return nil, err
	}
	reqs, err := decodeItems(items, func() *pb.InternalRaftRequest { return &pb.InternalRaftRequest{} })
	if err != nil {
		return nil, err
	}
	if fences != nil && len(fences) != len(reqs) {
		return nil, fmt.Errorf("%w: %d fences for %d proposals", ErrBadBatch, len(fences), len(reqs))
	}
	out := make([]Proposal, len(reqs))
	for i, r := range reqs {
		out[i].Req = r
		if fences != nil {
			out[i].Fence = fences[i]
		}
	}
	return out, nil
}

// splitFences takes the fence field, which comes last, off a batch body.
func splitFences(b []byte) (items []byte, fences []uint64, err error) {
	rest, at := b, 0
	for len(rest) > 0 {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return nil, nil, fmt.Errorf("%w: at byte %d: %w", ErrBadBatch, at, protowire.ParseError(n))
		}
		if num != batchFenceField {
			m := protowire.ConsumeFieldValue(num, typ, rest[n:])
			if m < 0 {
				return nil, nil, fmt.Errorf("%w: at byte %d: %w", ErrBadBatch, at, protowire.ParseError(m))
			}
			rest, at = rest[n+m:], at+n+m
			continue
		}
		if typ != protowire.BytesType {
			return nil, nil, fmt.Errorf("%w: fences of wire type %d, want packed bytes", ErrBadBatch, typ)
		}
		packed, m := protowire.ConsumeBytes(rest[n:])
		if m < 0 {
			return nil, nil, fmt.Errorf("%w: fences: %w", ErrBadBatch, protowire.ParseError(m))
		}
		if len(rest[n+m:]) != 0 {
			return nil, nil, fmt.Errorf("%w: %d bytes after the fences", ErrBadBatch, len(rest[n+m:]))
		}
		fences = []uint64{}
		for len(packed) > 0 {
			v, k := protowire.ConsumeVarint(packed)
			if k < 0 {
				return nil, nil, fmt.Errorf("%w: fence %d: %w", ErrBadBatch, len(fences), protowire.ParseError(k))
			}
			fences, packed = append(fences, v), packed[k:]
		}
		return b[:at], fences, nil
	}
	return b, nil, nil
}

// EncodeResults is the answer to a ProposeBatch call. An error keeps its
// gRPC code and message, which is all etcd clients look at.
func EncodeResults(rs []Result) (*wrapperspb.BytesValue, error) {
	sts := make([]*spb.Status, len(rs))
	for i, r := range rs {
		switch {
		case r.Err != nil:
			sts[i] = status.Convert(r.Err).Proto()
		case r.Resp == nil:
			return nil, fmt.Errorf("encode batch result %d: neither a response nor an error", i)
		default:
			sts[i] = &spb.Status{Code: int32(codes.OK), Details: []*anypb.Any{r.Resp}}
		}
	}
	return encodeItems(sts)
}

// DecodeResults reads the answer to a ProposeBatch call.
func DecodeResults(b []byte) ([]Result, error) {
	sts, err := decodeItems(b, func() *spb.Status { return &spb.Status{} })
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(sts))
	for i, st := range sts {
		if codes.Code(st.GetCode()) != codes.OK {
			out[i].Err = status.ErrorProto(st)
			continue
		}
		if len(st.GetDetails()) != 1 {
			return nil, fmt.Errorf("%w: result %d: OK with %d details, want the response alone", ErrBadBatch, i, len(st.GetDetails()))
		}
		out[i].Resp = st.GetDetails()[0]
	}
	return out, nil
}
