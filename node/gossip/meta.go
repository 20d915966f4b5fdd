package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/hashicorp/memberlist"
)

// Role is what a member of the pool is.
type Role string

const (
	RoleServer Role = "server"
	RoleAgent  Role = "agent"
)

// OverlayMode is the pod overlay a node's data plane speaks.
type OverlayMode string

const (
	OverlayNone  OverlayMode = "" // servers, and agents before their overlay is up
	OverlayVXLAN OverlayMode = "vxlan"
	OverlayIPIP  OverlayMode = "ipip"
)

// MetaMaxSize is memberlist's limit on a node's metadata. memberlist
// panics on larger metadata, so EncodeMeta refuses it first.
const MetaMaxSize = memberlist.MetaMaxSize

// metaVersion is the format of the encoding below. A decoder refuses
// other versions: a new format that old members cannot read must change
// it, while new optional fields only need a new field tag, which old
// decoders skip.
const metaVersion = 1

// Meta is what a member tells the pool about itself by gossip, so that
// every node can program its overlay towards the others without asking
// the API server.
type Meta struct {
	Role Role
	// UnderlayIP is the address overlay packets to this node go to.
	UnderlayIP netip.Addr
	// PodCIDR is the node's pod subnet (agents; empty for servers).
	PodCIDR netip.Prefix
	// Overlay is the encapsulation the node expects (agents).
	Overlay OverlayMode
	// VTEPMAC is the MAC address of the node's VXLAN device (vxlan only).
	VTEPMAC net.HardwareAddr
	// Tags are free-form short strings, e.g. the barge version, each key
	// and value at most 255 bytes; the whole encoding must still fit in
	// MetaMaxSize.
	Tags map[string]string
	// Leaving is set by Pool.Leave just before the member says goodbye.
	// memberlist's leave notification does not say whether a member left
	// or failed, so the members tell by this.
	Leaving bool
}

// Field tags of the encoding. Each field is tag, length, value; fields are
// written in tag order, at most once each.
const (
	tagRole    = 1
	tagIP      = 2
	tagPodCIDR = 3
	tagOverlay = 4
	tagVTEPMAC = 5
	tagTag     = 6 // may repeat: one per Tags entry, sorted by key
	tagLeaving = 7 // no value
)

const (
	roleServerByte   = 1
	roleAgentByte    = 2
	overlayVXLANByte = 1
	overlayIPIPByte  = 2
)

// Validate reports what is wrong with m, naming the field.
func (m Meta) Validate() error {
	var errs []error
	switch m.Role {
	case RoleServer, RoleAgent:
	case "":
		errs = append(errs, errors.New("role is empty: want server or agent"))
	default:
		errs = append(errs, fmt.Errorf("role %q: want server or agent", m.Role))
	}
	if !m.UnderlayIP.IsValid() {
		errs = append(errs, errors.New("underlay IP is not set"))
	} else if m.UnderlayIP.Zone() != "" {
		errs = append(errs, fmt.Errorf("underlay IP %s has a zone, which gossip cannot carry", m.UnderlayIP))
	}
	if m.PodCIDR.IsValid() {
		if m.PodCIDR.Masked() != m.PodCIDR {
			errs = append(errs, fmt.Errorf("pod CIDR %s has host bits set (the subnet is %s)", m.PodCIDR, m.PodCIDR.Masked()))
		}
		if m.PodCIDR.Addr().Zone() != "" {
			errs = append(errs, fmt.Errorf("pod CIDR %s has a zone", m.PodCIDR))
		}
	}
	switch m.Overlay {
	case OverlayNone, OverlayVXLAN, OverlayIPIP:
	default:
		errs = append(errs, fmt.Errorf("overlay mode %q: want vxlan or ipip", m.Overlay))
	}
	if len(m.VTEPMAC) != 0 {
		if len(m.VTEPMAC) != 6 {
			errs = append(errs, fmt.Errorf("VTEP MAC %s: want 6 bytes, got %d", m.VTEPMAC, len(m.VTEPMAC)))
		}
		if m.Overlay != OverlayVXLAN {
			errs = append(errs, fmt.Errorf("VTEP MAC %s given for overlay mode %q: only vxlan has one", m.VTEPMAC, m.Overlay))
		}
	}
	for k, v := range m.Tags {
		if k == "" {
			errs = append(errs, errors.New("tag with an empty key"))
		}
		if len(k) > 255 {
			errs = append(errs, fmt.Errorf("tag key %.20q...: %d bytes, at most 255", k, len(k)))
		}
		if len(v) > 255 {
			errs = append(errs, fmt.Errorf("tag %q: value of %d bytes, at most 255", k, len(v)))
		}
	}
	return errors.Join(errs...)
}

