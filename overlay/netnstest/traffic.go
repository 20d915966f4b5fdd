package netnstest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// IOTimeout bounds each network exchange of a test: long enough never to
// cut a working exchange on a busy machine, short enough that a broken
// data path fails with a message. It is a guard, not a measurement.
const IOTimeout = 20 * time.Second

// Echo is a TCP and UDP echo server on one address inside a namespace.
// A TCP connection first gets the client address as the server saw it
// ("ip:port\n"), then its own bytes back. A UDP datagram "whoami" gets
// the client address back; any other datagram is echoed unchanged.
type Echo struct {
	Addr netip.AddrPort
	tcp  net.Listener
	udp  net.PacketConn
}

// ServeEcho starts an Echo on addr (port 0 picks one) in the namespace at
// nsPath; it stops in t.Cleanup.
func ServeEcho(t testing.TB, nsPath string, addr netip.AddrPort) *Echo {
	t.Helper()
	e := &Echo{}
	err := Do(nsPath, func() error {
		l, err := net.Listen("tcp4", addr.String())
		if err != nil {
			return err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp4", netip.AddrPortFrom(addr.Addr(), uint16(port)).String())
		if err != nil {
			l.Close()
			return err
		}
		e.tcp, e.udp = l, u
		e.Addr = netip.AddrPortFrom(addr.Addr(), uint16(port))
		return nil
	})
	if err != nil {
		t.Fatalf("netnstest: echo server on %v in %s: %v", addr, nsPath, err)
	}
	go e.serveTCP()
	go e.serveUDP()
	t.Cleanup(func() {
		e.tcp.Close()
		e.udp.Close()
	})
	return e
}

func (e *Echo) serveTCP() {
	for {
		c, err := e.tcp.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if _, err := fmt.Fprintf(c, "%s\n", c.RemoteAddr()); err != nil {
				return
			}
			_, _ = io.Copy(c, c)
		}()
	}
}

func (e *Echo) serveUDP() {
	buf := make([]byte, 65536)
	for {
		n, from, err := e.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		reply := buf[:n]
		if string(reply) == "whoami" {
			reply = []byte(from.String())
		}
		_, _ = e.udp.WriteTo(reply, from)
	}
}

// TCPExchange connects from the namespace at nsPath to addr, sends
// payload and reads it back. It returns the client address the server
// saw.
func TCPExchange(nsPath string, addr netip.AddrPort, payload []byte) (seenAs string, err error) {
	var c net.Conn
	err = Do(nsPath, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr.String(), IOTimeout)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("dial %v: %w", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(IOTimeout))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("tcp %v: read greeting: %w", addr, err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		errc <- err
	}()
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(r, got); err != nil {
		return "", fmt.Errorf("tcp %v: read echo: %w", addr, err)
	}
	if err := <-errc; err != nil {
		return "", fmt.Errorf("tcp %v: write: %w", addr, err)
	}
	if !bytes.Equal(got, payload) {
		return "", fmt.Errorf("tcp %v: echo differs from what was sent", addr)
	}
	return strings.TrimSpace(line), nil
}

// UDPExchange sends payload from the namespace at nsPath to addr with
// the don't-fragment bit set and returns the reply. Datagrams can be lost
// while neighbours resolve, so it sends up to five times.
func UDPExchange(nsPath string, addr netip.AddrPort, payload []byte) ([]byte, error) {
	var c *net.UDPConn
	err := Do(nsPath, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), "udp")
		defer f.Close()
		// DF on every datagram, and an error instead of local
		// fragmentation if it does not fit.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO); err != nil {
			return err
		}
		sa := &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
		if err := unix.Connect(fd, sa); err != nil {
			return err
		}
		fc, err := net.FileConn(f)
		if err != nil {
			return err
		}
		c = fc.(*net.UDPConn)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("udp %v: %w", addr, err)
	}
	defer c.Close()
	buf := make([]byte, 65536)
	var last error
	for range 5 {
		if _, err := c.Write(payload); err != nil {
			return nil, fmt.Errorf("udp %v: send %d bytes: %w", addr, len(payload), err)
		}
		_ = c.SetReadDeadline(time.Now().Add(IOTimeout / 5))
		n, err := c.Read(buf)
		if err == nil {
			return buf[:n], nil
		}
		last = err
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return nil, fmt.Errorf("udp %v: %w", addr, err)
		}
	}
	return nil, fmt.Errorf("udp %v: no reply: %w", addr, last)
}

// IsUnreachable reports whether err says the destination has no route
// (the node answered with ICMP unreachable, or the local stack has no
// route).
func IsUnreachable(err error) bool {
	return errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

// UDPSend sends one datagram from the namespace at nsPath to addr and
// does not wait for any answer.
func UDPSend(nsPath string, addr netip.AddrPort, payload []byte) error {
	var c net.Conn
	err := Do(nsPath, func() error {
		var err error
		c, err = net.Dial("udp4", addr.String())
		return err
	})
	if err != nil {
		return fmt.Errorf("udp %v: %w", addr, err)
	}
	defer c.Close()
	if _, err := c.Write(payload); err != nil {
		return fmt.Errorf("udp %v: send: %w", addr, err)
	}
	return nil
}
