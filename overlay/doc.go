// Package overlay is barge's pod network, as a library the node agent
// calls: this package holds the vocabulary every part shares (the local
// node, its peers as gossip describes them, the Backend interface an
// overlay implements, and the addressing rules of a pod CIDR); the parts
// live below it:
//
//   - overlay/ipam: host-local address allocation from the node's pod
//     CIDR, persisted so it survives agent restarts;
//   - overlay/podnet: the node bridge, a veth pair per pod, pod network
//     namespaces;
//   - overlay/vxlan: the kernel VXLAN backend (flannel's model);
//   - overlay/ipip: IPIP, on the kernel's ipip device where it exists and
//     as a userspace tunnel (TUN plus a raw IPPROTO_IPIP socket) where it
//     does not;
//   - overlay/egress: masquerade of pod traffic leaving the pod network,
//     in one nftables table;
//   - overlay/netnstest: the test harness (hosts made of network
//     namespaces, helper processes inside them).
//
// The agent learns peers from gossip and hands the whole desired set to
// Backend.SetPeers; nothing here talks to the API server or to gossip.
//
// overlay and its subpackages import no other barge package; overlay
// itself imports only the standard library.
package overlay
