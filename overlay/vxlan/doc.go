// Package vxlan is the kernel VXLAN overlay backend, flannel's model: one
// VXLAN device per node (VNI and UDP port configurable, learning off, MTU
// the underlay's less 50, tx checksum offload off), holding the node's
// tunnel address (its pod CIDR's network address, /32); and per peer a
// permanent neighbour entry (the peer's tunnel address → the peer's VTEP
// MAC), a forwarding-database entry (that MAC → the peer's underlay IP)
// and an onlink route to the peer's pod CIDR through its tunnel address.
// No multicast, no learning: every entry comes from the peer set the agent
// learns by gossip, and SetPeers removes whatever else it finds.
//
// The VTEP MAC is derived from the node name, so it is the same after
// every restart and the MAC in peers' gossip records stays valid.
//
// vxlan imports overlay, vishvananda/netlink and golang.org/x/sys/unix.
package vxlan
