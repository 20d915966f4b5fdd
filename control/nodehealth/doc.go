// Package nodehealth is barge's own leader-only controller that turns the
// gossip pool's view of its agents into Node conditions. Kubernetes has no
// gossip, so upstream offers nothing to reuse here; everything after the
// condition is upstream's: the node lifecycle controller taints a node
// whose Ready is Unknown node.kubernetes.io/unreachable:NoExecute, and the
// taint-eviction controller deletes its pods once their toleration runs
// out.
//
// # What it decides
//
//   - A member of role agent whose name is a Node's name is that node's
//     member. Nodes without one (hollow nodes without gossip, agents
//     started without it) are left to the node lifecycle controller and
//     their Lease, its fallback.
//   - Declared dead (gossip's fail event): Ready becomes Unknown with
//     reason NodeGossipDead, a message naming the member, its address,
//     and when this server saw it die. Left (a graceful leave, as an
//     agent that shuts down says goodbye): Ready becomes Unknown as well,
//     reason NodeGossipLeft: a node that left runs none of its pods, and
//     with False the not-ready taint would say the agent is there and
//     reports a problem, which it no longer does. Only a Ready that is
//     True is overwritten: False and Unknown already lead to a taint, and
//     each death is written once per term, so an agent that reports
//     Ready again while gossip still counts it dead (gossip cut off, API
//     reachable) is believed, and the Lease decides from there.
//   - Alive again: nothing is written. Ready=True is the agent's claim
//     that its runtime and network work, which gossip alone cannot tell:
//     a member proves only that its gossip loop runs. The agent sees its
//     Node's Ready is not what it reports and posts its own status, as a
//     kubelet does; then the node lifecycle controller lifts the taint.
//   - Writes go through the term's fenced client: the store refuses one
//     from a server that no longer leads.
//
// # Timing, out of the box
//
// kill → gossip fail event: 2.5–4 s (node/gossip, ProfileBarge) → this
// write: milliseconds → unreachable taint: within the node lifecycle
// controller's monitor period (controllers.DefaultNodeMonitorPeriod, 1 s)
// → eviction after the pods' default toleration
// (apiserver.DefaultUnreachableToleration, 5 s) → replacements scheduled
// and started elsewhere. A member paused for a second is suspected but
// refutes before the 2 s minimum suspicion timeout and is never declared
// dead. All are flags of `barge server`.
//
// nodehealth may import k8s.io/* and node/gossip (the pool's types).
package nodehealth
