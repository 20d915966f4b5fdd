package v3rpc

import (
	"context"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

type kvServer struct {
	pb.UnimplementedKVServer
	b   Backend
	cfg Config
}

func (s *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkRangeRequest(r); err != nil {
		return nil, err
	}
	resp, err := s.b.Range(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("Range")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	return resp, nil
}

// rangeStreamChunkBytes bounds the key-values per RangeStream message, so
// a large range arrives as a stream rather than as one huge message.
const rangeStreamChunkBytes = 1 << 20

// RangeStream serves etcd 3.7's streaming range from one Range call: the
// result is consistent because it is read at one revision, and chunking
// spares clients one giant message. Like etcd, header, more and count
// travel only on the last chunk, so merging all chunks yields the Range
// response.
func (s *kvServer) RangeStream(r *pb.RangeRequest, stream pb.KV_RangeStreamServer) error {
	if err := checkRangeRequest(r); err != nil {
		return err
	}
	resp, err := s.b.Range(stream.Context(), r)
	if err != nil {
		return toGRPCError(err)
	}
	if resp == nil {
		return errNilResponse("Range")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	kvs := resp.Kvs
	for len(kvs) > 0 {
		n, size := 0, 0
		for n < len(kvs) && (n == 0 || size < rangeStreamChunkBytes) {
			size += proto.Size(kvs[n])
			n++
		}
		if n == len(kvs) {
			break // the rest goes out with the final chunk
		}
		if err := stream.Send(&pb.RangeStreamResponse{RangeResponse: &pb.RangeResponse{Kvs: kvs[:n]}}); err != nil {
			return err
		}
		kvs = kvs[n:]
	}
	resp.Kvs = kvs
	return stream.Send(&pb.RangeStreamResponse{RangeResponse: resp})
}

func (s *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := checkPutRequest(r); err != nil {
		return nil, err
	}
	if err := s.checkSize(r); err != nil {
		return nil, err
	}
	resp, err := s.b.Put(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("Put")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	return resp, nil
}

func (s *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := checkDeleteRequest(r); err != nil {
		return nil, err
	}
	if err := s.checkSize(r); err != nil {
		return nil, err
	}
	resp, err := s.b.DeleteRange(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("DeleteRange")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	return resp, nil
}

func (s *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := checkTxnRequest(r, s.cfg.MaxTxnOps); err != nil {
		return nil, err
	}
	// Overlaps are checked after the op counts are known to be bounded,
	// as etcd does, so a hostile txn cannot make this quadratic check slow.
	if _, _, err := checkIntervals(r.Success); err != nil {
		return nil, err
	}
	if _, _, err := checkIntervals(r.Failure); err != nil {
		return nil, err
	}
	if err := s.checkSize(r); err != nil {
		return nil, err
	}
	resp, err := s.b.Txn(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("Txn")
	}
	fillTxn(newFiller(s.b), resp)
	return resp, nil
}

func (s *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := s.b.Compact(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("Compact")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	return resp, nil
}

// checkSize applies etcd's limit on replicated requests. etcd measures
// the Raft entry; the request itself is the part a client controls, and
// the entry only adds a few bytes of envelope.
func (s *kvServer) checkSize(m proto.Message) error {
	if proto.Size(m) > s.cfg.MaxRequestBytes {
		return rpctypes.ErrGRPCRequestTooLarge
	}
	return nil
}

// errNilResponse reports a backend bug instead of panicking in the
// header fill.
func errNilResponse(method string) error {
	return status.Error(codes.Internal, fmt.Sprintf("barge: backend returned no %s response", method))
}
