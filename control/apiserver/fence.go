package apiserver

import (
	"net/http"
	"strconv"

	genericapiserver "k8s.io/apiserver/pkg/server"

	"google.golang.org/grpc/metadata"
)

// FenceHeader carries the Raft term a leader-only component's leadership
// began in. The API server hands it to the store with every storage call
// the request makes (as the gRPC metadata FenceMetadata), and the store
// applies such a write only from a log entry of that term: a write sent by
// a deposed leader never lands once the new leader has committed.
const FenceHeader = "X-Barge-Fence-Term"

// FenceMetadata is raftstore.FenceMetadataKey, the store's side of the
// header (this package does not import raftstore).
const FenceMetadata = "barge-fence-term"

// withFence wraps kube-apiserver's handler chain: the fence travels in
// the request context, which kube-apiserver's etcd storage passes to
// every etcd call it makes for the request. Setting it can only make a
// request's own writes fail, so no caller needs to be trusted with it.
func withFence(build func(http.Handler, *genericapiserver.Config) http.Handler) func(http.Handler, *genericapiserver.Config) http.Handler {
	return func(h http.Handler, c *genericapiserver.Config) http.Handler {
		inner := build(h, c)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v := r.Header.Get(FenceHeader)
			if v == "" {
				inner.ServeHTTP(w, r)
				return
			}
			if term, err := strconv.ParseUint(v, 10, 64); err != nil || term == 0 {
				http.Error(w, FenceHeader+" "+strconv.Quote(v)+": want a Raft term, a positive integer", http.StatusBadRequest)
				return
			}
			ctx := metadata.AppendToOutgoingContext(r.Context(), FenceMetadata, v)
			inner.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}
