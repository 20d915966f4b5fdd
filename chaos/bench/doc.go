// Package bench measures the barge store side by side with etcd, the peer
// it imitates: `barge bench store` starts a 3-member etcd cluster and a
// 3-peer barge cluster on loopback with the same certificates, drives both
// with one load generator written on go.etcd.io/etcd/client/v3 (put, range,
// compare-and-swap, watch, lease grants and keep-alives), loads a large
// key set into both to weigh memory, disk, snapshot and restart, and kills
// their leaders to time failover. The result is a Report, rendered as a
// terminal table or as docs/benchmarks.md.
//
// It owns: the cluster processes of a run (procs.go), the workloads
// (load.go, lease.go for the keep-alive row), the size section (size.go),
// percentiles (stats.go), leader-kill failover (failover.go), the machine
// description and fdatasync floor (machine.go), the orchestration (run.go)
// and the rendering of results (report.go).
//
// bench may import raftstore/pki (for the certificate file names), the etcd
// client and the standard library; it talks to both systems only through
// their binaries and the etcd v3 API, so that the comparison is fair.
// Nothing imports bench but cmd/barge.
package bench
