package peer

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/barge-dev/barge/raftstore/pki"
	"github.com/hashicorp/raft"
)

func newTestMux(t *testing.T) (*Mux, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	if err := pki.InitDir(dir, pki.InitOptions{Hosts: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	srv, cli, err := pki.PeerTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Listen("127.0.0.1:0", "", srv, cli, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, dir
}

// TestMuxRoutesByProtocol: one port carries Raft and the leader RPC.
func TestMuxRoutesByProtocol(t *testing.T) {
	m, _ := newTestMux(t)
	addr := m.Addr().String()
	rc, err := m.RaftLayer().Dial(raft.ServerAddress(addr), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := rc.Write([]byte("raft")); err != nil {
		t.Fatal(err)
	}
	got, err := m.RaftLayer().Accept()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(got, buf); err != nil || string(buf) != "raft" {
		t.Fatalf("raft stream read %q, %v", buf, err)
	}
	got.Close()

	gc, err := m.DialRPC(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	gc.Write([]byte("grpc"))
	ln := m.RPCListener()
	acc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(acc, buf); err != nil || string(buf) != "grpc" {
		t.Fatalf("rpc stream read %q, %v", buf, err)
	}
	acc.Close()
	// Closing the RPC listener unblocks Accept, as grpc.Server.Stop needs.
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	ln.Close()
	if err := <-done; err == nil {
		t.Fatal("Accept returned a connection after Close")
	}
}

// TestMuxRefusesNonPeerCertificates: an admin certificate from the same CA
// cannot open a Raft stream.
func TestMuxRefusesNonPeerCertificates(t *testing.T) {
	m, dir := newTestMux(t)
	admin, err := pki.ClientTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	admin.InsecureSkipVerify = true // the server's name is not the point here
	c, err := tls.Dial("tcp", m.Addr().String(), admin)
	if err == nil {
		c.Write([]byte{protoRaft})
		_, err = c.Read(make([]byte, 1)) // TLS 1.3 reports the refusal on read
		c.Close()
	}
	if err == nil {
		t.Fatal("admin certificate was accepted on the peer port")
	}
	accepted := make(chan struct{})
	go func() {
		if c, err := m.RaftLayer().Accept(); err == nil {
			c.Close()
			close(accepted)
		}
	}()
	m.Close()
	select {
	case <-accepted:
		t.Fatal("a refused connection reached Raft")
	default:
	}
}

// TestMuxProbeAndStreamEnd: a probe succeeds against a live peer and is
// refused once its listener is gone; an inbound Raft stream that the
// remote closes is reported.
func TestMuxProbeAndStreamEnd(t *testing.T) {
	m, _ := newTestMux(t)
	addr := m.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Probe(ctx, addr); err != nil {
		t.Fatalf("probe of a live peer: %v", err)
	}

	rc, err := m.RaftLayer().Dial(raft.ServerAddress(addr), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.RaftLayer().Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	select {
	case <-m.RaftStreamEnded():
		t.Fatal("stream reported ended while open")
	default:
	}
	rc.Close()
	if _, err := got.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a closed stream succeeded")
	}
	select {
	case <-m.RaftStreamEnded():
	case <-ctx.Done():
		t.Fatal("the end of a Raft stream was not reported")
	}

	other, _ := newTestMux(t)
	gone := other.Addr().String()
	other.Close()
	err = m.Probe(ctx, gone)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("probe of a closed port: %v, want ECONNREFUSED", err)
	}
}
