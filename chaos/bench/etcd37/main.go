// Command etcd37 is etcd 3.7 for `barge bench store`: the upstream etcd
// server's own main (go.etcd.io/etcd/server/v3/etcdmain, which runs
// go.etcd.io/etcd/server/v3/embed) built from the module version barge
// pins, so that the bench can run the newest etcd beside Debian's 3.4
// with the same command line. It is not part of the barge binary:
// `make bench` builds it into bin/etcd37.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
