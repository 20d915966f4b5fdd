package bootstrap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/certificate/csr"
)

const (
	nodeUserPrefix = "system:node:"
	nodesGroup     = "system:nodes"
)

// createBackoff spans about a minute: enough for a cluster that is
// still starting, short enough that a wrong setup is reported.
func createBackoff() wait.Backoff {
	return wait.Backoff{Duration: 250 * time.Millisecond, Factor: 1.5, Steps: 12, Cap: 10 * time.Second}
}

// Credential is a certificate and its private key, PEM-encoded.
type Credential struct {
	CertPEM, KeyPEM []byte
}

// ClientCertificate asks for node's client certificate (CN
// system:node:NODE, O system:nodes) with cfg, a client authenticated by
// a bootstrap token, and waits until it is issued or denied, or ctx ends.
func ClientCertificate(ctx context.Context, cfg *rest.Config, node string) (Credential, error) {
	return request(ctx, cfg, certificatesv1.KubeAPIServerClientKubeletSignerName, node, nil, nil,
		[]certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth})
}

// ServingCertificate asks for the kubelet API's serving certificate of
// node, for its name and ips, with cfg authenticated as the node.
func ServingCertificate(ctx context.Context, cfg *rest.Config, node string, ips []net.IP) (Credential, error) {
	return request(ctx, cfg, certificatesv1.KubeletServingSignerName, node, []string{node}, ips,
		[]certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth})
}

func request(ctx context.Context, cfg *rest.Config, signer, node string, dns []string, ips []net.IP, usages []certificatesv1.KeyUsage) (Credential, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return Credential{}, fmt.Errorf("bootstrap %s: %w", signer, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Credential{}, fmt.Errorf("bootstrap %s: key: %w", signer, err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: nodeUserPrefix + node, Organization: []string{nodesGroup}},
		DNSNames: dns, IPAddresses: ips,
	}, key)
	if err != nil {
		return Credential{}, fmt.Errorf("bootstrap %s: certificate request: %w", signer, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Credential{}, fmt.Errorf("bootstrap %s: key: %w", signer, err)
	}
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	var (
		name string
		uid  types.UID
		last error
	)
	// Forbidden at first is a cluster still starting: the servers bind
	// the bootstrap roles once their API server is ready. Retried for a
	// while, as the kubelet retries its bootstrap; a bad token
	// (Unauthorized) or a bad request is final.
	err = wait.ExponentialBackoffWithContext(ctx, createBackoff(), func(ctx context.Context) (bool, error) {
		name, uid, last = csr.RequestCertificateWithContext(ctx, cs, csrPEM, "", signer, nil, usages, key)
		switch err := last; {
		case err == nil:
			return true, nil
		case apierrors.IsForbidden(err), apierrors.IsServerTimeout(err), apierrors.IsTooManyRequests(err),
			apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), apierrors.IsTimeout(err):
			return false, nil
		}
		return false, err
	})
	if wait.Interrupted(err) && last != nil {
		err = fmt.Errorf("still failing after %d tries: %w", createBackoff().Steps, last)
	}
	if err != nil {
		return Credential{}, fmt.Errorf("bootstrap %s: create CertificateSigningRequest: %w", signer, err)
	}
	cert, err := csr.WaitForCertificate(ctx, cs, name, uid)
	if err != nil {
		return Credential{}, fmt.Errorf("bootstrap %s: CertificateSigningRequest %s: %w", signer, name, err)
	}
	return Credential{CertPEM: cert, KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})}, nil
}
