// Package conformance runs Kubernetes' conformance suite against a barge
// cluster: `make conformance` builds k8s.io/kubernetes/test/e2e from the
// module pinned in go.mod (go test -c, unchanged) and the ginkgo CLI of
// the version go.mod pins, runs the suite's [Conformance] specs with
// ginkgo in parallel ([Serial] ones last, as ginkgo orders them) against
// a lab, and counts the outcomes from ginkgo's JUnit report into
// docs/conformance.md.
//
//   - run.go: the ginkgo command line (Run), with progress;
//   - report.go: JUnit parsing, counts per SIG, the Markdown rendering;
//   - images.sh and images/: the suite's images for real agents (agnhost
//     built from the pinned k8s.io/kubernetes/test/images/agnhost,
//     busybox, nginx, pause), pushed to the lab registry and served in
//     place of registry.k8s.io through containerd's hosts.toml.
//
// deps.go names, for the module graph only, the packages the suite's own
// test binary imports, so that go.mod and go.sum hold everything
// `go test -c k8s.io/kubernetes/test/e2e` and the agnhost build need.
//
// conformance imports no other package of barge.
package conformance
