package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Subjects that carry meaning to barge. The Organization of a certificate
// is its group, as in Kubernetes.
const (
	// PeerOrganization marks the certificates of store peers; the peer port
	// accepts nothing else.
	PeerOrganization = "system:barge-peers"
	PeerCommonName   = "barge-peer"

	// AdminGroup is Kubernetes' superuser group; the store's admin service
	// and the API server both grant it everything.
	AdminGroup = "system:masters"
	AdminUser  = "admin"

	ServerCommonName = "barge-server"
	CACommonName     = "barge-ca"
)

const (
	// DefaultCAValidity is long because replacing the CA means reissuing
	// every certificate in the cluster.
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
	// DefaultLeafValidity matches kubeadm: long enough not to surprise,
	// short enough that a leaked key does not stay useful forever.
	DefaultLeafValidity = 365 * 24 * time.Hour

	// backdate covers clock skew between the machine that issues a
	// certificate and the peers that check it minutes later.
	backdate = 5 * time.Minute
)

// CA is the cluster's certificate authority.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// Leaf is an issued certificate and its private key, PEM encoded as they
// are written to disk.
type Leaf struct {
	CertPEM, KeyPEM []byte
}

// Request describes a certificate to issue.
type Request struct {
	CommonName    string
	Organizations []string
	// Hosts become subject alternative names: IP addresses as IP SANs,
	// anything else as DNS names.
	Hosts []string
	// Server and Client select the extended key usages; a store peer needs
	// both because it dials the peers that dial it.
	Server, Client bool
	// Validity of zero means DefaultLeafValidity. The certificate never
	// outlives the CA, since nothing would accept it after that.
	Validity time.Duration
}

// NewCA creates a self-signed ECDSA P-256 certificate authority. A zero
// validity means DefaultCAValidity.
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	if commonName == "" {
		return nil, errors.New("pki: CA common name is empty")
	}
	if validity < 0 {
		return nil, fmt.Errorf("pki: CA validity %v is negative", validity)
	}
	if validity == 0 {
		validity = DefaultCAValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// Leaves are signed directly by the CA; refusing intermediates
		// means a stolen leaf key can never mint certificates.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(der)}, nil
}

// LoadCA reads ca.crt and ca.key from dir.
func LoadCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA key: %w", err)
	}
	certs, err := parseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", certPath, err)
	}
	cert := certs[0]
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("pki: %s: %q is not a certificate authority", certPath, cert.Subject.CommonName)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", keyPath, err)
	}
	if err := keyMatches(cert, key); err != nil {
		return nil, fmt.Errorf("pki: %s does not belong to %s: %w", keyPath, certPath, err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(cert.Raw)}, nil
}

// KeyPEM encodes the CA's private key as written to ca.key.
func (ca *CA) KeyPEM() ([]byte, error) {
	return encodeKey(ca.Key)
}

// Issue signs a new certificate with a fresh ECDSA P-256 key.
func (ca *CA) Issue(req Request) (*Leaf, error) {
	if req.CommonName == "" {
		return nil, errors.New("pki: certificate common name is empty")
	}
	if !req.Server && !req.Client {
		return nil, fmt.Errorf("pki: certificate %q: neither server nor client usage requested", req.CommonName)
	}
	if req.Validity < 0 {
		return nil, fmt.Errorf("pki: certificate %q: validity %v is negative", req.CommonName, req.Validity)
	}
	ips, names, err := splitHosts(req.Hosts)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate %q: %w", req.CommonName, err)
	}
	validity := req.Validity
	if validity == 0 {
		validity = DefaultLeafValidity
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("pki: CA %q expired on %s", ca.Cert.Subject.CommonName, ca.Cert.NotAfter.Format(time.RFC3339))
	}
	var usages []x509.ExtKeyUsage
	if req.Server {
		usages = append(usages, x509.ExtKeyUsageServerAuth)
	}
	if req.Client {
		usages = append(usages, x509.ExtKeyUsageClientAuth)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key for %q: %w", req.CommonName, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   req.CommonName,
			Organization: append([]string(nil), req.Organizations...),
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usages,
		BasicConstraintsValid: true,
		IPAddresses:           ips,
		DNSNames:              names,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign certificate %q: %w", req.CommonName, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &Leaf{CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// IssueClient issues a client certificate for a user of the API server and
// the store: the user name is the common name, the groups the
// organizations.
func (ca *CA) IssueClient(user string, groups []string, validity time.Duration) (*Leaf, error) {
	return ca.Issue(Request{CommonName: user, Organizations: groups, Client: true, Validity: validity})
}

// splitHosts sorts hosts into IP and DNS SANs. A host with a port or a
// scheme is refused rather than turned into a DNS name nothing matches.
func splitHosts(hosts []string) ([]net.IP, []string, error) {
	var ips []net.IP
	var names []string
	seen := map[string]bool{}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); ip != nil {
			if !seen[ip.String()] {
				seen[ip.String()] = true
				ips = append(ips, ip)
			}
			continue
		}
		if strings.ContainsAny(h, ":/@ \t[]") {
			return nil, nil, fmt.Errorf("host %q: want an IP address or DNS name, without scheme or port", h)
		}
		h = strings.ToLower(h)
		if !seen[h] {
			seen[h] = true
			names = append(names, h)
		}
	}
	return ips, names, nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	// A zero serial is invalid in RFC 5280.
	return serial.Add(serial, big.NewInt(1)), nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseCerts returns every certificate in data, in order; anything else in
// the PEM stream is skipped, but a CERTIFICATE block that does not parse is
// an error rather than silently ignored.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return certs, nil
}

// parseKey accepts the PKCS#8 keys barge writes and the PKCS#1 and SEC 1
// keys that openssl and other tools write, so an operator can bring a CA.
func parseKey(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key block found")
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%T keys cannot sign", key)
		}
		return signer, nil
	}
}

func keyMatches(cert *x509.Certificate, key crypto.Signer) error {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return errors.New("private key does not match the certificate's public key")
	}
	return nil
}
