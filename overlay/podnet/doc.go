// Package podnet wires pods into the node's network the way the CNI
// bridge plugin does for flannel: one bridge per node (barge0) holding
// the node's gateway address (the first address of its pod CIDR), and per
// pod a veth pair whose host end is a port of the bridge and whose other
// end is eth0 in the pod's network namespace, with the pod's address from
// overlay/ipam, lo up and a default route through the gateway. Attach is
// idempotent and repairs a half-wired pod; Detach frees the address. It
// also makes and removes pinned network namespaces for pods.
//
// Routing between pods of different nodes is the overlay backends' work;
// podnet only turns on IPv4 forwarding so the node routes for its pods.
//
// podnet imports overlay (addressing rules), overlay/ipam, vishvananda's
// netlink and netns, and golang.org/x/sys/unix.
package podnet
