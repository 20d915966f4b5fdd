package gossip

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestGossipMetaRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Meta
	}{
		{"server", Meta{Role: RoleServer, UnderlayIP: netip.MustParseAddr("198.18.0.1")}},
		{"vxlan agent", Meta{Role: RoleAgent, UnderlayIP: netip.MustParseAddr("198.18.0.2"),
			PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), Overlay: OverlayVXLAN, VTEPMAC: mac("02:42:ac:11:00:02")}},
		{"ipip agent", Meta{Role: RoleAgent, UnderlayIP: netip.MustParseAddr("198.18.0.3"),
			PodCIDR: netip.MustParsePrefix("10.244.2.0/24"), Overlay: OverlayIPIP}},
		{"ipv6", Meta{Role: RoleAgent, UnderlayIP: netip.MustParseAddr("fd00::1"),
			PodCIDR: netip.MustParsePrefix("fd10:244::/64"), Overlay: OverlayVXLAN}},
		{"tags and leaving", Meta{Role: RoleAgent, UnderlayIP: netip.MustParseAddr("198.18.0.4"),
			Tags: map[string]string{"version": "v0.1.0", "zone": "a", "empty": ""}, Leaving: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeMeta(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > MetaMaxSize {
				t.Fatalf("%d bytes", len(b))
			}
			got, err := DecodeMeta(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.m) {
				t.Fatalf("got %+v, want %+v", got, tc.m)
			}
			again, _ := EncodeMeta(got)
			if !slices.Equal(again, b) {
				t.Fatal("encoding is not deterministic")
			}
		})
	}
	// IPv4-mapped addresses travel as IPv4.
	b, _ := EncodeMeta(Meta{Role: RoleServer, UnderlayIP: netip.MustParseAddr("::ffff:198.18.0.9")})
	if m, _ := DecodeMeta(b); m.UnderlayIP != netip.MustParseAddr("198.18.0.9") {
		t.Fatalf("mapped address decoded as %v", m.UnderlayIP)
	}
}

func TestGossipMetaEncodeErrors(t *testing.T) {
	ip := netip.MustParseAddr("198.18.0.2")
	long := strings.Repeat("x", 200)
	many := map[string]string{}
	for i := range 5 {
		many[strings.Repeat(string(rune('a'+i)), 10)] = long
	}
	for _, tc := range []struct {
		name string
		m    Meta
		want string
	}{
		{"no role", Meta{UnderlayIP: ip}, "role is empty"},
		{"bad role", Meta{Role: "worker", UnderlayIP: ip}, `role "worker"`},
		{"no ip", Meta{Role: RoleAgent}, "underlay IP is not set"},
		{"host bits", Meta{Role: RoleAgent, UnderlayIP: ip, PodCIDR: netip.MustParsePrefix("10.244.1.7/24")}, "host bits"},
		{"bad overlay", Meta{Role: RoleAgent, UnderlayIP: ip, Overlay: "gre"}, `overlay mode "gre"`},
		{"mac without vxlan", Meta{Role: RoleAgent, UnderlayIP: ip, Overlay: OverlayIPIP, VTEPMAC: mac("02:00:00:00:00:01")}, "only vxlan"},
		{"long mac", Meta{Role: RoleAgent, UnderlayIP: ip, Overlay: OverlayVXLAN, VTEPMAC: mac("02:00:00:00:00:00:00:01")}, "want 6 bytes"},
		{"empty tag key", Meta{Role: RoleAgent, UnderlayIP: ip, Tags: map[string]string{"": "x"}}, "empty key"},
		{"tag too long", Meta{Role: RoleAgent, UnderlayIP: ip, Tags: map[string]string{"k": strings.Repeat("v", 256)}}, "at most 255"},
		{"tag pair too long", Meta{Role: RoleAgent, UnderlayIP: ip, Tags: map[string]string{long: long}}, "add up to"},
		{"over 512 bytes", Meta{Role: RoleAgent, UnderlayIP: ip, Tags: many}, "more than memberlist's limit of 512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeMeta(tc.m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("encoded %d bytes, error %v; want one mentioning %q", len(b), err, tc.want)
			}
		})
	}
}

