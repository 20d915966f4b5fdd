// Package check judges what clients of the barge store saw during a chaos
// run. The store is etcd-compatible, so the checks are phrased in terms of
// what any etcd client may rely on:
//
//   - CheckLinearizable treats every key as an independent register and asks
//     porcupine whether the recorded gets, puts and compare-and-swaps could
//     have happened in some order consistent with real time. Operations whose
//     outcome the client never learned (timeouts, lost connections) may or
//     may not have taken effect, and are checked as such.
//   - CheckWatch compares what one watcher received, across its reconnects,
//     with the authoritative event list: nothing lost, repeated, reordered
//     or invented.
//   - CheckAcknowledged asserts that every write the store acknowledged is
//     in that authoritative list.
//
// Histories are recorded with History while the run is under way. The
// package imports nothing else of barge, so it can judge histories recorded
// by any harness.
package check
