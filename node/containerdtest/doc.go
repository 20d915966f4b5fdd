// Package containerdtest is the test harness for code that drives
// containerd: it starts a private containerd daemon per test (own root,
// state, socket and registry hosts directory; CRI disabled), waits until
// it answers, hands out clients, and stops it, killing whatever tasks a
// test left. Down and Up stop and restart the daemon alone, as an
// operator's restart of containerd does, with the shims (and so the
// containers) running on. RequireRoot and RequireBinary skip, or fail under
// BARGE_REQUIRE_ROOT=1, as chaos/labtest does.
//
// It imports no other package of barge.
package containerdtest
