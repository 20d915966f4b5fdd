package raftstore

// Version is the barge release. It is stamped into snapshot files and shown by
// `barge version` and `barge status`.
const Version = "0.1.0-dev"

// EtcdAPIVersion is the etcd server version reported to clients. etcd clients
// gate some features on it, so it names the etcd release whose API we match.
// 3.5.13 is the first 3.5 release whose progress notifications Kubernetes
// trusts (etcd#15220): the watch hub sends one only when every watcher of
// the stream is caught up, which is that fix's guarantee. Claiming it lets
// the API server's watch cache serve consistent lists and watches.
const EtcdAPIVersion = "3.5.13"
