// Package printers turns stored objects into metav1.Table, the form the API
// server answers with when kubectl asks for `application/json;as=Table`. It
// owns the per-resource column definitions and cell formatting that real
// Kubernetes 1.33 uses (pkg/printers/internalversion), reimplemented against
// the external k8s.io/api v1 types barge stores, so `kubectl get` and
// `kubectl get -o wide` print the same columns and values as against a
// Kubernetes cluster.
//
// The API server side always fills the wide (priority 1) cells; kubectl hides
// them unless asked for `-o wide`, exactly as with Kubernetes.
//
// printers imports k8s.io/* modules only and no other barge package, so any
// registry can use it without import cycles.
package printers
