// Package validation owns create, update and status validation of every served
// type, written against the external k8s.io/api v1 types because barge stores
// those directly and has no internal types.
//
// The rules, field paths and messages follow Kubernetes 1.33's
// pkg/apis/*/validation with the feature gates at their 1.33 defaults, so that
// clients see the errors they would see from a real cluster. Where Kubernetes
// relies on a v1 -> internal conversion (a nil *int32 becoming 0, stringData
// merged into data) the v1 value is read the way the conversion would have
// produced it, without modifying the object.
//
// Checks that Kubernetes performs outside validation (allocation of cluster IPs
// and node ports, admission plugins, quota) are not here.
//
// Imports: k8s.io/* only; no other barge package.
package validation
