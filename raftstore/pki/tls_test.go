package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exchange runs a handshake and one round trip over loopback TCP (not
// net.Pipe, whose unbuffered writes deadlock when one side sends an alert
// while the other writes data). In TLS 1.3 the client finishes its
// handshake before the server has judged the client certificate, so a
// refusal by the server may only show up on the client's first read.
func exchange(t *testing.T, server, client *tls.Config) (version uint16, serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	done := make(chan error, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer raw.Close()
		_ = raw.SetDeadline(deadline)
		c := tls.Server(raw, server)
		if err := c.Handshake(); err != nil {
			done <- err
			return
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			done <- err
			return
		}
		_, err = c.Write(buf)
		done <- err
	}()

	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.SetDeadline(deadline)
	c := tls.Client(raw, client)
	clientErr = func() error {
		if err := c.Handshake(); err != nil {
			return err
		}
		version = c.ConnectionState().Version
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != "ping" {
			return errors.New("echo mismatch")
		}
		return nil
	}()
	raw.Close()
	return version, <-done, clientErr
}

// withName sets the name a client expects of the server, as a dialer does
// from the address.
func withName(cfg *tls.Config, name string, maxVersion uint16) *tls.Config {
	cfg = cfg.Clone()
	cfg.ServerName = name
	cfg.MaxVersion = maxVersion
	return cfg
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestHandshakes(t *testing.T) {
	dir := initDir(t, "127.0.0.1")
	cfg := must[*tls.Config](t)
	server := cfg(ServerTLS(dir))
	peerServer, peerClient, err := PeerTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	admin := cfg(ClientTLS(dir))
	join := cfg(LoadClientTLS(dir, ServerCertFile, ServerKeyFile))
	ca := must[*CA](t)(LoadCA(dir))
	leaf := must[*Leaf](t)
	// A user who names himself like a peer is still not one.
	fakePeer := cfg(ca.ClientTLS(leaf(ca.IssueClient(PeerCommonName, []string{"system:authenticated"}, 0))))
	noCert := &tls.Config{RootCAs: admin.RootCAs}

	// Another cluster, held in memory: same roles, different CA.
	other := must[*CA](t)(NewCA("other-ca", 0))
	otherPeerLeaf := leaf(other.Issue(Request{CommonName: PeerCommonName, Organizations: []string{PeerOrganization}, Hosts: []string{"127.0.0.1"}, Server: true, Client: true}))
	otherPeerServer, otherPeerClient, err := other.PeerTLS(otherPeerLeaf)
	if err != nil {
		t.Fatal(err)
	}
	otherServer := cfg(other.ServerTLS(leaf(other.Issue(Request{CommonName: "s", Hosts: []string{"127.0.0.1"}, Server: true}))))
	otherAdmin := cfg(other.ClientTLS(leaf(other.IssueClient(AdminUser, []string{AdminGroup}, 0))))

	const notPeer = "not a peer certificate"
	for _, tc := range []struct {
		name           string
		server, client *tls.Config
		serverName     string
		// wantServer and wantClient are substrings of the expected
		// errors on each side; both empty means the exchange succeeds.
		wantServer, wantClient string
	}{
		{name: "peer to peer", server: peerServer, client: peerClient},
		{name: "peer to peer, name not in certificate", server: peerServer, client: peerClient, serverName: "10.99.99.99"},
		{name: "admin to client port", server: server, client: admin, serverName: "127.0.0.1"},
		{name: "admin to client port by name", server: server, client: admin, serverName: "localhost"},
		{name: "joining peer to client port", server: server, client: join, serverName: "127.0.0.1"},

		{name: "admin to client port, wrong name", server: server, client: admin, serverName: "10.99.99.99", wantClient: "10.99.99.99"},
		{name: "admin to peer port", server: peerServer, client: admin, serverName: "127.0.0.1", wantServer: notPeer},
		{name: "user named like a peer to peer port", server: peerServer, client: fakePeer, serverName: "127.0.0.1", wantServer: notPeer},
		{name: "joining peer's server cert to peer port", server: peerServer, client: join, serverName: "127.0.0.1", wantServer: notPeer},
		{name: "peer dialing a client port", server: server, client: peerClient, wantClient: notPeer},
		{name: "other CA's peer to peer port", server: peerServer, client: otherPeerClient, wantServer: "certificate"},
		{name: "peer to other CA's peer port", server: otherPeerServer, client: peerClient, wantClient: "unknown authority"},
		{name: "other CA's admin to client port", server: server, client: otherAdmin, serverName: "127.0.0.1", wantServer: "certificate"},
		{name: "admin to other CA's client port", server: otherServer, client: admin, serverName: "127.0.0.1", wantClient: "unknown authority"},
		{name: "no client certificate to client port", server: server, client: noCert, serverName: "127.0.0.1", wantServer: "certificate"},
		{name: "no client certificate to peer port", server: peerServer, client: noCert, serverName: "127.0.0.1", wantServer: "certificate"},
	} {
		for _, v := range []struct {
			name string
			max  uint16
		}{{"TLS1.3", 0}, {"TLS1.2", tls.VersionTLS12}} {
			t.Run(tc.name+"/"+v.name, func(t *testing.T) {
				version, serverErr, clientErr := exchange(t, tc.server, withName(tc.client, tc.serverName, v.max))
				if tc.wantServer == "" && tc.wantClient == "" {
					if serverErr != nil || clientErr != nil {
						t.Fatalf("exchange failed: server: %v; client: %v", serverErr, clientErr)
					}
					if want := uint16(tls.VersionTLS13); v.max == 0 && version != want {
						t.Errorf("negotiated %s, want %s", tls.VersionName(version), tls.VersionName(want))
					}
					return
				}
				if serverErr == nil && clientErr == nil {
					t.Fatal("exchange succeeded, want it refused")
				}
				if tc.wantServer != "" && (serverErr == nil || !strings.Contains(serverErr.Error(), tc.wantServer)) {
					t.Errorf("server error %v, want one mentioning %q (client: %v)", serverErr, tc.wantServer, clientErr)
				}
				if tc.wantClient != "" && (clientErr == nil || !strings.Contains(clientErr.Error(), tc.wantClient)) {
					t.Errorf("client error %v, want one mentioning %q (server: %v)", clientErr, tc.wantClient, serverErr)
				}
			})
		}
	}
}

func TestConfigs(t *testing.T) {
	dir := initDir(t, "127.0.0.1")
	server, err := ServerTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	peerServer, peerClient, err := PeerTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ClientTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*tls.Config{"server": server, "peer server": peerServer, "peer client": peerClient, "client": client} {
		if c.MinVersion != tls.VersionTLS12 {
			t.Errorf("%s: MinVersion %x, want TLS 1.2", name, c.MinVersion)
		}
		if len(c.Certificates) != 1 || c.Certificates[0].Leaf == nil {
			t.Errorf("%s: want exactly one certificate with its parsed leaf", name)
		}
	}
	for name, c := range map[string]*tls.Config{"server": server, "peer server": peerServer} {
		if c.ClientAuth != tls.RequireAndVerifyClientCert || c.ClientCAs == nil {
			t.Errorf("%s: ClientAuth %v, want RequireAndVerifyClientCert with the cluster CA", name, c.ClientAuth)
		}
	}
	if got := client.Certificates[0].Leaf.Subject.CommonName; got != AdminUser {
		t.Errorf("ClientTLS presents %q, want %q", got, AdminUser)
	}
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	otherDir := initDir(t, "127.0.0.1")
	server := func(dir string) error { _, err := ServerTLS(dir); return err }
	peer := func(dir string) error { _, _, err := PeerTLS(dir); return err }
	client := func(dir string) error { _, err := ClientTLS(dir); return err }
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, dir string)
		load   func(dir string) error
		want   []string
	}{
		{"server: no ca.crt", func(t *testing.T, dir string) { remove(t, dir, CACertFile) }, server, []string{CACertFile}},
		{"server: no server.key", func(t *testing.T, dir string) { remove(t, dir, ServerKeyFile) }, server, []string{ServerKeyFile}},
		{"server: garbage ca.crt", func(t *testing.T, dir string) { write(t, dir, CACertFile, "garbage") }, server, []string{CACertFile, "no PEM"}},
		{"server: garbage server.crt", func(t *testing.T, dir string) { write(t, dir, ServerCertFile, "garbage") }, server, []string{ServerCertFile}},
		{"server: key of another certificate", func(t *testing.T, dir string) { copyFile(t, dir, AdminKeyFile, ServerKeyFile) }, server, []string{ServerKeyFile, ServerCertFile}},
		{"server: admin certificate as server.crt", func(t *testing.T, dir string) {
			copyFile(t, dir, AdminCertFile, ServerCertFile)
			copyFile(t, dir, AdminKeyFile, ServerKeyFile)
		}, server, []string{ServerCertFile, "server"}},
		{"server: certificate of another CA", func(t *testing.T, dir string) {
			for _, f := range []string{ServerCertFile, ServerKeyFile} {
				data, err := os.ReadFile(filepath.Join(otherDir, f))
				if err != nil {
					t.Fatal(err)
				}
				write(t, dir, f, string(data))
			}
		}, server, []string{ServerCertFile, CACertFile}},
		{"peer: no peer.crt", func(t *testing.T, dir string) { remove(t, dir, PeerCertFile) }, peer, []string{PeerCertFile}},
		{"peer: server certificate as peer.crt", func(t *testing.T, dir string) {
			copyFile(t, dir, ServerCertFile, PeerCertFile)
			copyFile(t, dir, ServerKeyFile, PeerKeyFile)
		}, peer, []string{PeerCertFile, PeerOrganization}},
		{"client: no admin.key", func(t *testing.T, dir string) { remove(t, dir, AdminKeyFile) }, client, []string{AdminKeyFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := initDir(t, "127.0.0.1")
			tc.mutate(t, dir)
			err := tc.load(dir)
			if err == nil {
				t.Fatal("loaded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestInMemoryPeerTLSRefusesNonPeer(t *testing.T) {
	ca, err := NewCA("mem", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(Request{CommonName: "x", Server: true, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.PeerTLS(leaf); err == nil || !strings.Contains(err.Error(), PeerOrganization) {
		t.Fatalf("PeerTLS of a non-peer certificate: %v, want an error naming %s", err, PeerOrganization)
	}
	if _, err := ca.ServerTLS(nil); err == nil {
		t.Fatal("ServerTLS(nil) succeeded")
	}
	var unknown x509.UnknownAuthorityError
	other, _ := NewCA("other", time.Hour)
	if _, err := other.ServerTLS(leaf); !errors.As(err, &unknown) {
		t.Fatalf("ServerTLS of another CA's certificate: %v, want x509.UnknownAuthorityError", err)
	}
}
