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
// addresses whose inner source lies in that peer's pod CIDR. The TUN
// device runs with virtio headers and TCP segmentation offload
// (wireguard-go's TUN code splits the kernel's 64 KiB super-packets and
// coalesces received segments), so the pod side crosses the user/kernel
// boundary once per 64 KiB rather than once per packet; the underlay side
// cannot be offloaded (no segmentation offload for raw sockets), which
// bounds the tunnel's throughput by the underlay's per-packet cost.
// Packets too big for the underlay get ICMP fragmentation-needed back.
//
// ipip imports overlay, vishvananda/netlink, golang.zx2c4.com/wireguard/tun,
// golang.org/x/net/ipv4 and golang.org/x/sys/unix.
package ipip
