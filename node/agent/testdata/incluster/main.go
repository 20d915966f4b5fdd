// Command incluster is the in-cluster client of the agent's InCluster
// test: it builds its configuration as every in-cluster client does,
// client-go's rest.InClusterConfig (KUBERNETES_SERVICE_HOST and _PORT,
// the service account token and CA under
// /var/run/secrets/kubernetes.io/serviceaccount), and asks the API server
// who it is (a SelfSubjectReview, which every authenticated user may
// create). It prints the review's status as JSON.
//
// It uses client-go's rest package and not the typed clientset so that
// the static build the test makes stays small and quick; the transport
// (TLS from the service account CA, the bearer token re-read from its
// file) is the same.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "incluster:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return err
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.Host+"/apis/authentication.k8s.io/v1/selfsubjectreviews", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", cfg.Host, resp.Status, b)
	}
	fmt.Printf("host=%s\n%s\n", cfg.Host, b)
	return nil
}
