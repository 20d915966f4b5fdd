package loopport

import (
	"net"
	"strconv"
	"testing"
)

func TestParseSpan(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    span
		wantErr bool
	}{
		{in: "32768\t60999\n", want: span{10000, 32767}},
		{in: "1024 65000", wantErr: true},
		{in: "1024 40000", want: span{40001, 65535}},
		{in: "11000 64000", wantErr: true},
		{in: "11000 60000", want: span{60001, 65535}},
		{in: "", wantErr: true},
		{in: "a b", wantErr: true},
		{in: "5 3", wantErr: true},
	} {
		got, err := parseSpan(tc.in)
		if (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
			t.Errorf("parseSpan(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestReserveExcludes checks the promises a cluster relies on: ports are
// distinct, outside the ephemeral range, not handed out twice while held,
// and skipped while something listens on them.
func TestReserveExcludes(t *testing.T) {
	s, err := portSpan("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Reserve(200)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	held := map[string]bool{}
	for _, addr := range a.Addrs {
		if held[addr] {
			t.Fatalf("%s reserved twice", addr)
		}
		held[addr] = true
		_, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		if port < s.lo || port > s.hi {
			t.Fatalf("%s outside %d-%d", addr, s.lo, s.hi)
		}
	}
	// Bind one reserved port, release the set: the next reservations
	// may take every released port except the bound one.
	ln, err := net.Listen("tcp4", a.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := Reserve(200)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	for _, addr := range b.Addrs {
		if held[addr] {
			t.Fatalf("%s handed out while reserved", addr)
		}
	}
	a.Release()
	for range 50 {
		c, err := Reserve(100)
		if err != nil {
			t.Fatal(err)
		}
		for _, addr := range c.Addrs {
			if addr == a.Addrs[0] {
				t.Fatalf("%s handed out while bound", addr)
			}
		}
		c.Release()
	}
}
