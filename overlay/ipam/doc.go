// Package ipam is host-local address management for one node's pod CIDR,
// as the CNI host-local plugin does it: addresses are handed out round
// robin (so a released address is not reused at once), keyed by the pod's
// sandbox ID, and kept in one JSON state file written atomically (temp
// file, fsync, rename, fsync of the directory), so a restarted agent gets
// the same answers and a crash never leaves half a file. An exclusive
// lock on the state directory keeps a second process from allocating
// beside the first.
//
// ipam imports only the standard library and golang.org/x/sys/unix.
package ipam
