package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func initDir(t *testing.T, hosts ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	if err := InitDir(dir, InitOptions{Hosts: hosts}); err != nil {
		t.Fatalf("InitDir: %v", err)
	}
	return dir
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := parseCerts(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return certs[0]
}

func TestInitDirFiles(t *testing.T) {
	dir := initDir(t, "10.0.0.1", "Node-1.example.com", "10.0.0.1")
	ca := readCert(t, filepath.Join(dir, CACertFile))
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 || ca.KeyUsage&x509.KeyUsageCRLSign == 0 {
		t.Errorf("ca.crt: IsCA=%v KeyUsage=%v, want a CA with cert and CRL signing", ca.IsCA, ca.KeyUsage)
	}
	if got := ca.NotAfter.Sub(ca.NotBefore); got < DefaultCAValidity {
		t.Errorf("ca.crt valid for %v, want at least %v", got, DefaultCAValidity)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode: %v %v, want 0700", fi.Mode().Perm(), err)
	}

	// The serving certificate also carries the names pods reach the API
	// server by (InClusterHosts); the peer certificate only the hosts.
	peerIPs := []string{"10.0.0.1", "127.0.0.1", "::1"}
	peerDNS := []string{"localhost", "node-1.example.com"}
	serverIPs := []string{"10.0.0.1", "10.96.0.1", "127.0.0.1", "::1"}
	serverDNS := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local", "localhost", "node-1.example.com"}
	for _, tc := range []struct {
		cert, key        string
		cn               string
		org              []string
		usages           []x509.ExtKeyUsage
		wantIPs, wantDNS []string // nil: a client certificate, no SANs
		frontProxy       bool     // issued by the front-proxy CA, not ca.crt
	}{
		{ServerCertFile, ServerKeyFile, ServerCommonName, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, serverIPs, serverDNS, false},
		{PeerCertFile, PeerKeyFile, PeerCommonName, []string{PeerOrganization}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, peerIPs, peerDNS, false},
		{AdminCertFile, AdminKeyFile, AdminUser, []string{AdminGroup}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil, false},
		{KubeletClientCertFile, KubeletClientKeyFile, KubeletClientCommonName, []string{AdminGroup}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil, false},
		{FrontProxyClientCertFile, FrontProxyClientKeyFile, FrontProxyClientCommonName, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil, true},
	} {
		t.Run(tc.cert, func(t *testing.T) {
			cert := readCert(t, filepath.Join(dir, tc.cert))
			if cert.Subject.CommonName != tc.cn || !slices.Equal(cert.Subject.Organization, tc.org) {
				t.Errorf("subject CN=%q O=%q, want CN=%q O=%q", cert.Subject.CommonName, cert.Subject.Organization, tc.cn, tc.org)
			}
			if !slices.Equal(cert.ExtKeyUsage, tc.usages) {
				t.Errorf("ExtKeyUsage %v, want %v", cert.ExtKeyUsage, tc.usages)
			}
			if cert.IsCA {
				t.Error("leaf certificate is a CA")
			}
			var ips []string
			for _, ip := range cert.IPAddresses {
				ips = append(ips, ip.String())
			}
			slices.Sort(ips)
			dns := slices.Sorted(slices.Values(cert.DNSNames))
			if tc.wantIPs != nil && (!slices.Equal(ips, tc.wantIPs) || !slices.Equal(dns, tc.wantDNS)) {
				t.Errorf("SANs IP=%v DNS=%v, want IP=%v DNS=%v", ips, dns, tc.wantIPs, tc.wantDNS)
			}
			if tc.wantIPs == nil && (len(ips) != 0 || len(dns) != 0) {
				t.Errorf("client certificate has SANs IP=%v DNS=%v", ips, dns)
			}
			issuer, issuerName := roots, CACertFile
			if tc.frontProxy {
				// A request-header client must not pass as an ordinary
				// client of the cluster CA.
				if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
					t.Errorf("verifies against %s; want it issued by the front-proxy CA only", CACertFile)
				}
				issuer, issuerName = x509.NewCertPool(), FrontProxyCACertFile
				issuer.AddCert(readCert(t, filepath.Join(dir, FrontProxyCACertFile)))
			}
			for _, u := range tc.usages {
				if _, err := cert.Verify(x509.VerifyOptions{Roots: issuer, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
					t.Errorf("does not verify against %s for %v: %v", issuerName, u, err)
				}
			}
			keyPEM, err := os.ReadFile(filepath.Join(dir, tc.key))
			if err != nil {
				t.Fatal(err)
			}
			key, err := parseKey(keyPEM)
			if err != nil {
				t.Fatalf("%s: %v", tc.key, err)
			}
			if err := keyMatches(cert, key); err != nil {
				t.Errorf("%s: %v", tc.key, err)
			}
		})
	}

	for _, tc := range []struct {
		name string
		perm fs.FileMode
	}{
		{CACertFile, 0o644}, {CAKeyFile, 0o600},
		{ServerCertFile, 0o644}, {ServerKeyFile, 0o600},
		{PeerCertFile, 0o644}, {PeerKeyFile, 0o600},
		{AdminCertFile, 0o644}, {AdminKeyFile, 0o600},
		{AdminKubeconfig, 0o600}, {ServiceAccountKeyFile, 0o600}, {ServiceAccountPublicKeyFile, 0o644},
		{KubeletClientCertFile, 0o644}, {KubeletClientKeyFile, 0o600},
		{FrontProxyCACertFile, 0o644}, {FrontProxyCAKeyFile, 0o600},
		{FrontProxyClientCertFile, 0o644}, {FrontProxyClientKeyFile, 0o600},
	} {
		fi, err := os.Stat(filepath.Join(dir, tc.name))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if fi.Mode().Perm() != tc.perm {
			t.Errorf("%s: mode %v, want %v", tc.name, fi.Mode().Perm(), tc.perm)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 17 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want exactly the 17 files (no temporaries)", names)
	}
	if _, err := LoadServiceAccountKey(dir); err != nil {
		t.Errorf("service account key: %v", err)
	}
}

func TestInitDirValidity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if err := InitDir(dir, InitOptions{Hosts: []string{"127.0.0.1"}, Validity: 48 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{CACertFile, ServerCertFile, PeerCertFile, AdminCertFile} {
		c := readCert(t, filepath.Join(dir, name))
		if left := time.Until(c.NotAfter); left > 48*time.Hour || left < 47*time.Hour {
			t.Errorf("%s expires in %v, want 48h", name, left)
		}
	}
}

func TestInitDirRefusesOverwrite(t *testing.T) {
	dir := initDir(t, "127.0.0.1")
	before, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}

	err = InitDir(dir, InitOptions{Hosts: []string{"127.0.0.1"}})
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), filepath.Join(dir, CAKeyFile)) {
		t.Fatalf("second InitDir: %v, want an fs.ErrExist error naming %s", err, filepath.Join(dir, CAKeyFile))
	}
	if after, _ := os.ReadFile(filepath.Join(dir, CACertFile)); !bytes.Equal(before, after) {
		t.Fatal("refused InitDir still replaced ca.crt")
	}

	// A key left readable by others must not stay so after a forced run.
	if err := os.Chmod(filepath.Join(dir, ServerKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := InitDir(dir, InitOptions{Hosts: []string{"127.0.0.1"}, Force: true}); err != nil {
		t.Fatalf("forced InitDir: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, CACertFile)); bytes.Equal(before, after) {
		t.Fatal("forced InitDir kept the old CA")
	}
	if fi, err := os.Stat(filepath.Join(dir, ServerKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("server.key after forced InitDir: mode %v %v, want 0600", fi.Mode().Perm(), err)
	}
	if _, err := ServerTLS(dir); err != nil {
		t.Fatalf("ServerTLS after forced InitDir: %v", err)
	}
}

func TestInitDirBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts InitOptions
		want string
	}{
		{"host with port", InitOptions{Hosts: []string{"10.0.0.1:2379"}}, "10.0.0.1:2379"},
		{"host with scheme", InitOptions{Hosts: []string{"https://node1"}}, "https://node1"},
		{"port too large", InitOptions{Hosts: []string{"10.0.0.1"}, APIPort: 70000}, "70000"},
		{"negative validity", InitOptions{Hosts: []string{"10.0.0.1"}, Validity: -time.Hour}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "certs")
			err := InitDir(dir, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("InitDir: %v, want an error mentioning %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
				t.Fatal("failed InitDir wrote ca.key")
			}
		})
	}
}

// kubeconfigField returns the value of the first "key: value" line.
func kubeconfigField(t *testing.T, doc, key string) string {
	t.Helper()
	for line := range strings.Lines(doc) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("kubeconfig has no %s:\n%s", key, doc)
	return ""
}

func TestAdminKubeconfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   InitOptions
		server string
	}{
		{"ipv4", InitOptions{Hosts: []string{"10.0.0.1", "10.0.0.2"}}, "https://10.0.0.1:6443"},
		{"ipv6", InitOptions{Hosts: []string{"fd00::1"}, APIPort: 7443}, "https://[fd00::1]:7443"},
		{"dns name", InitOptions{Hosts: []string{"api.example.com", "10.0.0.1"}}, "https://api.example.com:6443"},
		{"no hosts", InitOptions{}, "https://127.0.0.1:6443"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "certs")
			if err := InitDir(dir, tc.opts); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, AdminKubeconfig)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			doc := string(data)
			if !strings.Contains(doc, tc.server) {
				t.Errorf("kubeconfig lacks %s:\n%s", tc.server, doc)
			}
			if got, err := KubeconfigServer(path); err != nil || got != tc.server {
				t.Errorf("KubeconfigServer = %q, %v; want %q", got, err, tc.server)
			}
			for _, want := range []string{"kind: Config", `current-context: "barge"`, `- name: "admin"`, `cluster: "barge"`, `user: "admin"`} {
				if !strings.Contains(doc, want) {
					t.Errorf("kubeconfig lacks %q:\n%s", want, doc)
				}
			}
			for _, f := range []struct{ key, file string }{
				{"certificate-authority-data", CACertFile},
				{"client-certificate-data", AdminCertFile},
				{"client-key-data", AdminKeyFile},
			} {
				got, err := base64.StdEncoding.DecodeString(kubeconfigField(t, doc, f.key))
				if err != nil {
					t.Fatalf("%s: %v", f.key, err)
				}
				want, err := os.ReadFile(filepath.Join(dir, f.file))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s does not decode to %s", f.key, f.file)
				}
			}
		})
	}
}

func TestWriteKubeconfigQuoting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	user := "eve\"\n- name: x: {y}"
	server := "https://[fd00::1]:6443"
	if err := WriteKubeconfig(path, server, []byte("ca"), []byte("cert"), []byte("key"), user); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n- name:"); n != 3 {
		t.Errorf("user name changed the document's structure (%d list entries, want 3):\n%s", n, data)
	}
	if got, err := KubeconfigServer(path); err != nil || got != server {
		t.Errorf("KubeconfigServer = %q, %v; want %q", got, err, server)
	}
	if err := WriteKubeconfig(path, "", nil, nil, nil, "u"); err == nil {
		t.Error("WriteKubeconfig accepted an empty server")
	}
}

func TestSplitHosts(t *testing.T) {
	ips, names, err := splitHosts([]string{" 10.0.0.1 ", "[::1]", "::1", "", "A.example.com", "a.example.com", "*.apps.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("::1")}; len(ips) != 2 || !ips[0].Equal(want[0]) || !ips[1].Equal(want[1]) {
		t.Errorf("IPs %v, want %v", ips, want)
	}
	if want := []string{"a.example.com", "*.apps.example.com"}; !slices.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
}
