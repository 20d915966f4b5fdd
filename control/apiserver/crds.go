package apiserver

import (
	"net/http"

	genericapiserver "k8s.io/apiserver/pkg/server"
)

// emptyCRDList answers the one question kubectl asks about custom
// resources: before it reports an unknown kind, its schema validation
// lists CustomResourceDefinitions, and a 404 there turns "no such kind"
// into a confusing "failed to check CRD". barge serves no custom
// resources, so the truthful answer is an empty list.
const emptyCRDList = `{"kind":"CustomResourceDefinitionList","apiVersion":"apiextensions.k8s.io/v1","metadata":{"resourceVersion":"0"},"items":[]}`

func installCRDList(s *genericapiserver.GenericAPIServer) {
	s.Handler.NonGoRestfulMux.Handle("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "barge serves no custom resources", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(emptyCRDList))
	}))
}
