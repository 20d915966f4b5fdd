package hollow

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/barge-dev/barge/node/gossip"
)

// Gossip makes every hollow node a member of the gossip pool, as an agent
// is: one in-process memberlist member per node, named as the node, with
// role agent, on its own port of BindAddr.
type Gossip struct {
	// KeyringFile is the pool's keyring (gossip.KeyringFile in the
	// certificate directory).
	KeyringFile string
	// Join lists members to join (the servers' gossip addresses).
	Join []string
	// BindAddr is the IP every member listens on (default 127.0.0.1).
	BindAddr string
	// Timing of failure detection (default gossip.ProfileBarge).
	Timing gossip.Timing
}

// member is one hollow node's gossip member and the transport under it.
type member struct {
	pool  *gossip.Pool
	stall *stallTransport
	port  int
}

// startMember starts name's member on port (0: a free one). A node that
// comes back takes its old port: memberlist lets a name return from
// another address only after DeadNodeReclaimTime.
func startMember(g *Gossip, name string, port int, logger *slog.Logger) (*member, error) {
	bind := g.BindAddr
	if bind == "" {
		bind = "127.0.0.1"
	}
	var (
		nt  *memberlist.NetTransport
		err error
	)
	// A port just released by a killed member may be briefly busy.
	for range 50 {
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{bind}, BindPort: port, Logger: log.New(io.Discard, "", 0),
		})
		if err == nil || port == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("hollow: gossip transport of %s on %s:%d: %w", name, bind, port, err)
	}
	port = nt.GetAutoBindPort()
	st := newStallTransport(nt)
	pool, err := gossip.Start(gossip.Config{
		Name: name, Role: gossip.RoleAgent, BindAddr: bind, Port: port,
		KeyringFile: g.KeyringFile, Join: g.Join, Timing: g.Timing, Transport: st, Logger: logger,
	})
	if err != nil {
		_ = st.Shutdown()
		return nil, fmt.Errorf("hollow: %w", err)
	}
	return &member{pool: pool, stall: st, port: port}, nil
}

// stallTransport is memberlist's network transport with a switch that
// stops the member as SIGSTOP stops a process: while stalled, nothing
// is sent and nothing received is handed to memberlist (the kernel holds
// it, as for a stopped process), and every goroutine of the member that
// reaches the network waits. Released, everything held goes through.
type stallTransport struct {
	*memberlist.NetTransport
	packets chan *memberlist.Packet
	streams chan net.Conn

	mu   sync.Mutex
	gate chan struct{} // closed while running

	done     chan struct{}
	doneOnce sync.Once
}

func newStallTransport(nt *memberlist.NetTransport) *stallTransport {
	t := &stallTransport{NetTransport: nt, packets: make(chan *memberlist.Packet), streams: make(chan net.Conn),
		gate: make(chan struct{}), done: make(chan struct{})}
	close(t.gate)
	go forward(t, nt.PacketCh(), t.packets)
	go forward(t, nt.StreamCh(), t.streams)
	return t
}

func forward[T any](t *stallTransport, in <-chan T, out chan<- T) {
	for {
		var v T
		select {
		case v = <-in:
		case <-t.done:
			return
		}
		if !t.wait() {
			return
		}
		select {
		case out <- v:
		case <-t.done:
			return
		}
	}
}

// wait blocks while the transport is stalled; false once it shut down.
func (t *stallTransport) wait() bool {
	t.mu.Lock()
	g := t.gate
	t.mu.Unlock()
	select {
	case <-g:
		return true
	case <-t.done:
		return false
	}
}

func (t *stallTransport) stall() {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.gate:
		t.gate = make(chan struct{})
	default:
	}
}

func (t *stallTransport) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.gate:
	default:
		close(t.gate)
	}
}

var errStopped = errors.New("hollow: gossip transport stopped")

func (t *stallTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *stallTransport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *stallTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if !t.wait() {
		return time.Time{}, errStopped
	}
	return t.NetTransport.WriteTo(b, addr)
}

func (t *stallTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	if !t.wait() {
		return time.Time{}, errStopped
	}
	return t.NetTransport.WriteToAddress(b, addr)
}

func (t *stallTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if !t.wait() {
		return nil, errStopped
	}
	return t.NetTransport.DialTimeout(addr, timeout)
}

func (t *stallTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if !t.wait() {
		return nil, errStopped
	}
	return t.NetTransport.DialAddressTimeout(addr, timeout)
}

func (t *stallTransport) Shutdown() error {
	t.doneOnce.Do(func() { close(t.done) })
	// With forward gone, a packet arriving now would block NetTransport's
	// listener on its unbuffered channel, and NetTransport.Shutdown waits
	// for that listener for ever (a CI run hung 16 minutes on it): drain
	// until it has stopped.
	stopped := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.NetTransport.PacketCh():
			case c := <-t.NetTransport.StreamCh():
				_ = c.Close()
			case <-stopped:
				return
			}
		}
	}()
	err := t.NetTransport.Shutdown()
	close(stopped)
	return err
}
