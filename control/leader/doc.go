// Package leader runs work only while this server's store peer is the Raft
// leader: it starts the work within a moment of winning and cancels it the
// moment leadership is lost. It imports nothing of ours; the leadership
// signal comes through a two-method interface raftstore.Server satisfies.
package leader
