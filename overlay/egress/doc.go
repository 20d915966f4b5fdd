// Package egress holds barge's NAT rules of the pod network, flannel's:
//
//   - pod traffic leaving the cluster pod network (from this node's pod
//     CIDR to anything outside the cluster CIDR, multicast excepted)
//     leaves with the node's own address, while pod-to-pod traffic across
//     nodes keeps the pods' addresses;
//   - traffic from outside the pod network that the node forwards to a
//     pod on another node (a NodePort) leaves with the node's tunnel
//     address, so the peer answers through the overlay.
//
// The rules live in one nftables table barge owns (ip barge-overlay),
// rewritten whole by each Ensure in one atomic transaction through
// sigs.k8s.io/knftables (which drives the nft binary).
//
// egress imports sigs.k8s.io/knftables and the standard library.
package egress
