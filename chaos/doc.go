// Package chaos is barge's instrument for failure testing: a lab of hosts
// made from network namespaces on one Linux machine (chaos/lab), fault
// injection and workloads against a store cluster (chaos/run), and the
// checkers that judge what clients saw (chaos/check: linearizability with
// porcupine, watch completeness, convergence).
//
// chaos may import raftstore (and later control, node, overlay); nothing
// imports chaos but cmd/barge.
package chaos
