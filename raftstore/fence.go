package raftstore

import (
	"context"
	"strconv"
	"strings"

	"github.com/barge-dev/barge/raftstore/peer"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// FenceMetadataKey is the gRPC metadata a client sets to fence its
// writes to a Raft term: the FSM applies such a write only from a log
// entry of that term, and rejects it otherwise. A leader-only component
// of barge sends the term its leadership began in, so once a new leader
// has committed anything, no write of the old one can land.
const FenceMetadataKey = "barge-fence-term"

// fenceFromContext reads the fence term of an incoming request (0: none).
func fenceFromContext(ctx context.Context) (uint64, error) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return 0, nil
	}
	vals := md.Get(FenceMetadataKey)
	switch len(vals) {
	case 0:
		return 0, nil
	case 1:
	default:
		return 0, status.Errorf(codes.InvalidArgument, "%s given %d times", FenceMetadataKey, len(vals))
	}
	term, err := strconv.ParseUint(vals[0], 10, 64)
	if err != nil || term == 0 {
		return 0, status.Errorf(codes.InvalidArgument, "%s %q: want a Raft term, a positive integer", FenceMetadataKey, vals[0])
	}
	return term, nil
}

func newFencedProposal(ctx context.Context, req *pb.InternalRaftRequest) (peer.Proposal, error) {
	fence, err := fenceFromContext(ctx)
	if err != nil {
		return peer.Proposal{}, err
	}
	return peer.Proposal{Req: req, Fence: fence}, nil
}

// errFenced is the answer to a write fenced to another term than the log
// entry that carries it. FailedPrecondition: retrying cannot help, the
// writer's leadership is over.
func errFenced(fence, term uint64) error {
	return status.Errorf(codes.FailedPrecondition,
		"%s %d arrived in term %d: the leader that sent it has been deposed", fencedPrefix, fence, term)
}

const fencedPrefix = "barge: write fenced to leadership term"

// IsFenced reports whether err (or its message, as relayed by an API
// server) is a write rejected by its fence.
func IsFenced(err error) bool {
	return err != nil && strings.Contains(err.Error(), fencedPrefix)
}
