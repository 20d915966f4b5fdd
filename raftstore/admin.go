package raftstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/barge-dev/barge/raftstore/snapfile"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The admin service carries barge operations the etcd API has no word
// for. It is served on the client port next to the etcd services and only
// to administrators (certificates in the system:masters group).
const adminService = "barge.admin.v1.Admin"

// AdminGroup is the certificate organization allowed to call the admin
// service, as in Kubernetes.
const AdminGroup = "system:masters"

var adminDesc = grpc.ServiceDesc{
	ServiceName: adminService,
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "RestoreLive",
		ClientStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			return srv.(*Server).serveRestoreLive(stream)
		},
	}},
}

// RequireAdmin admits a gRPC call only from a verified client certificate
// in AdminGroup. Services that other packages register on the client port
// (Config.RegisterServices) guard their methods with it.
func RequireAdmin(ctx context.Context) error {
	p, ok := grpcpeer.FromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "no peer information")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 {
		return status.Error(codes.Unauthenticated, "a verified client certificate is required")
	}
	leaf := ti.State.VerifiedChains[0][0]
	if !slices.Contains(leaf.Subject.Organization, AdminGroup) {
		return status.Errorf(codes.PermissionDenied, "certificate %q is not in group %s", leaf.Subject.CommonName, AdminGroup)
	}
	return nil
}

func (s *Server) serveRestoreLive(stream grpc.ServerStream) error {
	if err := RequireAdmin(stream.Context()); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		for {
			chunk := &wrapperspb.BytesValue{}
			err := stream.RecvMsg(chunk)
			if errors.Is(err, io.EOF) {
				pw.Close()
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := pw.Write(chunk.Value); err != nil {
				return
			}
		}
	}()
	meta, err := s.RestoreLive(stream.Context(), pr)
	pr.CloseWithError(errors.New("restore finished"))
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return err
		}
		return status.Errorf(codes.InvalidArgument, "live restore refused: %v", err)
	}
	b, _ := json.Marshal(meta)
	return stream.SendMsg(wrapperspb.String(string(b)))
}

// RestoreLiveRemote uploads a snapshot to the leader behind cc and waits
// for the live restore to finish. progress, if set, is told the bytes
// sent so far.
func RestoreLiveRemote(ctx context.Context, cc grpc.ClientConnInterface, r io.Reader, progress func(int64)) (snapfile.Metadata, error) {
	desc := &grpc.StreamDesc{StreamName: "RestoreLive", ClientStreams: true}
	stream, err := cc.NewStream(ctx, desc, "/"+adminService+"/RestoreLive")
	if err != nil {
		return snapfile.Metadata{}, err
	}
	buf := make([]byte, 256<<10)
	var sent int64
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if err := stream.SendMsg(wrapperspb.Bytes(buf[:n])); err != nil {
				break // the server's reason arrives with RecvMsg below
			}
			sent += int64(n)
			if progress != nil {
				progress(sent)
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return snapfile.Metadata{}, fmt.Errorf("read snapshot: %w", rerr)
		}
	}
	if err := stream.CloseSend(); err != nil {
		return snapfile.Metadata{}, err
	}
	out := &wrapperspb.StringValue{}
	if err := stream.RecvMsg(out); err != nil {
		return snapfile.Metadata{}, err
	}
	var meta snapfile.Metadata
	if err := json.Unmarshal([]byte(out.Value), &meta); err != nil {
		return snapfile.Metadata{}, fmt.Errorf("decode restore result: %w", err)
	}
	return meta, nil
}