// EncodeMeta returns the wire form of m: a version byte, then
// tag-length-value fields. It refuses invalid metadata and anything that
// does not fit in MetaMaxSize bytes.
func EncodeMeta(m Meta) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("gossip metadata: %w", err)
	}
	b := []byte{metaVersion}
	field := func(tag byte, v []byte) { b = append(append(b, tag, byte(len(v))), v...) }
	switch m.Role {
	case RoleServer:
		field(tagRole, []byte{roleServerByte})
	case RoleAgent:
		field(tagRole, []byte{roleAgentByte})
	}
	field(tagIP, addrBytes(m.UnderlayIP))
	if m.PodCIDR.IsValid() {
		field(tagPodCIDR, append([]byte{byte(m.PodCIDR.Bits())}, addrBytes(m.PodCIDR.Addr())...))
	}
	switch m.Overlay {
	case OverlayVXLAN:
		field(tagOverlay, []byte{overlayVXLANByte})
	case OverlayIPIP:
		field(tagOverlay, []byte{overlayIPIPByte})
	}
	if len(m.VTEPMAC) != 0 {
		field(tagVTEPMAC, m.VTEPMAC)
	}
	keys := make([]string, 0, len(m.Tags))
	for k := range m.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m.Tags[k]
		// A tag's value is key length, key, value: the field length byte
		// would not hold two 255-byte strings, so the value is capped by
		// what is left.
		kv := append(append([]byte{byte(len(k))}, k...), v...)
		if len(kv) > 255 {
			return nil, fmt.Errorf("gossip metadata: tag %q: key and value add up to %d bytes, at most 254", k, len(kv)-1)
		}
		field(tagTag, kv)
	}
	if m.Leaving {
		field(tagLeaving, nil)
	}
	if len(b) > MetaMaxSize {
		return nil, fmt.Errorf("gossip metadata: encodes to %d bytes, more than memberlist's limit of %d (shorten the tags)", len(b), MetaMaxSize)
	}
	return b, nil
}

// addrBytes is 4 bytes for IPv4 (also IPv4-mapped IPv6) and 16 for IPv6.
func addrBytes(a netip.Addr) []byte {
	a = a.Unmap()
	s := a.AsSlice()
	return s
}

// DecodeMeta parses and validates metadata gossiped by another member.
// Errors say which byte or field is wrong; it never panics.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) == 0 {
		return m, errors.New("gossip metadata is empty")
	}
	if len(b) > MetaMaxSize {
		return m, fmt.Errorf("gossip metadata is %d bytes, more than the limit of %d", len(b), MetaMaxSize)
	}
	if b[0] != metaVersion {
		return m, fmt.Errorf("gossip metadata format version %d: this member reads version %d", b[0], metaVersion)
	}
	seen := map[byte]bool{}
	lastTag := byte(0)
	for off := 1; off < len(b); {
		if off+2 > len(b) {
			return m, fmt.Errorf("gossip metadata: field at byte %d is truncated (no length)", off)
		}
		tag, n := b[off], int(b[off+1])
		if off+2+n > len(b) {
			return m, fmt.Errorf("gossip metadata: field %d at byte %d says %d bytes, only %d remain", tag, off, n, len(b)-off-2)
		}
		v := b[off+2 : off+2+n]
		if tag < lastTag || (seen[tag] && tag != tagTag) {
			return m, fmt.Errorf("gossip metadata: field %d at byte %d is out of order or repeated", tag, off)
		}
		seen[tag], lastTag = true, tag
		if err := m.decodeField(tag, v); err != nil {
			return m, fmt.Errorf("gossip metadata: field %d at byte %d: %w", tag, off, err)
		}
		off += 2 + n
	}
	if !seen[tagRole] {
		return m, errors.New("gossip metadata has no role")
	}
	if !seen[tagIP] {
		return m, errors.New("gossip metadata has no underlay IP")
	}
	if err := m.Validate(); err != nil {
		return m, fmt.Errorf("gossip metadata: %w", err)
	}
	return m, nil
}

func (m *Meta) decodeField(tag byte, v []byte) error {
	switch tag {
	case tagRole:
		if len(v) != 1 {
			return fmt.Errorf("role: want 1 byte, got %d", len(v))
		}
		switch v[0] {
		case roleServerByte:
			m.Role = RoleServer
		case roleAgentByte:
			m.Role = RoleAgent
		default:
			return fmt.Errorf("unknown role %d", v[0])
		}
	case tagIP:
		a, ok := netip.AddrFromSlice(v)
		if !ok {
			return fmt.Errorf("underlay IP: want 4 or 16 bytes, got %d", len(v))
		}
		m.UnderlayIP = a.Unmap()
	case tagPodCIDR:
		if len(v) != 5 && len(v) != 17 {
			return fmt.Errorf("pod CIDR: want 5 or 17 bytes, got %d", len(v))
		}
		a, _ := netip.AddrFromSlice(v[1:])
		bits := int(v[0])
		if bits > a.BitLen() {
			return fmt.Errorf("pod CIDR: prefix length %d is longer than the %d-bit address", bits, a.BitLen())
		}
		m.PodCIDR = netip.PrefixFrom(a, bits)
	case tagOverlay:
		if len(v) != 1 {
			return fmt.Errorf("overlay mode: want 1 byte, got %d", len(v))
		}
		switch v[0] {
		case overlayVXLANByte:
			m.Overlay = OverlayVXLAN
		case overlayIPIPByte:
			m.Overlay = OverlayIPIP
		default:
			return fmt.Errorf("unknown overlay mode %d", v[0])
		}
	case tagVTEPMAC:
		if len(v) != 6 {
			return fmt.Errorf("VTEP MAC: want 6 bytes, got %d", len(v))
		}
		m.VTEPMAC = net.HardwareAddr(bytes.Clone(v))
	case tagTag:
		if len(v) < 1 || int(v[0]) > len(v)-1 {
			return errors.New("tag: key length runs past the field")
		}
		k, val := string(v[1:1+int(v[0])]), string(v[1+int(v[0]):])
		if m.Tags == nil {
			m.Tags = map[string]string{}
		}
		if _, dup := m.Tags[k]; dup {
			return fmt.Errorf("tag %q repeated", k)
		}
		m.Tags[k] = val
	case tagLeaving:
		if len(v) != 0 {
			return fmt.Errorf("leaving flag: want no value, got %d bytes", len(v))
		}
		m.Leaving = true
	default:
		// A newer member's optional field: skipped, so that adding one
		// does not need every member upgraded first.
	}
	return nil
}
