// Package plane runs the control plane of one barge server above its store
// peer: the API server on every peer, and the leader-only controllers on
// whichever peer currently leads the Raft group.
//
// It may import the other control packages, raftstore/pki, node/gossip
// (a server's member of the pool, for the node health controller) and
// k8s.io/*;
// the store is reached only through the etcd v3 endpoint and the
// leader.Leadership interface.
package plane
