package bootstrap_test

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/barge-dev/barge/control/apitest"
	"github.com/barge-dev/barge/node/bootstrap"
	"github.com/barge-dev/barge/raftstore/pki"
)

// TestTLSBootstrap: a bootstrap token gets a node its client certificate
// (approved by kube-controller-manager's csrapproving, signed by
// csrsigning), and the node its kubelet serving certificate for its own
// address (approved by control/servingcsr) but not for another.
func TestTLSBootstrap(t *testing.T) {
	c := apitest.New(t, 1)
	ctx := c.Ctx()
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(c.Store.CertsDir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(caPEM)

	if _, err := bootstrap.ClientCertificate(ctx, c.TokenConfig(0, "abcdef.0123456789abcdef"), "w1"); !apierrors.IsUnauthorized(err) {
		t.Fatalf("a token that was never created: %v, want Unauthorized", err)
	}
	if _, err := bootstrap.CreateToken(ctx, c.Client(0), 0, "no TTL"); err == nil {
		t.Fatal("a token without TTL was created")
	}

	token, err := bootstrap.CreateToken(ctx, c.Client(0), time.Hour, "test")
	if err != nil {
		t.Fatal(err)
	}
	client, err := bootstrap.ClientCertificate(ctx, c.TokenConfig(0, token), "w1")
	if err != nil {
		t.Fatalf("client certificate: %v", err)
	}
	cert := parse(t, client.CertPEM)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client certificate does not chain to the cluster CA for client auth: %v", err)
	}
	nodeCfg := c.TokenConfig(0, "")
	nodeCfg.CertData, nodeCfg.KeyData = client.CertPEM, client.KeyPEM
	node := clientset(t, nodeCfg)
	review, err := node.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := review.Status.UserInfo; u.Username != "system:node:w1" || !slices.Contains(u.Groups, "system:nodes") {
		t.Fatalf("bootstrapped credential is %s in %v, want system:node:w1 in system:nodes", u.Username, u.Groups)
	}

	// The node registers with its address, as the agent does; its serving
	// request is judged against it.
	_, err = node.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "w1"},
		Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.11"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serving, err := bootstrap.ServingCertificate(ctx, nodeCfg, "w1", []net.IP{net.ParseIP("10.0.0.11")})
	if err != nil {
		t.Fatalf("serving certificate: %v", err)
	}
	sc := parse(t, serving.CertPEM)
	if _, err := sc.Verify(x509.VerifyOptions{Roots: roots, DNSName: "10.0.0.11", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("serving certificate is not valid for 10.0.0.11: %v", err)
	}

	_, err = bootstrap.ServingCertificate(ctx, nodeCfg, "w1", []net.IP{net.ParseIP("10.0.0.99")})
	if err == nil || !strings.Contains(err.Error(), "denied") || !strings.Contains(err.Error(), "10.0.0.99 is not an address of node w1") {
		t.Fatalf("serving certificate for another address: %v, want a denial naming the address", err)
	}
}

func parse(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("no PEM certificate issued")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func clientset(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
