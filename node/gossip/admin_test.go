package gossip

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/barge-dev/barge/raftstore/pki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// adminServer serves the admin service over p on loopback with the
// client port's TLS (a certificate directory from pki.InitDir), and
// returns the directory and the address.
func adminServer(t *testing.T, p *Pool) (certs, addr string) {
	t.Helper()
	certs = filepath.Join(t.TempDir(), "certs")
	if err := pki.InitDir(certs, pki.InitOptions{Hosts: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := pki.ServerTLS(certs)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsCfg)))
	RegisterAdmin(s, p)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return certs, ln.Addr().String()
}

func dial(t *testing.T, addr string, cfg *tls.Config) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestGossipAdminService(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	pools := startPools(t, 3, k1)
	certs, addr := adminServer(t, pools[0])
	adminTLS, err := pki.ClientTLS(certs)
	if err != nil {
		t.Fatal(err)
	}
	cc := dial(t, addr, adminTLS)
	ctx := context.Background()

	infos, err := RemoteMembers(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 || infos[0].Name != "a1" || infos[2].Name != "s1" {
		t.Fatalf("members %+v", infos)
	}
	for _, i := range infos {
		if i.State != StateAlive || i.UnderlayIP != "127.0.0.1" || !strings.HasPrefix(i.Address, "127.0.0.1:") {
			t.Errorf("member %+v", i)
		}
		if i.Role == RoleAgent && (i.PodCIDR == "" || i.VTEPMAC == "" || i.Overlay != OverlayVXLAN) {
			t.Errorf("agent %+v lacks its overlay metadata", i)
		}
	}

	res, err := RemoteKeyring(ctx, cc, KeyInstall, k2, 0)
	if err != nil || len(res.Members) != 3 {
		t.Fatalf("install: %+v %v", res, err)
	}
	res, err = RemoteKeyring(ctx, cc, KeyList, "", 0)
	if err != nil || len(res.Keys) != 2 || res.Keys[0].Key != k1 || res.Keys[1].Installed != 3 {
		t.Fatalf("list: %+v %v", res, err)
	}
	// A refusal comes back as InvalidArgument with the reason.
	_, err = RemoteKeyring(ctx, cc, KeyRemove, k1, 0)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "primary key") {
		t.Fatalf("removing the primary key: %v", err)
	}

	// A certificate of the same CA outside system:masters is refused.
	ca, err := pki.LoadCA(certs)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.IssueClient("bob", []string{"developers"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bob.crt"), leaf.CertPEM)
	writeFile(t, filepath.Join(dir, "bob.key"), leaf.KeyPEM)
	writeFile(t, filepath.Join(dir, pki.CACertFile), ca.CertPEM)
	bobTLS, err := pki.LoadClientTLS(dir, "bob.crt", "bob.key")
	if err != nil {
		t.Fatal(err)
	}
	bob := dial(t, addr, bobTLS)
	if _, err := RemoteMembers(ctx, bob); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("members as bob: %v", err)
	}
	if _, err := RemoteKeyring(ctx, bob, KeyList, "", 0); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("keyring as bob: %v", err)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
