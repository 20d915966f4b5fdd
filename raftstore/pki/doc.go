// Package pki owns the cluster's certificate authority: it creates the CA,
// issues the server, peer, admin and user certificates signed by it, writes
// them (and kubeconfigs) to a certificate directory, and builds the
// tls.Config of every listener and client in barge from that directory.
//
// Keeping every trust decision here means the rest of the code never
// assembles a tls.Config by hand: the client port, the peer port and the
// command-line tools all get theirs from ServerTLS, PeerTLS and ClientTLS.
//
// Roles are told apart by the certificate subject, as in Kubernetes: the
// Organization is the group. Store peers carry PeerOrganization, which the
// peer port demands on both ends, so a user certificate signed by the same
// CA can reach the etcd API but never speak Raft.
//
// pki imports nothing else of barge.
package pki
