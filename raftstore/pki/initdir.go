package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The files of a certificate directory. Every loader in this package reads
// these names, so a directory written by InitDir is all a peer or a client
// needs.
const (
	CACertFile      = "ca.crt"
	CAKeyFile       = "ca.key"
	ServerCertFile  = "server.crt"
	ServerKeyFile   = "server.key"
	PeerCertFile    = "peer.crt"
	PeerKeyFile     = "peer.key"
	AdminCertFile   = "admin.crt"
	AdminKeyFile    = "admin.key"
	AdminKubeconfig = "admin.kubeconfig"

	// The API server's client certificate for the kubelet API of nodes.
	KubeletClientCertFile = "apiserver-kubelet-client.crt"
	KubeletClientKeyFile  = "apiserver-kubelet-client.key"
	// The aggregation layer's own CA and the certificate the API server
	// proxies to extension API servers with, as kubeadm keeps them: a CA
	// of their own, so no ordinary client certificate can assert a user
	// through request headers.
	FrontProxyCACertFile     = "front-proxy-ca.crt"
	FrontProxyCAKeyFile      = "front-proxy-ca.key"
	FrontProxyClientCertFile = "front-proxy-client.crt"
	FrontProxyClientKeyFile  = "front-proxy-client.key"
)

// Names of the API server's clients, as kubeadm names them.
const (
	KubeletClientCommonName    = "kube-apiserver-kubelet-client"
	FrontProxyClientCommonName = "front-proxy-client"
	FrontProxyCACommonName     = "barge-front-proxy-ca"
)

// InClusterHosts are the names and the address pods reach the API
// server by (the default/kubernetes Service on the first address of the
// default service range), so in-cluster clients verify the server.
var InClusterHosts = []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
	"kubernetes.default.svc.cluster.local", "10.96.0.1"}

// DefaultAPIPort is the Kubernetes API server's usual port.
const DefaultAPIPort = 6443

// InitOptions configures InitDir.
type InitOptions struct {
	// Hosts are the IP addresses and DNS names the servers answer on; they
	// go into the server and peer certificates next to the loopback
	// names, and the first one is the kubeconfig's server.
	Hosts []string
	// APIPort is the API server port of the kubeconfig (DefaultAPIPort
	// when zero).
	APIPort int
	// Force replaces an existing CA. Every certificate the old CA issued
	// stops working, so this is never the default.
	Force bool
	// Validity applies to every certificate written, CA included; zero
	// means DefaultCAValidity for the CA and DefaultLeafValidity for the
	// rest.
	Validity time.Duration
}

// InitDir creates dir (mode 0700) and writes a new cluster CA, the server,
// peer and admin certificates, and admin.kubeconfig into it. It refuses to
// replace an existing ca.key unless opts.Force is set.
func InitDir(dir string, opts InitOptions) error {
	port := opts.APIPort
	if port == 0 {
		port = DefaultAPIPort
	}
	if port < 1 || port > 65535 {
		return fmt.Errorf("pki: API port %d out of range", port)
	}
	if dir == "" {
		return errors.New("pki: certificate directory is empty")
	}
	// The loopback names let local tools and tests reach a peer without
	// knowing its address.
	hosts := append(append([]string(nil), opts.Hosts...), "localhost", "127.0.0.1", "::1")
	// Checking the hosts first reports a typo before anything is written.
	if _, _, err := splitHosts(hosts); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	apiHost := firstHost(opts.Hosts)
	if apiHost == "" {
		apiHost = "127.0.0.1"
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: create certificate directory: %w", err)
	}
	caKeyPath := filepath.Join(dir, CAKeyFile)
	if !opts.Force {
		if _, err := os.Lstat(caKeyPath); err == nil {
			return fmt.Errorf("pki: refusing to overwrite %s: a new CA would invalidate every certificate the existing one issued: %w", caKeyPath, fs.ErrExist)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pki: %w", err)
		}
	}

	ca, err := NewCA(CACommonName, opts.Validity)
	if err != nil {
		return err
	}
	server, err := ca.Issue(Request{
		CommonName: ServerCommonName,
		Hosts:      append(append([]string(nil), hosts...), InClusterHosts...),
		// Client too: a new peer authenticates to the cluster's client
		// port with this certificate when it joins.
		Server: true, Client: true,
		Validity: opts.Validity,
	})
	if err != nil {
		return err
	}
	peer, err := ca.Issue(Request{
		CommonName:    PeerCommonName,
		Organizations: []string{PeerOrganization},
		Hosts:         hosts,
		Server:        true,
		Client:        true,
		Validity:      opts.Validity,
	})
	if err != nil {
		return err
	}
	admin, err := ca.IssueClient(AdminUser, []string{AdminGroup}, opts.Validity)
	if err != nil {
		return err
	}
	kubeletClient, err := ca.IssueClient(KubeletClientCommonName, []string{AdminGroup}, opts.Validity)
	if err != nil {
		return err
	}
	proxyCA, err := NewCA(FrontProxyCACommonName, opts.Validity)
	if err != nil {
		return err
	}
	proxyClient, err := proxyCA.IssueClient(FrontProxyClientCommonName, nil, opts.Validity)
	if err != nil {
		return err
	}
	proxyCAKey, err := proxyCA.KeyPEM()
	if err != nil {
		return err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	saKey, saPub, err := newServiceAccountKey()
	if err != nil {
		return err
	}
	kubeconfig := Kubeconfig("https://"+net.JoinHostPort(apiHost, strconv.Itoa(port)), ca.CertPEM, admin.CertPEM, admin.KeyPEM, AdminUser)

	// ca.key goes last: it is what marks the directory as initialised, so
	// a run that fails halfway can simply be repeated.
	files := []struct {
		name string
		data []byte
		perm fs.FileMode
	}{
		{CACertFile, ca.CertPEM, 0o644},
		{ServerCertFile, server.CertPEM, 0o644},
		{ServerKeyFile, server.KeyPEM, 0o600},
		{PeerCertFile, peer.CertPEM, 0o644},
		{PeerKeyFile, peer.KeyPEM, 0o600},
		{AdminCertFile, admin.CertPEM, 0o644},
		{AdminKeyFile, admin.KeyPEM, 0o600},
		{AdminKubeconfig, kubeconfig, 0o600},
		{ServiceAccountKeyFile, saKey, 0o600},
		{ServiceAccountPublicKeyFile, saPub, 0o644},
		{KubeletClientCertFile, kubeletClient.CertPEM, 0o644},
		{KubeletClientKeyFile, kubeletClient.KeyPEM, 0o600},
		{FrontProxyCACertFile, proxyCA.CertPEM, 0o644},
		{FrontProxyCAKeyFile, proxyCAKey, 0o600},
		{FrontProxyClientCertFile, proxyClient.CertPEM, 0o644},
		{FrontProxyClientKeyFile, proxyClient.KeyPEM, 0o600},
		{CAKeyFile, caKey, 0o600},
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return err
		}
	}
	return nil
}

func firstHost(hosts []string) string {
	for _, h := range hosts {
		if h = strings.TrimSpace(h); h != "" {
			return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		}
	}
	return ""
}

// writeFile replaces path atomically: a crash never leaves a truncated key,
// and a file that existed with looser permissions does not keep them, as
// it would with os.WriteFile.
func writeFile(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	return nil
}
