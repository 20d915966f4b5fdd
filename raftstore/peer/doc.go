// Package peer is the server-to-server transport: one mutual-TLS port per
// peer that carries both the Raft stream (hashicorp/raft's NetworkTransport)
// and a small gRPC service that followers use to forward work only the
// leader may do (proposals, read-index confirmation, lease keep-alives,
// membership changes).
//
// Every connection starts with one byte naming its protocol, as Consul's
// RPC port does, so the two share a listener and a certificate check. Only
// certificates issued by the cluster CA to peers are accepted; the check
// itself lives in the tls.Configs built by raftstore/pki.
//
// peer imports nothing else from barge.
package peer
