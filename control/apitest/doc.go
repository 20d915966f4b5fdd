// Package apitest is the shared test harness for the API server: an
// in-process store cluster (raftstore/storetest) with a control plane on
// every peer, and client-go configurations for the admin or any user the
// cluster CA vouches for; with Options.Gossip, a gossip pool of the
// servers that hollow nodes (node/hollow) can join.
package apitest
