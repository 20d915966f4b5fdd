// Package egress masquerades pod traffic that leaves the cluster pod
// network: packets from this node's pod CIDR to any address outside the
// cluster CIDR (and not multicast) leave with the node's own address, as
// flannel's --ip-masq does, while pod-to-pod traffic across nodes keeps
// the pods' addresses. The rules live in one nftables table that barge
// owns (ip barge-overlay), rewritten whole by each Ensure in one atomic
// transaction, through sigs.k8s.io/knftables (which drives the nft
// binary).
//
// egress imports sigs.k8s.io/knftables and the standard library.
package egress
