// Package image makes and moves container images without Docker: it
// builds OCI images from Debian packages and local files (Build, with the
// built-in busybox and nginx recipes), writes and reads docker and OCI
// archives, pushes to and lists a registry over TLS trusted by the
// cluster CA, runs Debian's docker-registry with a certificate from that
// CA (StartRegistry; with Users, htpasswd basic auth), writes containerd's registry host configuration
// (hosts.toml), and pulls, imports and lists images in a containerd
// namespace through containerd's Go client (PullWithAuth presents a
// pod's pull-secret credentials).
//
// It imports raftstore/pki (for the CA) and no other package of barge.
package image
