package svctest

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/barge-dev/barge/overlay/netnstest"
)

// ServeWho starts a TCP server on addr inside the namespace at nsPath
// that answers every connection with one line, "name client-address",
// and closes it: the tests learn which endpoint a Service picked and
// what source it saw. It stops in t.Cleanup.
func ServeWho(t testing.TB, nsPath string, addr netip.AddrPort, name string) {
	t.Helper()
	var l net.Listener
	err := netnstest.Do(nsPath, func() error {
		var err error
		l, err = net.Listen("tcp4", addr.String())
		return err
	})
	if err != nil {
		t.Fatalf("svctest: who server %s on %v: %v", name, addr, err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(netnstest.IOTimeout))
			_, _ = fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr())
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
}

// Who connects from the namespace at nsPath to addr and returns the
// answering server's name and the client address it saw.
func Who(nsPath string, addr netip.AddrPort) (name string, seenAs netip.AddrPort, err error) {
	var c net.Conn
	err = netnstest.Do(nsPath, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr.String(), netnstest.IOTimeout)
		return err
	})
	if err != nil {
		return "", netip.AddrPort{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(netnstest.IOTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("who %v: read: %w", addr, err)
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		return "", netip.AddrPort{}, fmt.Errorf("who %v: answer %q", addr, line)
	}
	seen, err := netip.ParseAddrPort(f[1])
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("who %v: answer %q: %w", addr, line, err)
	}
	return f[0], seen, nil
}

// WhoCounts makes n connections and counts the answers by server name.
func WhoCounts(nsPath string, addr netip.AddrPort, n int) (map[string]int, error) {
	counts := map[string]int{}
	for range n {
		name, _, err := Who(nsPath, addr)
		if err != nil {
			return counts, err
		}
		counts[name]++
	}
	return counts, nil
}
