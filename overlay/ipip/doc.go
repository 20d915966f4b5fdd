// Package ipip is the IPIP overlay backend (RFC 2003: an outer IPv4
// header with protocol 4 before the unchanged inner packet). Where the
// kernel has IPIP it uses the kernel's device, as Calico and flannel do:
// MTU the underlay's less 20 and per peer an onlink route to its pod CIDR
// via its underlay address. Where the kernel lacks it (CONFIG_NET_IPIP
// unset, as on barge's build machines; Setup detects this by trying to
// create the device) it runs the same encapsulation in userspace: a
// persistent TUN device carries the routes to peers' pod CIDRs, and a raw
// IPPROTO_IPIP socket sends and receives the outer packets in batches
// (recvmmsg/sendmmsg), accepting only packets from known peers' underlay
// addresses whose inner source lies in that peer's pod CIDR.
//
// ipip imports overlay, vishvananda/netlink, golang.org/x/net/ipv4 and
// golang.org/x/sys/unix.
package ipip
