package servingcsr

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net"
	"strings"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func csrPEM(t *testing.T, cn string, orgs []string, dns []string, ips ...string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: orgs}, DNSNames: dns}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestJudge(t *testing.T) {
	serving := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
	nodes := map[string]*corev1.Node{
		"w1": {ObjectMeta: metav1.ObjectMeta{Name: "w1"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "10.0.0.11"}, {Type: corev1.NodeHostName, Address: "w1"}}}},
		"w2": {ObjectMeta: metav1.ObjectMeta{Name: "w2"}},
	}
	getNode := func(name string) (*corev1.Node, error) {
		if n, ok := nodes[name]; ok {
			return n, nil
		}
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "nodes"}, name)
	}
	nodeOrg := []string{"system:nodes"}
	for _, tc := range []struct {
		name    string
		user    string
		groups  []string
		request []byte
		usages  []certificatesv1.KeyUsage
		want    string // "" approve, "wait", else a piece of the denial
	}{
		{"own name and address", "system:node:w1", nodeOrg, csrPEM(t, "system:node:w1", nodeOrg, []string{"w1"}, "10.0.0.11"), serving, ""},
		{"own name only", "system:node:w1", nodeOrg, csrPEM(t, "system:node:w1", nodeOrg, []string{"w1"}), serving, ""},
		{"another node's address", "system:node:w1", nodeOrg, csrPEM(t, "system:node:w1", nodeOrg, []string{"w1"}, "10.0.0.12"), serving, "IP address 10.0.0.12 is not an address of node w1"},
		{"another name", "system:node:w1", nodeOrg, csrPEM(t, "system:node:w1", nodeOrg, []string{"kubernetes.default"}), serving, `DNS name "kubernetes.default"`},
		{"subject of another node", "system:node:w1", nodeOrg, csrPEM(t, "system:node:w2", nodeOrg, []string{"w1"}), serving, "is not the requester"},
		{"not a node", "alice", []string{"system:authenticated"}, csrPEM(t, "system:node:w1", nodeOrg, []string{"w1"}), serving, "not a node"},
		{"client usages", "system:node:w1", nodeOrg, csrPEM(t, "system:node:w1", nodeOrg, []string{"w1"}), []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}, "not a kubelet serving request"},
		{"wrong organization", "system:node:w1", nodeOrg, csrPEM(t, "system:node:w1", []string{"system:masters"}, []string{"w1"}), serving, "not a kubelet serving request"},
		{"garbage request", "system:node:w1", nodeOrg, []byte("not pem"), serving, "no PEM"},
		{"node not registered", "system:node:w3", nodeOrg, csrPEM(t, "system:node:w3", nodeOrg, []string{"w3"}, "10.0.0.13"), serving, "wait"},
		{"node without addresses", "system:node:w2", nodeOrg, csrPEM(t, "system:node:w2", nodeOrg, []string{"w2"}, "10.0.0.12"), serving, "wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{
				Request: tc.request, SignerName: certificatesv1.KubeletServingSignerName,
				Usages: tc.usages, Username: tc.user, Groups: tc.groups,
			}}
			_, err := Judge(r, getNode)
			switch {
			case tc.want == "":
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
			case tc.want == "wait":
				if !errors.Is(err, errNodeNotReady) {
					t.Fatalf("got %v, want to wait for the node", err)
				}
			default:
				if err == nil || errors.Is(err, errNodeNotReady) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want a denial saying %q", err, tc.want)
				}
			}
		})
	}
}
