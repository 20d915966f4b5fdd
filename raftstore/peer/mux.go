package peer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Protocol bytes sent first on every peer connection.
const (
	protoRaft byte = 'R'
	protoRPC  byte = 'G'
	// protoProbe asks only "is this peer's process alive": the
	// connection is closed once routed.
	protoProbe byte = 'P'
)

const handshakeTimeout = 10 * time.Second

// ErrClosed is returned by Accept after Close.
var ErrClosed = errors.New("peer transport closed")

// Mux accepts mutual-TLS peer connections and routes them by protocol.
type Mux struct {
	ln        net.Listener
	advertise net.Addr
	serverTLS *tls.Config
	clientTLS *tls.Config
	logger    *slog.Logger

	raftConns chan net.Conn
	rpcConns  chan net.Conn
	// raftEnded gets a token whenever an accepted Raft stream ends (the
	// remote closed it or it broke); see RaftStreamEnded.
	raftEnded chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Listen starts the peer listener on bind. advertise is the address other
// peers dial (it may differ from bind, e.g. 0.0.0.0 vs the host IP).
func Listen(bind, advertise string, serverTLS, clientTLS *tls.Config, logger *slog.Logger) (*Mux, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("peer listen on %s: %w", bind, err)
	}
	if advertise == "" {
		advertise = ln.Addr().String()
	}
	adv, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("peer advertise address %q: %w", advertise, err)
	}
	m := &Mux{
		ln: ln, advertise: adv, serverTLS: serverTLS, clientTLS: clientTLS, logger: logger,
		raftConns: make(chan net.Conn, 16), rpcConns: make(chan net.Conn, 16), raftEnded: make(chan struct{}, 1), done: make(chan struct{}),
	}
	go m.acceptLoop()
	return m, nil
}

// Addr is the bound address (useful when bind used port 0).
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

func (m *Mux) acceptLoop() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.logger.Error("peer accept failed", "err", err)
			return
		}
		go m.route(c)
	}
}

// route completes the TLS handshake and the protocol byte off the accept
// loop, so a slow or hostile client cannot hold up other peers.
func (m *Mux) route(raw net.Conn) {
	_ = raw.SetDeadline(time.Now().Add(handshakeTimeout))
	c := tls.Server(raw, m.serverTLS)
	if err := c.Handshake(); err != nil {
		m.logger.Warn("peer connection refused", "remote", raw.RemoteAddr().String(), "err", err)
		raw.Close()
		return
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	var (
		ch   chan net.Conn
		conn net.Conn = c
	)
	switch b[0] {
	case protoRaft:
		ch = m.raftConns
		conn = &raftConn{Conn: c, ended: m.raftEnded}
	case protoRPC:
		ch = m.rpcConns
	case protoProbe:
		c.Close()
		return
	default:
		m.logger.Warn("peer connection with unknown protocol", "remote", raw.RemoteAddr().String(), "byte", b[0])
		c.Close()
		return
	}
	select {
	case ch <- conn:
	case <-m.done:
		c.Close()
	}
}

// raftConn reports the end of an inbound Raft stream. A leader holds its
// streams to every follower open for as long as it leads, so a stream
// ending is the first sign a follower gets that the leader's process may
// be gone, long before its heartbeat timeout.
type raftConn struct {
	net.Conn
	ended chan struct{}
	once  sync.Once
}

func (c *raftConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.once.Do(func() {
			select {
			case c.ended <- struct{}{}:
			default: // one pending token covers every stream that ended
			}
		})
	}
	return n, err
}

// RaftStreamEnded fires after one or more inbound Raft streams ended.
func (m *Mux) RaftStreamEnded() <-chan struct{} { return m.raftEnded }

// Probe tells whether a peer's process is there: nil if it completed a
// mutual-TLS handshake, the dial's error otherwise. A refused connection
// (syscall.ECONNREFUSED) means the host is up and nothing listens on the
// port: the peer's process is gone.
func (m *Mux) Probe(ctx context.Context, addr string) error {
	c, err := m.dial(ctx, addr, protoProbe)
	if err != nil {
		return err
	}
	return c.Close()
}

func (m *Mux) dial(ctx context.Context, addr string, proto byte) (net.Conn, error) {
	d := tls.Dialer{Config: m.clientTLS}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{proto}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close stops accepting; open connections are closed by their owners.
func (m *Mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.done)
		err = m.ln.Close()
	})
	return err
}

// RaftLayer returns the raft.StreamLayer over this mux.
func (m *Mux) RaftLayer() raft.StreamLayer { return &raftLayer{m: m} }

// RPCListener returns a listener of RPC connections for a gRPC server.
func (m *Mux) RPCListener() net.Listener {
	return &chanListener{m: m, ch: m.rpcConns, closed: make(chan struct{})}
}

// DialRPC opens an RPC connection to a peer, for a gRPC context dialer.
func (m *Mux) DialRPC(ctx context.Context, addr string) (net.Conn, error) {
	return m.dial(ctx, addr, protoRPC)
}

type raftLayer struct{ m *Mux }

func (l *raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftConns:
		return c, nil
	case <-l.m.done:
		return nil, ErrClosed
	}
}

func (l *raftLayer) Close() error   { return l.m.Close() }
func (l *raftLayer) Addr() net.Addr { return l.m.advertise }

func (l *raftLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.m.dial(ctx, string(addr), protoRaft)
}

// chanListener hands routed connections to a gRPC server. Closing it
// must unblock Accept, since grpc.Server.Stop waits for Serve to return.
type chanListener struct {
	m      *Mux
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.m.done:
		return nil, ErrClosed
	case <-l.closed:
		return nil, ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}
func (l *chanListener) Addr() net.Addr { return l.m.advertise }
