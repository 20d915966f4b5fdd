package ipip

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// IPv4 header facts the data path needs.
const (
	ipv4HeaderLen = 20
	protoICMP     = 1
	protoIPIP     = 4
	flagDF        = 0x4000
	defaultTTL    = 64
)

var (
	errShort    = errors.New("shorter than an IPv4 header")
	errVersion  = errors.New("not IPv4")
	errLength   = errors.New("header or total length inconsistent with the packet")
	errNotIPIP  = errors.New("outer protocol is not IPIP (4)")
	errFragment = errors.New("outer packet is a fragment")
)

// header is what the tunnel reads of an IPv4 header.
type header struct {
	hdrLen   int // bytes
	totalLen int
	tos      byte
	df       bool
	more     bool // more fragments
	fragOff  int
	proto    byte
	src, dst netip.Addr
}

// parseIPv4 reads the IPv4 header at the start of b and checks that its
// lengths fit inside b. It never panics on any input (see FuzzDecap).
func parseIPv4(b []byte) (header, error) {
	if len(b) < ipv4HeaderLen {
		return header{}, errShort
	}
	if b[0]>>4 != 4 {
		return header{}, errVersion
	}
	h := header{
		hdrLen:   int(b[0]&0x0f) * 4,
		tos:      b[1],
		totalLen: int(binary.BigEndian.Uint16(b[2:4])),
		proto:    b[9],
		src:      netip.AddrFrom4([4]byte(b[12:16])),
		dst:      netip.AddrFrom4([4]byte(b[16:20])),
	}
	frag := binary.BigEndian.Uint16(b[6:8])
	h.df = frag&flagDF != 0
	h.more = frag&0x2000 != 0
	h.fragOff = int(frag&0x1fff) * 8
	if h.hdrLen < ipv4HeaderLen || h.hdrLen > h.totalLen || h.totalLen > len(b) {
		return header{}, errLength
	}
	return h, nil
}

// decap checks an IPIP packet as received on the raw socket (outer
// header included) and returns the outer header and the inner packet,
// trimmed to its own total length.
func decap(b []byte) (outer, inner header, payload []byte, err error) {
	outer, err = parseIPv4(b)
	if err != nil {
		return header{}, header{}, nil, err
	}
	if outer.proto != protoIPIP {
		return header{}, header{}, nil, errNotIPIP
	}
	if outer.more || outer.fragOff != 0 {
		return header{}, header{}, nil, errFragment
	}
	rest := b[outer.hdrLen:outer.totalLen]
	inner, err = parseIPv4(rest)
	if err != nil {
		return header{}, header{}, nil, err
	}
	return outer, inner, rest[:inner.totalLen], nil
}

// putOuter writes the RFC 2003 outer header for an inner packet of
// innerLen bytes into b[:20]: protocol 4, TOS and DF copied from the
// inner header, TTL 64. The kernel (IP_HDRINCL) fills in the ID and the
// checksum.
func putOuter(b []byte, inner []byte, src, dst netip.Addr) {
	total := ipv4HeaderLen + len(inner)
	b[0] = 0x45
	b[1] = inner[1]
	binary.BigEndian.PutUint16(b[2:4], uint16(total))
	binary.BigEndian.PutUint16(b[4:6], 0)
	var frag uint16
	if binary.BigEndian.Uint16(inner[6:8])&flagDF != 0 {
		frag = flagDF
	}
	binary.BigEndian.PutUint16(b[6:8], frag)
	b[8] = defaultTTL
	b[9] = protoIPIP
	b[10], b[11] = 0, 0
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
}

// fragNeeded builds the ICMP "fragmentation needed" error (type 3,
// code 4, RFC 1191) that tells the sender of pkt to use at most mtu
// bytes, from src. It quotes the offending
// header and 8 bytes of its payload, as RFC 792 asks.
func fragNeeded(pkt []byte, src netip.Addr, mtu int) []byte {
	h, err := parseIPv4(pkt)
	if err != nil {
		return nil
	}
	quote := pkt[:min(len(pkt), h.hdrLen+8)]
	out := make([]byte, ipv4HeaderLen+8+len(quote))
	binary.BigEndian.PutUint16(out[2:4], uint16(len(out)))
	out[0] = 0x45
	out[8] = defaultTTL
	out[9] = protoICMP
	s, d := src.As4(), h.src.As4()
	copy(out[12:16], s[:])
	copy(out[16:20], d[:])
	binary.BigEndian.PutUint16(out[10:12], checksum(out[:ipv4HeaderLen]))
	icmp := out[ipv4HeaderLen:]
	icmp[0], icmp[1] = 3, 4
	binary.BigEndian.PutUint16(icmp[6:8], uint16(mtu))
	copy(icmp[8:], quote)
	binary.BigEndian.PutUint16(icmp[2:4], checksum(icmp))
	return out
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
