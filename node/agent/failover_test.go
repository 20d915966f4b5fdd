package agent_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/barge-dev/barge/node/agent"
)

func TestFailoverDialerBadServers(t *testing.T) {
	for _, tc := range []struct {
		servers []string
		err     string
	}{
		{nil, "no API servers"},
		{[]string{"http://10.0.0.1:6443"}, `"http://10.0.0.1:6443": want https://HOST:PORT`},
		{[]string{"https://10.0.0.1"}, "want https://HOST:PORT"},
		{[]string{"https://10.0.0.1:6443", "10.0.0.2:6443"}, `"10.0.0.2:6443"`},
	} {
		if _, err := agent.NewFailoverDialer(tc.servers); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%v: %v, want an error with %q", tc.servers, err, tc.err)
		}
	}
}

// A server that stops accepting is passed over, and the one that
// answered is tried first from then on.
func TestFailoverDialer(t *testing.T) {
	var lns []net.Listener
	var servers []string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		lns = append(lns, ln)
		servers = append(servers, "https://"+ln.Addr().String())
	}
	d, err := agent.NewFailoverDialer(servers)
	if err != nil {
		t.Fatal(err)
	}
	dial := func() string {
		t.Helper()
		c, err := d.DialContext(context.Background(), "tcp", "ignored:1")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.RemoteAddr().String()
	}
	if got := dial(); got != lns[0].Addr().String() {
		t.Fatalf("first dial reached %s, want the first server %s", got, lns[0].Addr())
	}
	lns[0].Close()
	if got := dial(); got != lns[1].Addr().String() {
		t.Fatalf("with the first server gone: reached %s, want %s", got, lns[1].Addr())
	}
	lns[1].Close()
	if got := dial(); got != lns[2].Addr().String() {
		t.Fatalf("with two gone: reached %s, want %s", got, lns[2].Addr())
	}
	lns[2].Close()
	if _, err := d.DialContext(context.Background(), "tcp", "ignored:1"); err == nil || !strings.Contains(err.Error(), "no API server answers") {
		t.Fatalf("all gone: %v, want no API server answers", err)
	}
}
