// Package conformance runs Kubernetes' conformance suite against a barge
// cluster: `make conformance` builds k8s.io/kubernetes/test/e2e from the
// module pinned in go.mod (go test -c, unchanged) and the ginkgo CLI of
// the version go.mod pins, runs the suite's [Conformance] specs with
// ginkgo in parallel ([Serial] ones last, as ginkgo orders them) against
// a lab, and counts the outcomes from ginkgo's JUnit report into
// docs/conformance.md.
//
//   - run.go: the ginkgo command line (Run), with progress;
//   - report.go: JUnit parsing, counts per SIG, the Markdown rendering.
//
// deps.go names, for the module graph only, the packages the suite's own
// test binary imports, so that go.mod and go.sum hold everything
// `go test -c k8s.io/kubernetes/test/e2e` needs.
//
// conformance imports no other package of barge.
package conformance
