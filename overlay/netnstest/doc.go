// Package netnstest is the harness of overlay's root tests: it applies
// the project's rule for tests that need root (skip when not root, fail
// when BARGE_REQUIRE_ROOT=1), builds test "hosts" out of network
// namespaces joined by a bridge in an underlay namespace (198.18.x.y
// addresses, as chaos/lab does), runs code inside a namespace on a locked
// OS thread, and starts helper processes — the test binary itself,
// re-executed inside a host's namespace — that play the node agent, so
// TUN devices, raw sockets, nft and every goroutine of the code under test
// live in that namespace as they would on a real node.
//
// Every name carries a random per-test prefix, so tests and packages run
// in parallel without colliding, and every namespace, helper and link is
// removed in t.Cleanup, also when the test fails.
//
// netnstest imports overlay/podnet (to make namespaces), vishvananda's
// netlink and netns, and the standard library. Only tests import it.
package netnstest
