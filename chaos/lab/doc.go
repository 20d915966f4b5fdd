// Package lab builds a multi-host barge cluster on one Linux machine out of
// network namespaces, as Mininet does, and injects the faults chaos testing
// needs: crashes (SIGKILL), pauses (SIGSTOP), and network partitions
// (nftables drops inside host namespaces).
//
// A lab owns, for its directory Dir:
//
//   - an ID, the first four hex digits of sha256(abs(Dir)); every kernel
//     object is named from it, so `Down` finds leftovers after a crash of
//     whoever brought the lab up, even without lab.json, and two labs in
//     different directories never share a name or a subnet;
//   - namespaces bg<ID>-u (the underlay, holding bridge br<ID>),
//     bg<ID>-s1… (servers) and bg<ID>-n1… (nodes), each host joined to the
//     bridge by a veth pair whose host end is eth0;
//   - one veth bg<ID>r in the root namespace, addressed .254 of the lab's
//     /24, so tests and operators reach every host without entering a
//     namespace. Its only route is the /24 on-link route: nothing the lab
//     does can send traffic off the machine;
//   - one /24 out of 198.18.0.0/15 (the benchmarking range), servers at .1…,
//     nodes at .101…;
//   - Dir/certs (pki.InitDir), Dir/data/<host>, Dir/logs/<host>.log,
//     Dir/admin.kubeconfig and Dir/lab.json, which records everything a
//     later process (another `barge lab` command) needs.
//
// With nodes (or Config.Registry) the lab also runs:
//
//   - one containerd for all nodes, in the root namespace, its config,
//     socket, root and state under Dir/containerd (CRI disabled), each
//     node's containers in containerd namespace bg<ID>-<host>, so their
//     cgroups (/sys/fs/cgroup/*/barge/bg<ID>-<host>) are found by name;
//   - the registry host bg<ID>-registry at .200: Debian's docker-registry
//     with a certificate from the lab CA for its IP, holding busybox:latest
//     (node/image's recipe) pushed at Up; containerd's hosts.toml trusts
//     it with the lab CA, and lab.json records it as "registry";
//   - on each node host, `barge agent` with a `barge certs node`
//     credential (or, with Config.TokenBootstrap, only ca.crt, the gossip
//     keyring and a bootstrap token, the credential asked for by CSR)
//     and a 1/N share of the machine as --capacity. Agents
//     enter only the host's network namespace (nsenter --net): the pod
//     network namespaces and volumes they bind-mount under their state
//     directory must be visible to containerd and runc.
//
// Servers, agents, the registry and containerd are started detached (own
// process group, not tied to the caller), so `barge lab up` returns while
// the cluster keeps running; Kill, Start, Pause and Resume act on any of
// them by name ("containerd" for the daemon). Down removes everything,
// also after every lab process was SIGKILLed: it restarts containerd to
// delete the lab's tasks, containers and snapshots through it, then kills
// leftover shims and container processes, unmounts everything under Dir,
// removes the containers' cgroups, and deletes the namespaces.
//
// Every server gossips on its address, port 7946 (`barge server
// --gossip-addr`, joining the other servers, and --pod-routes, so its
// API server reaches pods through the nodes), with a pool key made for
// the lab (`barge gossip keygen --certs`); every agent gossips on its
// node's address and joins the servers, and carries pod traffic over
// Config.Overlay (vxlan by default, or ipip). Status reports each host's
// member state as a server sees it. The node credentials' extra reads
// (EndpointSlices, NetworkPolicies, Namespaces, every pod) for the
// agents' Service proxy, DNS and NetworkPolicy come from the servers
// themselves (control/plane creates the RBAC), as in any barge cluster.
//
// lab imports raftstore/pki, node/image, node/runtime (mounts) and
// node/gossip (the admin call `barge gossip members` makes), the etcd v3
// client (to find the leader), the containerd client and client-go (node
// readiness); it
// drives the kernel through the ip, nsenter and nft commands.
package lab
