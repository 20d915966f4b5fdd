// Package defaults owns the defaulting of every served type, written against the
// external k8s.io/api v1 types because barge stores those directly and has no
// internal types.
//
// It mirrors what Kubernetes 1.33 applies when a request body is decoded: the
// hand-written SetDefaults_* functions of pkg/apis/*/v1 plus the declarative
// "+default" tags of k8s.io/api, walked into nested fields the way the generated
// zz_generated.defaults.go walks them. A few normalisations that Kubernetes gets
// for free from its v1 -> internal -> v1 round trip (Secret.stringData, the
// deprecated serviceAccount alias, pod status IP lists) live here too, because
// decoding is the one place every write passes through.
//
// Values that Kubernetes fills in from the REST strategy or an admission plugin
// rather than from defaulting (clusterIP, ipFamilies, ipFamilyPolicy, nodePorts,
// namespace spec.finalizers, pod priority, default tolerations) are deliberately
// not set here: defaulting also runs on objects read back from storage, where
// those values must not be re-invented.
//
// Imports: k8s.io/* only; no other barge package.
package defaults
