package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/barge-dev/barge/raftstore/peer"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// Raft log entries carry a two-byte header (format version, kind) and a
// protobuf body. etcd's InternalRaftRequest already names every request
// the etcd API can replicate, so we reuse it instead of inventing a schema.
const (
	commandFormat byte = 1

	kindRequest byte = 1 // body: etcdserverpb.InternalRaftRequest
	kindNoop    byte = 2 // no body: marks an index every FSM applies
	// kindFenced: an 8-byte big-endian Raft term, then an
	// InternalRaftRequest the FSM applies only from an entry of that term.
	kindFenced byte = 3
)

// ErrBadCommand is returned for a log entry this version cannot decode.
var ErrBadCommand = errors.New("raftstore: malformed raft command")

type command struct {
	kind  byte
	req   *pb.InternalRaftRequest
	fence uint64 // kindFenced: the term the request must be applied in
}

func encodeRequest(req *pb.InternalRaftRequest) ([]byte, error) {
	body, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode raft command: %w", err)
	}
	buf := make([]byte, 2, 2+len(body))
	buf[0], buf[1] = commandFormat, kindRequest
	return append(buf, body...), nil
}

// encodeProposal encodes a request, fenced to its term if it has one.
func encodeProposal(p peer.Proposal) ([]byte, error) {
	if p.Fence == 0 {
		return encodeRequest(p.Req)
	}
	body, err := proto.Marshal(p.Req)
	if err != nil {
		return nil, fmt.Errorf("encode raft command: %w", err)
	}
	buf := make([]byte, 10, 10+len(body))
	buf[0], buf[1] = commandFormat, kindFenced
	binary.BigEndian.PutUint64(buf[2:], p.Fence)
	return append(buf, body...), nil
}

func encodeNoop() []byte { return []byte{commandFormat, kindNoop} }

func decodeCommand(data []byte) (command, error) {
	if len(data) < 2 {
		return command{}, fmt.Errorf("%w: %d bytes, need at least 2", ErrBadCommand, len(data))
	}
	if data[0] != commandFormat {
		return command{}, fmt.Errorf("%w: format %d, this barge reads format %d", ErrBadCommand, data[0], commandFormat)
	}
	switch data[1] {
	case kindNoop:
		if len(data) != 2 {
			return command{}, fmt.Errorf("%w: noop with %d trailing bytes", ErrBadCommand, len(data)-2)
		}
		return command{kind: kindNoop}, nil
	case kindRequest:
		req := &pb.InternalRaftRequest{}
		if err := proto.Unmarshal(data[2:], req); err != nil {
			return command{}, fmt.Errorf("%w: %w", ErrBadCommand, err)
		}
		return command{kind: kindRequest, req: req}, nil
	case kindFenced:
		if len(data) < 10 {
			return command{}, fmt.Errorf("%w: fenced request of %d bytes, need at least 10", ErrBadCommand, len(data))
		}
		fence := binary.BigEndian.Uint64(data[2:10])
		if fence == 0 {
			return command{}, fmt.Errorf("%w: fenced request with term 0", ErrBadCommand)
		}
		req := &pb.InternalRaftRequest{}
		if err := proto.Unmarshal(data[10:], req); err != nil {
			return command{}, fmt.Errorf("%w: %w", ErrBadCommand, err)
		}
		return command{kind: kindRequest, req: req, fence: fence}, nil
	default:
		return command{}, fmt.Errorf("%w: unknown kind %d", ErrBadCommand, data[1])
	}
}
