package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
)

// The lab's names. Interface names must fit the kernel's 15 characters;
// with a 4-character ID every one of these does.
func labID(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("lab: resolve %s: %w", dir, err)
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:])[:4], nil
}

func nsPrefix(id string) string       { return "bg" + id + "-" }
func underlayNS(id string) string     { return nsPrefix(id) + "u" }
func bridgeName(id string) string     { return "br" + id }
func rootVeth(id string) string       { return "bg" + id + "r" }
func rootVethPeer(id string) string   { return "bg" + id + "rp" }
func hostNS(id, host string) string   { return nsPrefix(id) + host }
func portName(id, host string) string { return "bg" + id + host }

// labSubnet maps the ID onto one of the 512 /24s of 198.18.0.0/15, so
// concurrent labs in different directories almost always get different
// subnets; Up refuses to start if the subnet is already routed.
func labSubnet(id string) (netip.Prefix, error) {
	v, err := strconv.ParseUint(id, 16, 16)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("lab: bad lab ID %q: %w", id, err)
	}
	idx := v % 512
	addr := netip.AddrFrom4([4]byte{198, 18 + byte(idx/256), byte(idx % 256), 0})
	return netip.PrefixFrom(addr, 24), nil
}

func hostAddr(subnet netip.Prefix, last byte) netip.Addr {
	a := subnet.Addr().As4()
	a[3] = last
	return netip.AddrFrom4(a)
}
