package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"

	"k8s.io/client-go/rest"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"

	"github.com/barge-dev/barge/node/bootstrap"
	"github.com/barge-dev/barge/raftstore/pki"
	"github.com/barge-dev/barge/raftstore/snapfile"
)

// servingCert is the kubelet API's certificate, swapped in once a
// bootstrapped node's serving CSR is issued; until then handshakes fail,
// as a kubelet's do while its serving certificate is pending.
type servingCert struct {
	p atomic.Pointer[tls.Certificate]
}

func (s *servingCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.p.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("the kubelet serving certificate is not issued yet (its CertificateSigningRequest is pending)")
}

// kubeletTLS is the kubelet API's serving configuration: the certificate
// of cert, client certificates verified against the cluster CA, whose
// apiserver-kubelet-client certificate kube-apiserver presents.
func kubeletTLS(nc nodeCredentials, cert *servingCert) (*tls.Config, error) {
	caPEM, err := os.ReadFile(nc.path(pki.CACertFile))
	if err != nil {
		return nil, fmt.Errorf("--certs %s: %w", nc.dir, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("--certs %s: %s holds no PEM certificate", nc.dir, pki.CACertFile)
	}
	return &tls.Config{GetCertificate: cert.get, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}, nil
}

// loadServing loads kubelet.crt/kubelet.key into cert.
func loadServing(nc nodeCredentials, cert *servingCert) error {
	c, err := tls.LoadX509KeyPair(nc.path(kubeletCertFile), nc.path(kubeletKeyFile))
	if err != nil {
		return fmt.Errorf("--certs %s: kubelet serving certificate: %w", nc.dir, err)
	}
	cert.p.Store(&c)
	return nil
}

// readBootstrapToken reads ID.SECRET from file.
func readBootstrapToken(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--bootstrap-token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if !bootstraputil.IsValidBootstrapToken(token) {
		return "", fmt.Errorf("--bootstrap-token-file %s: not a bootstrap token (want ID.SECRET, 6 and 16 characters of [a-z0-9], as 'barge certs token create' prints)", file)
	}
	return token, nil
}

// writeCredential stores a bootstrapped key and certificate, the key
// first: a certificate on disk always has its key beside it.
func writeCredential(nc nodeCredentials, certFile, keyFile string, cred bootstrap.Credential) error {
	for _, f := range []struct {
		name string
		data []byte
	}{{keyFile, cred.KeyPEM}, {certFile, cred.CertPEM}} {
		path := nc.path(f.name)
		err := snapfile.WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write(f.data); return err })
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

// bootstrapClient asks for the node's client certificate with the token
// and stores it as node.crt/node.key.
func bootstrapClient(ctx context.Context, nc nodeCredentials, name, token string, base *rest.Config, logger *slog.Logger) error {
	cfg := rest.CopyConfig(base)
	cfg.TLSClientConfig = rest.TLSClientConfig{CAFile: nc.path(pki.CACertFile)}
	cfg.BearerToken = token
	logger.Info("no node credential in --certs; asking for one with the bootstrap token", "node", name, "token", strings.SplitN(token, ".", 2)[0])
	cred, err := bootstrap.ClientCertificate(ctx, cfg, name)
	if err != nil {
		return err
	}
	if err := writeCredential(nc, nodeClientCertFile, nodeClientKeyFile, cred); err != nil {
		return err
	}
	logger.Info("node credential issued", "node", name, "cert", nc.path(nodeClientCertFile))
	return nil
}

// bootstrapServing asks, as the node, for the kubelet serving certificate
// of name and ip, stores it as kubelet.crt/kubelet.key and serves it.
func bootstrapServing(ctx context.Context, nc nodeCredentials, name string, ip net.IP, nodeCfg *rest.Config, cert *servingCert, logger *slog.Logger) {
	logger.Info("asking for the kubelet serving certificate", "node", name, "ip", ip.String())
	cred, err := bootstrap.ServingCertificate(ctx, nodeCfg, name, []net.IP{ip})
	if err == nil {
		err = writeCredential(nc, kubeletCertFile, kubeletKeyFile, cred)
	}
	if err == nil {
		err = loadServing(nc, cert)
	}
	if err != nil {
		if ctx.Err() == nil {
			logger.Error("kubelet serving certificate: the kubelet API (logs, exec, port-forward) stays unavailable", "err", err)
		}
		return
	}
	logger.Info("kubelet serving certificate issued", "node", name, "cert", nc.path(kubeletCertFile))
}
