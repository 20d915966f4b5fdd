package pki

import (
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadCAIssues(t *testing.T) {
	dir := initDir(t, "127.0.0.1")
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if ca.Cert.Subject.CommonName != CACommonName {
		t.Errorf("CA CN %q, want %q", ca.Cert.Subject.CommonName, CACommonName)
	}
	leaf, err := ca.IssueClient("alice", []string{"dev", "ops"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := parseCerts(leaf.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	cert := certs[0]
	if cert.Subject.CommonName != "alice" || !slices.Equal(cert.Subject.Organization, []string{"dev", "ops"}) {
		t.Errorf("subject %v, want CN=alice O=dev,ops", cert.Subject)
	}
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, filepath.Join(dir, CACertFile)))
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("issued certificate does not verify against ca.crt: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("client certificate verifies for server auth")
	}
	if _, err := ca.ClientTLS(leaf); err != nil {
		t.Errorf("ClientTLS of an issued certificate: %v", err)
	}
}

func TestLoadCAErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, dir string)
		want   string
		is     error
	}{
		{"no ca.key", func(t *testing.T, dir string) { remove(t, dir, CAKeyFile) }, CAKeyFile, fs.ErrNotExist},
		{"no ca.crt", func(t *testing.T, dir string) { remove(t, dir, CACertFile) }, CACertFile, fs.ErrNotExist},
		{"key of another certificate", func(t *testing.T, dir string) { copyFile(t, dir, AdminKeyFile, CAKeyFile) }, CAKeyFile, nil},
		{"leaf as CA", func(t *testing.T, dir string) {
			copyFile(t, dir, AdminCertFile, CACertFile)
			copyFile(t, dir, AdminKeyFile, CAKeyFile)
		}, CACertFile, nil},
		{"garbage key", func(t *testing.T, dir string) { write(t, dir, CAKeyFile, "not a key") }, CAKeyFile, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := initDir(t, "127.0.0.1")
			tc.mutate(t, dir)
			_, err := LoadCA(dir)
			if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, tc.want)) {
				t.Fatalf("LoadCA: %v, want an error naming %s", err, filepath.Join(dir, tc.want))
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("LoadCA: %v, want errors.Is %v", err, tc.is)
			}
		})
	}
}

func TestIssue(t *testing.T) {
	ca, err := NewCA("test-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		req     Request
		wantErr string
	}{
		{"server", Request{CommonName: "s", Hosts: []string{"10.1.1.1", "s.local"}, Server: true}, ""},
		{"no common name", Request{Client: true}, "common name"},
		{"no usage", Request{CommonName: "x"}, "usage"},
		{"host with port", Request{CommonName: "x", Server: true, Hosts: []string{"s.local:443"}}, "s.local:443"},
		{"negative validity", Request{CommonName: "x", Client: true, Validity: -time.Second}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf, err := ca.Issue(tc.req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Issue: %v, want an error mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			certs, err := parseCerts(leaf.CertPEM)
			if err != nil {
				t.Fatal(err)
			}
			// Asked for a year by default, but the CA lives an hour.
			if certs[0].NotAfter.After(ca.Cert.NotAfter) {
				t.Errorf("certificate outlives its CA: %v > %v", certs[0].NotAfter, ca.Cert.NotAfter)
			}
		})
	}
}

func remove(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, dir, from, to string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, from))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, to, string(data))
}

func write(t *testing.T, dir, name, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
