// Package run drives a chaos run against a store cluster in a lab:
// concurrent clients (put, get, compare-and-swap, lease-attached puts,
// watches) record what they saw, faults are injected on a schedule derived
// from a seed, and after healing the recorded history is judged by
// chaos/check (linearizability, watch completeness, acknowledged writes)
// and the peers are compared by HashKV. The result is a Report.
//
// run imports chaos/check and raftstore/pki; it reaches the lab through the
// small Lab interface, which chaos/lab implements.
package run
