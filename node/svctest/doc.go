// Package svctest is the harness of the root tests of node/proxy,
// node/dns and node/netpol: a node made of a network namespace
// (overlay/netnstest) with its pod network (overlay/podnet bridge and
// veths, overlay/egress masquerade) set up by a helper process inside
// it, pods as network namespaces attached to it, the API server of the
// test forwarded into the node's loopback (the API server runs in the
// test process, in the root namespace; the component under test runs in
// a helper inside the node, as the agent would), small servers that say
// who answered, and builders for the API objects the tests write by hand.
//
// svctest imports overlay/netnstest, overlay/podnet, overlay/egress,
// client-go and the Kubernetes API types; never control (tests hand it a
// rest.Config from control/apitest). Only tests import it.
package svctest
