// Package controllers holds the control loops that run on the Raft leader
// only (started by control/leader): today the namespace lifecycle (empty a
// terminating namespace, then finalize it) and the default service account
// of every namespace. They talk to the API server through client-go like
// any other client.
//
// It may import k8s.io/* only.
package controllers
