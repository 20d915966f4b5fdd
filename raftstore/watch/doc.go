// Package watch fans committed changes out to watchers without ever
// blocking the apply path.
//
// A watcher is either synced (it has seen every revision the hub was told
// about, and new events are pushed to it as they are applied) or unsynced
// (it is behind: it started from a past revision, or its stream was too slow
// to take an event). Unsynced watchers are caught up from the store's
// history by a background loop and rejoin the synced set once current.
// Every watcher remembers the next revision it needs, so an event is never
// delivered twice or out of order, whichever path delivers it.
//
// watch imports raftstore/mvcc for events and history.
package watch
