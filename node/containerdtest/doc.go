// Package containerdtest is the test harness for code that drives
// containerd: it starts a private containerd daemon per test (own root,
// state, socket and registry hosts directory; CRI disabled), waits until
// it answers, hands out clients, and stops it, killing whatever tasks a
// test left. RequireRoot and RequireBinary skip, or fail under
// BARGE_REQUIRE_ROOT=1, as chaos/labtest does.
//
// It imports no other package of barge.
package containerdtest
