// Package lease holds etcd-style leases: the replicated part (which leases
// exist, their TTLs, which keys are attached) that every peer keeps in step
// through the Raft log, and the leader-only part (when each lease expires)
// that is never replicated.
//
// Only the leader decides expiry; it proposes a revoke through Raft, so all
// peers delete the attached keys at the same revision. When a peer becomes
// leader (Promote) every lease restarts its full TTL: the election must
// never make a lease expire early, which would delete keys a live client
// is still keeping alive.
//
// lease imports nothing else from barge.
package lease
