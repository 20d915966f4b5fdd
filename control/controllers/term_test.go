package controllers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/kubernetes/cmd/kube-controller-manager/names"
	kubectrlmgrconfig "k8s.io/kubernetes/pkg/controller/apis/config"
)

// TestBuildWithoutDiscovery: a term that starts while its API server
// answers nothing useful (one stopping under it) ends with an error when
// the term ends. Upstream's namespace controller, built the way
// kube-controller-manager builds it, exits the process instead, which
// here would be the store peer's process.
func TestBuildWithoutDiscovery(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	}))
	defer api.Close()
	cfg := &rest.Config{Host: api.URL}
	// The term: long enough for discovery to be asked several times.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	in, err := NewInformers(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = Warm(ctx, in, Config{Client: cfg, Tune: func(cc *kubectrlmgrconfig.KubeControllerManagerConfiguration) {
		cc.Generic.Controllers = []string{names.NamespaceController}
	}})
	if err == nil || !strings.Contains(err.Error(), "no resources from discovery") {
		t.Fatalf("Warm with no discovery: %v, want the namespace controller's discovery error", err)
	}
}
