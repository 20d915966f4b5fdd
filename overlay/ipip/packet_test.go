package ipip

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

func innerUDP(src, dst netip.Addr, df bool, payload int) []byte {
	p := make([]byte, 20+8+payload)
	p[0] = 0x45
	p[1] = 0x28 // a TOS the outer header must copy
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	if df {
		binary.BigEndian.PutUint16(p[6:8], flagDF)
	}
	p[8] = 64
	p[9] = 17
	s, d := src.As4(), dst.As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint16(p[10:12], checksum(p[:20]))
	return p
}

var (
	podA  = netip.MustParseAddr("10.244.1.5")
	podB  = netip.MustParseAddr("10.244.2.7")
	nodeA = netip.MustParseAddr("198.18.0.11")
	nodeB = netip.MustParseAddr("198.18.0.12")
)

func TestEncapDecap(t *testing.T) {
	for _, df := range []bool{true, false} {
		inner := innerUDP(podA, podB, df, 100)
		pkt := make([]byte, 20+len(inner))
		copy(pkt[20:], inner)
		putOuter(pkt[:20], pkt[20:], nodeA, nodeB)
		outer, in, payload, err := decap(pkt)
		if err != nil {
			t.Fatal(err)
		}
		if outer.proto != 4 || outer.src != nodeA || outer.dst != nodeB || outer.totalLen != len(pkt) || outer.tos != 0x28 || outer.df != df {
			t.Fatalf("outer header %+v (df %v)", outer, df)
		}
		if in.src != podA || in.dst != podB || !bytes.Equal(payload, inner) {
			t.Fatalf("inner %+v", in)
		}
	}
}

func TestDecapRejects(t *testing.T) {
	good := func() []byte {
		inner := innerUDP(podA, podB, true, 10)
		pkt := make([]byte, 20+len(inner))
		copy(pkt[20:], inner)
		putOuter(pkt[:20], pkt[20:], nodeA, nodeB)
		return pkt
	}
	tests := []struct {
		name string
		mut  func([]byte) []byte
		want error
	}{
		{"short", func(b []byte) []byte { return b[:10] }, errShort},
		{"IPv6 outer", func(b []byte) []byte { b[0] = 0x65; return b }, errVersion},
		{"not IPIP", func(b []byte) []byte { b[9] = 17; return b }, errNotIPIP},
		{"outer total length past the end", func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:4], 2000); return b }, errLength},
		{"header length below 20", func(b []byte) []byte { b[0] = 0x44; return b }, errLength},
		{"outer fragment", func(b []byte) []byte { binary.BigEndian.PutUint16(b[6:8], 0x2000); return b }, errFragment},
		{"inner truncated", func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:4], 30); return b[:30] }, errShort},
		{"inner length past outer", func(b []byte) []byte { binary.BigEndian.PutUint16(b[22:24], 500); return b }, errLength},
		{"inner IPv6", func(b []byte) []byte { b[20] = 0x60; return b }, errVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, _, err := decap(tt.mut(good())); err != tt.want {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// Trailing bytes after the outer total length (Ethernet padding) are
	// ignored.
	pkt := append(good(), 0, 0, 0)
	if _, _, payload, err := decap(pkt); err != nil || len(payload) != 38 {
		t.Fatalf("padded packet: %d bytes, %v", len(payload), err)
	}
}

func TestFragNeeded(t *testing.T) {
	pkt := innerUDP(podA, podB, true, 1600)
	tun := netip.MustParseAddr("10.244.2.0")
	e := fragNeeded(pkt, tun, 1480)
	h, err := parseIPv4(e)
	if err != nil {
		t.Fatal(err)
	}
	if h.proto != 1 || h.src != tun || h.dst != podA || checksum(e[:20]) != 0 {
		t.Fatalf("ICMP header %+v", h)
	}
	icmp := e[20:]
	if icmp[0] != 3 || icmp[1] != 4 || binary.BigEndian.Uint16(icmp[6:8]) != 1480 || checksum(icmp) != 0 {
		t.Fatalf("ICMP body % x", icmp[:8])
	}
	if !bytes.Equal(icmp[8:], pkt[:28]) {
		t.Fatal("ICMP does not quote the header and 8 bytes")
	}
}

func TestPeerTable(t *testing.T) {
	tab := newPeerTable(map[netip.Addr]netip.Prefix{
		nodeA: netip.MustParsePrefix("10.244.1.0/24"),
		nodeB: netip.MustParsePrefix("10.244.4.0/22"),
	})
	tests := []struct {
		dst  string
		want netip.Addr
		ok   bool
	}{
		{"10.244.1.9", nodeA, true},
		{"10.244.6.200", nodeB, true},
		{"10.244.3.1", netip.Addr{}, false},
		{"192.0.2.1", netip.Addr{}, false},
	}
	for _, tt := range tests {
		got, ok := tab.lookup(netip.MustParseAddr(tt.dst))
		if ok != tt.ok || got != tt.want {
			t.Errorf("lookup(%s) = %v, %v; want %v, %v", tt.dst, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzDecap feeds arbitrary bytes to the receive path's parser: it must
// never panic, and what it accepts must be self-consistent.
func FuzzDecap(f *testing.F) {
	inner := innerUDP(podA, podB, true, 16)
	pkt := make([]byte, 20+len(inner))
	copy(pkt[20:], inner)
	putOuter(pkt[:20], pkt[20:], nodeA, nodeB)
	f.Add(pkt)
	f.Add(pkt[:21])
	f.Add([]byte{0x4f, 0, 0, 0x3c})
	f.Fuzz(func(t *testing.T, b []byte) {
		outer, in, payload, err := decap(b)
		if err != nil {
			return
		}
		if outer.proto != protoIPIP || len(payload) != in.totalLen || outer.hdrLen+len(payload) > len(b) {
			t.Fatalf("inconsistent accept: outer %+v inner %+v payload %d of %d", outer, in, len(payload), len(b))
		}
	})
}
