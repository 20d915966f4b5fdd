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
// Server processes are started detached (own process group, not tied to
// the caller), so `barge lab up` returns while the cluster keeps running.
//
// lab imports raftstore/pki only (and the etcd v3 client, to find the
// leader); it drives the kernel through the ip and nft commands.
package lab
