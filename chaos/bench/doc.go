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
// `barge bench control` compares the same upstream control plane on two
// stores: three barge servers (Raft store, scheduler and controllers on the
// Raft leader) against three etcd members under three
// `barge server --etcd-servers` (Lease election), each with `barge hollow`
// nodes, all real processes on loopback. It owns: the two setups and their
// readiness (control.go), the pods, Deployment, mutating-call and memory
// rows (controlload.go), the kill series and where its time goes, read from
// the new leader's log (controlfailover.go), the orchestration
// (controlrun.go) and the rendering, ratios and goals (controlreport.go),
// which becomes the "Control plane" section of docs/benchmarks.md.
//
// bench may import raftstore/pki (for the certificate file names), the etcd
// client, client-go and k8s.io/api (the control bench's client) and the
// standard library; it talks to the systems only through their binaries,
// the etcd v3 API and the Kubernetes API, so that the comparison is fair.
// Nothing imports bench but cmd/barge.
package bench
