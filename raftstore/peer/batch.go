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

// EncodeRequests is the body of a ProposeBatch call.
func EncodeRequests(reqs []*pb.InternalRaftRequest) (*wrapperspb.BytesValue, error) {
	return encodeItems(reqs)
}

// DecodeRequests reads the body of a ProposeBatch call.
func DecodeRequests(b []byte) ([]*pb.InternalRaftRequest, error) {
	return decodeItems(b, func() *pb.InternalRaftRequest { return &pb.InternalRaftRequest{} })
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
