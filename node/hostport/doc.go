// Package hostport maps pods' hostPorts onto the node, as the CNI portmap
// plugin does for the kubelet: a connection to HOSTIP:HOSTPORT (any of
// the node's addresses when the pod gives no hostIP) is translated to
// the pod's address and container port.
//
// The rules live in one nftables table barge owns (ip barge-hostport),
// rewritten whole from the mappings held in memory at every change in
// one atomic transaction through sigs.k8s.io/knftables, so a rerun or a
// restarted agent leaves exactly the current set. A new Map keeps what
// the table holds until its first change, so a restarting agent does not
// cut running pods off while it re-adopts them.
//
// hostport imports sigs.k8s.io/knftables and the standard library.
package hostport
