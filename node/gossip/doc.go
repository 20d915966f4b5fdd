// Package gossip is barge's member of the one hashicorp/memberlist pool
// that servers and agents share: membership and failure detection (SWIM
// with Lifeguard) for node health, and node metadata (underlay IP, pod
// CIDR, overlay mode, VTEP MAC) for the overlay, so that the data plane
// keeps converging while the control plane has no quorum.
//
// # What it holds
//
//   - Pool (Start, Join, Members, Subscribe, UpdateMeta, Leave, Shutdown):
//     one member per process. Name, bind and advertise addresses are set
//     per node, since network namespaces share one hostname.
//   - Encryption, always: memberlist's keyring with GossipVerifyIncoming
//     and GossipVerifyOutgoing, so a member without a key of the pool, or
//     a plaintext one, cannot join. The keyring file (KeyringFile, next
//     to the certificates) is a JSON list of base64 keys, primary first.
//   - Meta and its codec (EncodeMeta, DecodeMeta): a version byte, then
//     tag-length-value fields; within memberlist's 512-byte limit, which
//     EncodeMeta enforces (memberlist itself panics past it). Decoding
//     validates everything and never panics (FuzzGossipDecodeMeta).
//   - Events: join, update, leave (said goodbye) and fail (declared dead),
//     in order, none dropped, through Subscribe; Members lists alive,
//     suspect, dead and left members. memberlist reports a goodbye and a
//     failure alike, so Leave first gossips Meta.Leaving and the others
//     tell the two apart by it.
//   - Keyring rotation as `consul keyring` does it (Pool.Keyring:
//     install, use, remove, list). memberlist has no serf queries, so a
//     server sends the operation to every alive member over memberlist's
//     reliable (TCP, encrypted) user messages; each member applies it,
//     writes its keyring file atomically and answers; the server reports
//     who answered and who failed. Removing the primary key and using a
//     key that is not installed are refused.
//   - The admin gRPC service (RegisterAdmin, RemoteMembers,
//     RemoteKeyring) that `barge gossip` calls, served on the store's
//     client port through raftstore.Config.RegisterServices and limited
//     to system:masters by raftstore.RequireAdmin.
//
// # Failure detection timing
//
// barge wants a SIGKILLed agent NotReady within 5 s, and a member that
// merely paused for a second not declared dead. ProfileBarge (the
// default) halves memberlist's LAN probe interval (500 ms), probes with a
// 250 ms timeout, and keeps a suspicion multiplier of 4: the minimum
// suspicion timeout is 4 × 500 ms = 2 s, a second more than the pause it
// must survive, and falls to it once other members confirm the
// suspicion. Measured on this machine (2 cores, loopback; each member a
// separate process, killed with SIGKILL or stopped with SIGSTOP for 1 s;
// detection is SIGKILL → the observer's fail event):
//
//	barge gossip bench --members 5 --kills 10 --pauses 5 --profiles barge,local,lan
//
//	profile  members  probe         suspicion  min    p50    max    1 s pauses declared dead
//	barge    5        500ms/250ms   4x         2.60s  3.02s  3.60s  0 of 5
//	local    5        1s/200ms      3x         4.00s  5.00s  5.30s  0 of 5
//	lan      5        1s/500ms      4x         5.40s  5.88s  7.05s  0 of 5
//
//	barge gossip bench --members 3 --kills 10 --pauses 5
//	barge gossip bench --members 10 --kills 10 --pauses 5
//
//	barge    3        500ms/250ms   4x         2.52s  2.88s  3.87s  0 of 5
//	barge    10       500ms/250ms   4x         2.55s  3.07s  3.90s  0 of 5
//
// The worst case, under 4 s, leaves the node health controller a second
// to write Ready=Unknown within barge's 5 s. No test asserts a timing.
//
// gossip imports raftstore (for RequireAdmin) and nothing else of barge.
package gossip
