package raftstore

// Version is the barge release. It is stamped into snapshot files and shown by
// `barge version` and `barge status`.
const Version = "0.1.0-dev"

// EtcdAPIVersion is the etcd server version reported to clients. etcd clients
// gate some features on it, so it names the etcd release whose API we match.
const EtcdAPIVersion = "3.5.0"
