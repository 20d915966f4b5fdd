// Package netpol enforces NetworkPolicy (networking.k8s.io/v1) for the
// pods of one node in nftables, from NetworkPolicy, Pod and Namespace
// informers. Kubernetes has no upstream enforcer to reuse (it is the
// network plugin's job: Calico, Cilium, kube-network-policies), so this
// is barge's own, on sigs.k8s.io/knftables.
//
// The ruleset, table "ip barge-netpol":
//
//	chain forward { type filter hook forward priority filter - 5
//	    ct state established,related accept   # policies judge new connections
//	    ip saddr vmap @egress                 # isolated local pod → its egress chain
//	    ip daddr vmap @ingress                # isolated local pod → its ingress chain
//	}
//	map ingress { ipv4_addr : verdict }       # pod IP → jump ingress-<IP>
//	chain ingress-<IP> { <peer> <ports> return ...; reject }
//
// A pod is in a map only when some policy isolates it in that direction;
// its chain returns for each allowed peer and port (so the other
// direction is still checked) and rejects the rest (ICMP admin-prohibited: a denied connection fails at
// once rather than hanging). Peers are pod IPs
// resolved from podSelector/namespaceSelector, or ipBlock CIDRs with
// their except ranges; named ports resolve against the pod that owns
// them (the local pod for ingress, each destination pod for egress);
// endPort gives a range.
//
// Only forwarded traffic is judged: the node's own traffic to its pods
// (output hook; probes) and pods' traffic to the node itself (input
// hook; the node-local DNS) stay allowed, as Kubernetes requires of the
// first. Bridged pod-to-pod traffic reaches the forward hook because
// net.bridge.bridge-nf-call-iptables is set in the node's namespace. The
// hook sees addresses after kube-proxy's DNAT (Service traffic is judged
// by the endpoint it reaches) and before masquerade.
//
// Updates are incremental: each sync computes the desired chains and map
// elements and the transaction touches only those that changed; the
// first sync replaces the whole table atomically (a restarted agent
// leaves exactly one copy). Changes are coalesced and synced at once,
// well within a second.
//
// netpol imports knftables, client-go and the Kubernetes API types; no
// barge package.
package netpol
