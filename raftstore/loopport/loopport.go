package loopport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Reservation is a set of loopback addresses held for one owner.
type Reservation struct {
	// Addrs are 127.0.0.1:PORT, one per reserved port.
	Addrs []string
	locks []*os.File
}

// Release gives the ports back. The owner stops whatever listens on them
// first or not at all: a later reservation skips ports still bound.
func (r *Reservation) Release() {
	for _, f := range r.locks {
		f.Close() // closing the descriptor drops its flock
	}
	r.locks = nil
}

// span is the port range reservations draw from.
type span struct{ lo, hi int } // inclusive

// Reserve holds n distinct loopback ports free on TCP and UDP.
func Reserve(n int) (*Reservation, error) {
	s, err := portSpan("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(os.TempDir(), "barge-loopport")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("loopport: %w", err)
	}
	r := &Reservation{}
	// A few thousand tries is plenty even with most of the span taken;
	// running out means something is wrong with the machine, not bad luck.
	for tries := 0; len(r.Addrs) < n; tries++ {
		if tries > 4096 {
			r.Release()
			return nil, fmt.Errorf("loopport: no free port in %d-%d after %d tries", s.lo, s.hi, tries)
		}
		port := s.lo + rand.IntN(s.hi-s.lo+1)
		f, ok, err := lock(dir, port)
		if err != nil {
			r.Release()
			return nil, err
		}
		if !ok {
			continue
		}
		if !unbound(port) {
			f.Close()
			continue
		}
		r.locks = append(r.locks, f)
		r.Addrs = append(r.Addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	return r, nil
}

// TB is the part of testing.TB that Addr needs.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Addr reserves one port for the rest of the test.
func Addr(t TB) string {
	t.Helper()
	r, err := Reserve(1)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(r.Release)
	return r.Addrs[0]
}

// lock takes the flock for port without waiting; ok is false when
// another reservation holds it.
func lock(dir string, port int) (*os.File, bool, error) {
	// The lock files are never removed: unlinking one while another
	// process has it open would let two owners lock different inodes of
	// the same name.
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("loopport: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("loopport: lock port %d: %w", port, err)
	}
	return f, true, nil
}

// unbound reports whether port is free on loopback for both TCP and UDP
// (gossip binds both).
func unbound(port int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return false
	}
	ln.Close()
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// portSpan picks the range below the kernel's ephemeral ports, or above
// them when they start too low to leave room.
func portSpan(path string) (span, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return span{}, fmt.Errorf("loopport: %w", err)
	}
	s, err := parseSpan(string(raw))
	if err != nil {
		return span{}, fmt.Errorf("loopport: %s: %w", path, err)
	}
	return s, nil
}

// parseSpan turns the ephemeral range "LO\tHI" into the span to use.
// Ports under 10000 are left alone: well-known services (2379, 5000,
// 6443, 7946, 8080) live there.
func parseSpan(text string) (span, error) {
	f := strings.Fields(text)
	if len(f) != 2 {
		return span{}, fmt.Errorf("want two port numbers, got %q", strings.TrimSpace(text))
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return span{}, fmt.Errorf("not a port range: %q", strings.TrimSpace(text))
	}
	const floor, room = 10000, 2000
	switch {
	case lo-floor >= room:
		return span{floor, lo - 1}, nil
	case 65535-hi >= room:
		return span{hi + 1, 65535}, nil
	}
	return span{}, fmt.Errorf("ephemeral range %d-%d leaves fewer than %d ports outside it above %d", lo, hi, room, floor)
}
