// Package storetest runs in-process barge store clusters on loopback for
// tests: real Raft over mutual TLS, real gRPC, real etcd clients. It is the
// one harness every package's store tests use.
//
// storetest imports raftstore and raftstore/pki.
package storetest
