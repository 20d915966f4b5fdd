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
//   - overlay/hostgw: routes to pod CIDRs through the nodes' underlay
//     addresses, for hosts outside the pod network (barge servers);
//   - overlay/netnstest: the test harness (hosts made of network
//     namespaces, helper processes inside them).
//
// The agent learns peers from gossip and hands the whole desired set to
// Backend.SetPeers; nothing here talks to the API server or to gossip.
// Its wiring, in order:
//
//	b := vxlan.New(vxlan.Config{Logger: log}) // or ipip.New(ipip.Config{Logger: log})
//	attrs, err := b.Setup(ctx, overlay.LocalNode{Name: node, UnderlayIP: ip, PodCIDR: cidr})
//	// gossip attrs.VTEPMAC (and the mode) in the node's metadata
//	pods, err := podnet.New(ctx, podnet.Config{StateDir: dir, PodCIDR: cidr, MTU: attrs.MTU, Logger: log})
//	err = egress.Ensure(ctx, egress.Config{PodCIDR: cidr, ClusterCIDR: overlay.DefaultClusterCIDR})
//	err = b.SetPeers(ctx, peers) // again on every gossip change, with the full set
//
//	// per pod sandbox
//	path, err := podnet.CreateNetns("", sandboxID)
//	pn, err := pods.Attach(ctx, podnet.PodRef{ID: uid, Namespace: ns, Name: name}, path)
//	err = pods.Detach(ctx, uid) // then podnet.DeleteNetns(path)
//
//	// on exit: b.Close() and pods.Close(); the data path stays up for the
//	// next agent, whose Setup and SetPeers repair whatever changed.
//
// overlay and its subpackages import no other barge package; overlay
// itself imports only the standard library.
package overlay
