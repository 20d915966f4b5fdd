// Package hollow runs simulated nodes for tests and benchmarks, as
// Kubernetes' kubemark and kwok do: each hollow node registers a Node,
// renews its Lease as a kubelet does, and reports every pod bound to it
// Running and Ready (a Job's pods Succeeded) without running anything.
// Deleted pods are confirmed at once, as a kubelet confirms a stopped pod.
// A Ready condition another writer changed is posted again while the node
// is up, as a kubelet's status loop does.
//
// With Config.Gossip each node also runs a member of the gossip pool (role
// agent, named as the node, in-process on its own loopback port), and
// Nodes can fail one: Kill stops it as kill -9 of an agent would (gossip
// without a goodbye, no Lease, no status, no pods), Revive restarts it,
// and Pause stops everything of it for a while, as SIGSTOP would, by
// stalling its gossip transport.
//
// It may import k8s.io/* and node/gossip.
package hollow
