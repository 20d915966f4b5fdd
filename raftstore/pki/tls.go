package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Every config sets TLS 1.2 as the floor, which etcdctl and kubectl of any
// supported age speak; Go negotiates TLS 1.3 whenever both ends have it.
const minTLSVersion = tls.VersionTLS12

// ServerTLS is the config of the client-facing listeners (the etcd gRPC
// port): server.crt, and a client certificate from the cluster CA required,
// as etcd's --client-cert-auth does. Authorization by group is left to the
// services, which see the verified chain.
func ServerTLS(dir string) (*tls.Config, error) {
	m, err := loadMaterial(dir, ServerCertFile, ServerKeyFile, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	return m.serverConfig(), nil
}

// PeerTLS returns the listening and dialing configs of the peer port, both
// built on peer.crt. Each end demands that the other holds a certificate
// from the cluster CA with Organization PeerOrganization, so no other
// certificate the CA issued (admin, users, the server certificate) can
// speak Raft or reach the leader RPCs.
//
// The dialing side does not check the host name. Peers dial addresses from
// the membership, which change as peers are added, moved or reached
// through NAT, while the peer certificate was issued once for the hosts
// known at `barge certs init` time; tying trust to those names would break
// membership changes without adding anything, since only the CA can issue
// a peer certificate and every peer is equally entitled to the role.
func PeerTLS(dir string) (server, client *tls.Config, err error) {
	m, err := loadMaterial(dir, PeerCertFile, PeerKeyFile, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, nil, err
	}
	if err := requirePeer(m.cert.Leaf); err != nil {
		return nil, nil, fmt.Errorf("pki: %s: %w", filepath.Join(dir, PeerCertFile), err)
	}
	server, client = m.peerConfigs()
	return server, client, nil
}

// ClientTLS is the admin's client config (admin.crt), which barge's
// commands use against the etcd gRPC port. The server's name is checked as
// usual, against the hosts given to `barge certs init`.
func ClientTLS(dir string) (*tls.Config, error) {
	return LoadClientTLS(dir, AdminCertFile, AdminKeyFile)
}

// LoadClientTLS is ClientTLS with another certificate of dir, for example
// server.crt, with which a joining peer authenticates to the cluster.
func LoadClientTLS(dir, certFile, keyFile string) (*tls.Config, error) {
	m, err := loadMaterial(dir, certFile, keyFile, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	return m.clientConfig(), nil
}

// ServerTLS is the package-level ServerTLS for a CA and leaf held in
// memory.
func (ca *CA) ServerTLS(leaf *Leaf) (*tls.Config, error) {
	m, err := ca.material(leaf, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	return m.serverConfig(), nil
}

// PeerTLS is the package-level PeerTLS for a CA and leaf held in memory.
func (ca *CA) PeerTLS(leaf *Leaf) (server, client *tls.Config, err error) {
	m, err := ca.material(leaf, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, nil, err
	}
	if err := requirePeer(m.cert.Leaf); err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	server, client = m.peerConfigs()
	return server, client, nil
}

// ClientTLS is the package-level ClientTLS for a CA and leaf held in
// memory.
func (ca *CA) ClientTLS(leaf *Leaf) (*tls.Config, error) {
	m, err := ca.material(leaf, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	return m.clientConfig(), nil
}

// material is what every config is built from: the CA to trust and the
// certificate to present.
type material struct {
	roots *x509.CertPool
	cert  tls.Certificate
}

func (ca *CA) material(leaf *Leaf, usages ...x509.ExtKeyUsage) (*material, error) {
	if leaf == nil {
		return nil, errors.New("pki: no certificate given")
	}
	return newMaterial(ca.CertPEM, leaf.CertPEM, leaf.KeyPEM, "CA certificate", "certificate", "private key", usages)
}

func loadMaterial(dir, certFile, keyFile string, usages ...x509.ExtKeyUsage) (*material, error) {
	caPath := filepath.Join(dir, CACertFile)
	certPath, keyPath := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read cluster CA certificate: %w", err)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read private key: %w", err)
	}
	return newMaterial(caPEM, certPEM, keyPEM, caPath, certPath, keyPath, usages)
}

// newMaterial checks everything a handshake would otherwise discover at
// the far end of the network, where the error names neither file: the
// files parse, the key belongs to the certificate, and the certificate is
// currently valid under the CA for each of the usages it will be put to.
func newMaterial(caPEM, certPEM, keyPEM []byte, caName, certName, keyName string, usages []x509.ExtKeyUsage) (*material, error) {
	cas, err := parseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", caName, err)
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	chain, err := parseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", certName, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", keyName, err)
	}
	if err := keyMatches(chain[0], key); err != nil {
		return nil, fmt.Errorf("pki: %s does not belong to %s: %w", keyName, certName, err)
	}
	for _, usage := range usages {
		if err := verifyChain(chain, roots, usage); err != nil {
			return nil, fmt.Errorf("pki: %s is not a valid %s certificate under %s: %w", certName, usageName(usage), caName, err)
		}
	}
	cert := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return &material{roots: roots, cert: cert}, nil
}

func (m *material) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   minTLSVersion,
		Certificates: []tls.Certificate{m.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    m.roots,
	}
}

func (m *material) clientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   minTLSVersion,
		Certificates: []tls.Certificate{m.cert},
		RootCAs:      m.roots,
	}
}

// peerConfigs uses VerifyConnection rather than VerifyPeerCertificate
// because it also runs on resumed sessions, which skip certificate
// verification.
func (m *material) peerConfigs() (server, client *tls.Config) {
	roots := m.roots
	server = m.serverConfig()
	server.VerifyConnection = func(cs tls.ConnectionState) error {
		// RequireAndVerifyClientCert has verified the chain by now.
		if len(cs.VerifiedChains) == 0 {
			return errors.New("pki: peer presented no verified certificate")
		}
		return requirePeer(cs.VerifiedChains[0][0])
	}
	client = &tls.Config{
		MinVersion:   minTLSVersion,
		Certificates: []tls.Certificate{m.cert},
		RootCAs:      roots,
		// Only the host name check is skipped (see PeerTLS): VerifyConnection
		// verifies the chain against the cluster CA itself.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("pki: peer presented no certificate")
			}
			if err := verifyChain(cs.PeerCertificates, roots, x509.ExtKeyUsageServerAuth); err != nil {
				return fmt.Errorf("pki: peer certificate %q: %w", cs.PeerCertificates[0].Subject.CommonName, err)
			}
			return requirePeer(cs.PeerCertificates[0])
		},
	}
	return server, client
}

// verifyChain checks chain[0] against roots without a host name.
func verifyChain(chain []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	return err
}

func requirePeer(leaf *x509.Certificate) error {
	if !slices.Contains(leaf.Subject.Organization, PeerOrganization) {
		return fmt.Errorf("certificate %q (organization %q) is not a peer certificate: want organization %s",
			leaf.Subject.CommonName, leaf.Subject.Organization, PeerOrganization)
	}
	return nil
}

func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "server"
	case x509.ExtKeyUsageClientAuth:
		return "client"
	}
	return fmt.Sprintf("usage-%d", u)
}
