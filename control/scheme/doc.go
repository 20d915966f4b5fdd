// Package scheme builds the runtime.Scheme of the API server: every group
// and version barge serves, with the external k8s.io/api types doubling as
// the "internal" hub version so no conversion code exists, plus the
// defaulting functions from control/defaults.
//
// It may import k8s.io/* and control/defaults.
package scheme
