package raftstore

import (
	"errors"
	"fmt"

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
)

// ErrBadCommand is returned for a log entry this version cannot decode.
var ErrBadCommand = errors.New("raftstore: malformed raft command")

type command struct {
	kind byte
	req  *pb.InternalRaftRequest
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
	default:
		return command{}, fmt.Errorf("%w: unknown kind %d", ErrBadCommand, data[1])
	}
}
