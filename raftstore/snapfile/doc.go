// Package snapfile owns barge's snapshot file format: the bytes written by
// `barge snapshot save`, streamed by Maintenance.Snapshot and stored by Raft
// as FSM snapshots. One format everywhere means one reader to harden and fuzz.
//
// A file is a magic string, a JSON metadata header, a stream of typed
// records (key versions, leases, members) and a SHA-256 trailer over every
// byte before it. Readers must not commit anything before Next returns
// io.EOF, which is when the checksum has been verified.
//
// snapfile imports nothing else from barge.
package snapfile
