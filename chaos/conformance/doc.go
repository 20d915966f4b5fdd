// Package conformance runs Kubernetes' conformance suite against a barge
// cluster: `make conformance` builds k8s.io/kubernetes/test/e2e from the
// module pinned in go.mod (go test -c, unchanged) and runs its
// [Conformance] specs with ginkgo in parallel, then counts the outcomes
// into docs/conformance.md.
//
// deps.go names, for the module graph only, the packages the suite's own
// test binary imports, so that go.mod and go.sum hold everything
// `go test -c k8s.io/kubernetes/test/e2e` needs.
package conformance
