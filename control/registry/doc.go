// Package registry holds the REST storage of every served resource: one
// k8s.io/apiserver generic store per resource on top of the etcd v3 API,
// the strategies that default, validate and reset fields around it, and
// the subresources Kubernetes has (status, scale, binding, eviction, log,
// finalize, token). Objects are stored as the external k8s.io/api types
// under /registry/<resource>/<namespace>/<name>.
//
// It may import k8s.io/*, control/validation, control/printers and
// control/auth; nothing here talks to the store except through the
// storage interface the RESTOptionsGetter hands out.
package registry
