// Package loopport reserves loopback ports for clusters started by tests
// and benchmarks, whose members must know each other's addresses before
// any of them binds.
//
// Asking the kernel for port 0 and closing the listener is a race on a
// busy machine: the same number goes out again as the source port of an
// outgoing connection, or to another test process doing the same. So a
// reservation takes ports below the kernel's ephemeral range (which
// connect never hands out), holds an exclusive flock on a file named for
// each port (which other processes using loopport respect) and checks
// that nothing listens there on TCP or UDP. The ports stay reserved until
// Release, or until the process exits.
//
// loopport imports no other barge package.
package loopport