func TestGossipMetaDecodeErrors(t *testing.T) {
	good, err := EncodeMeta(Meta{Role: RoleAgent, UnderlayIP: netip.MustParseAddr("198.18.0.2"),
		PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), Overlay: OverlayVXLAN, VTEPMAC: mac("02:00:00:00:00:01")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"too big", make([]byte, 513), "more than the limit"},
		{"version", []byte{2, tagRole, 1, 1}, "format version 2"},
		{"truncated header", []byte{1, tagRole}, "truncated"},
		{"truncated value", []byte{1, tagRole, 5, 1}, "says 5 bytes, only 1 remain"},
		{"no role", []byte{1, tagIP, 4, 10, 0, 0, 1}, "no role"},
		{"no ip", []byte{1, tagRole, 1, 1}, "no underlay IP"},
		{"unknown role", []byte{1, tagRole, 1, 9}, "unknown role 9"},
		{"bad ip length", []byte{1, tagRole, 1, 1, tagIP, 3, 1, 2, 3}, "want 4 or 16 bytes"},
		{"repeated", []byte{1, tagRole, 1, 1, tagRole, 1, 1}, "out of order or repeated"},
		{"out of order", []byte{1, tagIP, 4, 10, 0, 0, 1, tagRole, 1, 1}, "out of order"},
		{"prefix too long", []byte{1, tagRole, 1, 2, tagIP, 4, 10, 0, 0, 1, tagPodCIDR, 5, 33, 10, 244, 0, 0}, "prefix length 33"},
		{"host bits", []byte{1, tagRole, 1, 2, tagIP, 4, 10, 0, 0, 1, tagPodCIDR, 5, 24, 10, 244, 0, 9}, "host bits"},
		{"unknown overlay", []byte{1, tagRole, 1, 2, tagIP, 4, 10, 0, 0, 1, tagOverlay, 1, 7}, "unknown overlay mode 7"},
		{"short mac", []byte{1, tagRole, 1, 2, tagIP, 4, 10, 0, 0, 1, tagOverlay, 1, 1, tagVTEPMAC, 2, 1, 2}, "want 6 bytes"},
		{"mac without vxlan", []byte{1, tagRole, 1, 2, tagIP, 4, 10, 0, 0, 1, tagVTEPMAC, 6, 2, 0, 0, 0, 0, 1}, "only vxlan"},
		{"tag key past end", []byte{1, tagRole, 1, 2, tagIP, 4, 10, 0, 0, 1, tagTag, 2, 5, 'a'}, "key length runs past"},
		{"duplicate tag", []byte{1, tagRole, 1, 2, tagIP, 4, 10, 0, 0, 1, tagTag, 2, 1, 'a', tagTag, 2, 1, 'a'}, `tag "a" repeated`},
		{"leaving with value", []byte{1, tagRole, 1, 2, tagIP, 4, 10, 0, 0, 1, tagLeaving, 1, 1}, "want no value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeMeta(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decoded %+v, error %v; want one mentioning %q", m, err, tc.want)
			}
		})
	}
	// A field a newer member added is skipped.
	newer := append(append([]byte(nil), good...), 200, 3, 'n', 'e', 'w')
	if _, err := DecodeMeta(newer); err != nil {
		t.Fatalf("unknown trailing field: %v", err)
	}
}

// FuzzGossipDecodeMeta: metadata comes from the network, so no input may
// panic, and whatever decodes must encode back to something that decodes
// to the same.
func FuzzGossipDecodeMeta(f *testing.F) {
	for _, m := range []Meta{
		{Role: RoleServer, UnderlayIP: netip.MustParseAddr("198.18.0.1")},
		{Role: RoleAgent, UnderlayIP: netip.MustParseAddr("fd00::2"), PodCIDR: netip.MustParsePrefix("10.244.3.0/24"),
			Overlay: OverlayVXLAN, VTEPMAC: mac("02:00:00:00:00:03"), Tags: map[string]string{"v": "1"}, Leaving: true},
	} {
		b, err := EncodeMeta(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		again, err := EncodeMeta(m)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", m, err)
		}
		m2, err := DecodeMeta(again)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encoding changed %+v into %+v (%v)", m, m2, err)
		}
	})
}

func TestGossipKeyringFile(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := newKey(t), newKey(t)
	path := filepath.Join(dir, KeyringFile)
	kb1, _ := ParseKey(k1)
	kb2, _ := ParseKey(k2)
	if err := WriteKeyring(path, [][]byte{kb2, kb1}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("keyring mode %v", fi.Mode())
	}
	keys, err := ReadKeyring(path)
	if err != nil || len(keys) != 2 || EncodeKey(keys[0]) != k2 {
		t.Fatalf("read back %v %v", keys, err)
	}
	// A bare key, as consul keygen prints it.
	bare := filepath.Join(dir, "bare")
	os.WriteFile(bare, []byte(k1+"\n"), 0o600)
	if keys, err := ReadKeyring(bare); err != nil || len(keys) != 1 || EncodeKey(keys[0]) != k1 {
		t.Fatalf("bare key: %v %v", keys, err)
	}

	for _, tc := range []struct{ name, data, want string }{
		{"empty list", "[]", "no keys"},
		{"empty file", "", "no keys"},
		{"bad json", `["x"`, "JSON list"},
		{"not base64", `["%%%"]`, "key 1: gossip key"},
		{"wrong size", `["` + EncodeKey([]byte("short")) + `"]`, "16, 24 or 32"},
		{"duplicate", `["` + k1 + `","` + k1 + `"]`, "listed twice"},
	} {
		p := filepath.Join(dir, tc.name)
		os.WriteFile(p, []byte(tc.data), 0o600)
		if _, err := ReadKeyring(p); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file and %q", tc.name, err, tc.want)
		}
	}
	if err := WriteKeyring(path, nil); err == nil {
		t.Error("wrote an empty keyring")
	}

	// InitKeyring creates once and never replaces.
	idir := t.TempDir()
	p1, created, err := InitKeyring(idir)
	if err != nil || !created {
		t.Fatalf("init: %v %v", created, err)
	}
	before, _ := os.ReadFile(p1)
	if _, created, err := InitKeyring(idir); err != nil || created {
		t.Fatalf("second init: created=%v %v", created, err)
	}
	after, _ := os.ReadFile(p1)
	if string(before) != string(after) {
		t.Fatal("InitKeyring replaced an existing keyring")
	}
}
