package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/raftstore/pki"
	"github.com/spf13/cobra"
)

func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Create the cluster CA and issue certificates and kubeconfigs",
		Long: `Manage the cluster's certificate authority. Every connection in barge is
TLS with certificates from this one CA: clients and the etcd API (client
certificates required), store peers among themselves (mutual TLS, peer
certificates only), and kubectl against the API server.

A certificate's organization is its group, as in Kubernetes: system:masters
is the administrator group, and only certificates in system:barge-peers can
speak Raft.`,
		Example: `  barge certs init --dir ./certs --hosts 10.0.0.1,10.0.0.2,10.0.0.3
  barge certs client --dir ./certs --user alice --group dev --kubeconfig alice.kubeconfig`,
	}
	cmd.AddCommand(newCertsInitCmd(), newCertsClientCmd(), newCertsNodeCmd(), newCertsTokenCmd())
	return cmd
}

func newCertsInitCmd() *cobra.Command {
	var (
		dir  string
		opts pki.InitOptions
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a cluster CA, server, peer and admin certificates, and admin.kubeconfig",
		Long: `Create a new certificate authority in --dir (mode 0700) and issue from it
everything a cluster needs:

  ca.crt, ca.key           the cluster CA
  server.crt, server.key   client port and API server (also used to join)
  peer.crt, peer.key       Raft traffic between store peers
  admin.crt, admin.key     administrator client certificate (CN=admin,
                           O=system:masters), for barge and etcdctl
  admin.kubeconfig         kubectl configuration for the administrator
  gossip-keyring.json      the gossip pool's encryption key (kept if it
                           exists: servers and agents share it)

The server and peer certificates are valid for every --hosts entry (IP
addresses or DNS names) plus localhost, 127.0.0.1 and ::1, so list every
address peers and clients will use. admin.kubeconfig points at the first
host and --api-port. Copy the directory to every server; ca.key is needed
only to issue more certificates and is best kept off the servers.

An existing ca.key is never replaced without --force, because a new CA
invalidates every certificate the old one issued.`,
		Example: `  barge certs init --dir ./certs --hosts 127.0.0.1
  barge certs init --dir /etc/barge --hosts 10.0.0.1,10.0.0.2,10.0.0.3,api.example.com --api-port 6443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pki.InitDir(dir, opts); err != nil {
				if errors.Is(err, fs.ErrExist) {
					return fmt.Errorf("%w (give --force to replace the CA)", err)
				}
				return err
			}
			// Every server and agent joins the one encrypted gossip pool
			// with this key; a CA replaced by --force keeps the pool's key,
			// which rotates on its own (barge gossip keyring).
			keyring, created, err := gossip.InitKeyring(dir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, f := range []struct{ name, what string }{
				{pki.CACertFile, "cluster CA certificate"},
				{pki.CAKeyFile, "cluster CA key (only needed to issue certificates)"},
				{pki.ServerCertFile, "server certificate (client port, API server)"},
				{pki.ServerKeyFile, "server key"},
				{pki.PeerCertFile, "peer certificate (Raft between store peers)"},
				{pki.PeerKeyFile, "peer key"},
				{pki.AdminCertFile, "admin client certificate (CN=admin, O=system:masters)"},
				{pki.AdminKeyFile, "admin client key"},
				{pki.AdminKubeconfig, "kubeconfig for the admin"},
			} {
				fmt.Fprintf(out, "wrote %-40s %s\n", filepath.Join(dir, f.name), f.what)
			}
			verb := "wrote"
			if !created {
				verb = "kept "
			}
			fmt.Fprintf(out, "%s %-40s %s\n", verb, keyring, "gossip pool key (shared by servers and agents)")
			if err := describeServerCert(out, filepath.Join(dir, pki.ServerCertFile)); err != nil {
				return err
			}
			server, err := pki.KubeconfigServer(filepath.Join(dir, pki.AdminKubeconfig))
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "admin.kubeconfig talks to %s\n", server)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "directory to write the certificates to (created if missing; required)")
	f.StringSliceVar(&opts.Hosts, "hosts", nil, "IP addresses and DNS names of the servers, comma separated (required)")
	f.IntVar(&opts.APIPort, "api-port", pki.DefaultAPIPort, "API server port written into admin.kubeconfig")
	f.BoolVar(&opts.Force, "force", false, "replace an existing CA, invalidating every certificate it issued")
	f.DurationVar(&opts.Validity, "validity", 0, "lifetime of every certificate written (default 10 years for the CA, 1 year for the rest)")
	_ = cmd.MarkFlagRequired("dir")
	_ = cmd.MarkFlagRequired("hosts")
	return cmd
}

func newCertsClientCmd() *cobra.Command {
	var (
		dir, user, out, server string
		groups                 []string
		validity               time.Duration
		force                  bool
	)
	cmd := &cobra.Command{
		Use:   "client",
		Short: "Issue a client certificate for a user and write it as a kubeconfig",
		Long: `Issue a client certificate signed by the CA in --dir (ca.crt and ca.key)
and write a kubeconfig with the certificate, its key and the CA embedded.

The user name becomes the certificate's common name and each --group an
organization, which is how the API server and the store see users and
groups: --group system:masters makes an administrator. The group
system:barge-peers is refused; it belongs to store peers.

The kubeconfig talks to --server, by default the server of
DIR/admin.kubeconfig. An existing kubeconfig is replaced only with --force.`,
		Example: `  barge certs client --dir ./certs --user alice --group dev --group qa --kubeconfig alice.kubeconfig
  barge certs client --dir ./certs --user ci --kubeconfig ci.kubeconfig --server https://10.0.0.2:6443 --validity 720h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			user = strings.TrimSpace(user)
			if user == "" {
				return errors.New("--user is empty")
			}
			if slices.Contains(groups, pki.PeerOrganization) {
				return fmt.Errorf("--group %s is reserved for store peers, whose certificates come from 'barge certs init'", pki.PeerOrganization)
			}
			ca, err := pki.LoadCA(dir)
			if err != nil {
				return err
			}
			if server == "" {
				admin := filepath.Join(dir, pki.AdminKubeconfig)
				if server, err = pki.KubeconfigServer(admin); err != nil {
					return fmt.Errorf("no --server given, and none found in %s: %w", admin, err)
				}
			}
			if err := checkServerURL(server); err != nil {
				return err
			}
			if !force {
				if _, err := os.Lstat(out); err == nil {
					return fmt.Errorf("%s already exists; use --force to replace it: %w", out, fs.ErrExist)
				}
			}
			leaf, err := ca.IssueClient(user, groups, validity)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
				return fmt.Errorf("create kubeconfig directory: %w", err)
			}
			if err := pki.WriteKubeconfig(out, server, ca.CertPEM, leaf.CertPEM, leaf.KeyPEM, user); err != nil {
				return err
			}
			block, _ := pem.Decode(leaf.CertPEM)
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return fmt.Errorf("parse issued certificate: %w", err)
			}
			groupText := "no groups"
			if len(groups) > 0 {
				groupText = "groups " + strings.Join(groups, ", ")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: user %s, %s, server %s, valid until %s\n",
				out, user, groupText, server, cert.NotAfter.UTC().Format(time.RFC3339))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "certificate directory from 'barge certs init', holding ca.crt and ca.key (required)")
	f.StringVar(&user, "user", "", "user name, the certificate's common name (required)")
	f.StringSliceVar(&groups, "group", nil, "group, the certificate's organization; repeat or comma separate for several")
	f.StringVar(&out, "kubeconfig", "", "kubeconfig file to write (required)")
	f.StringVar(&server, "server", "", "API server URL https://HOST:PORT (default: the server of DIR/admin.kubeconfig)")
	f.DurationVar(&validity, "validity", 0, "certificate lifetime (default 1 year, never beyond the CA's)")
	f.BoolVar(&force, "force", false, "replace an existing kubeconfig file")
	for _, name := range []string{"dir", "user", "kubeconfig"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// checkServerURL catches a server given as a bare address, which kubectl
// would only reject much later with a less helpful message.
func checkServerURL(server string) error {
	u, err := url.Parse(server)
	if err != nil {
		return fmt.Errorf("--server %q: want https://HOST:PORT: %w", server, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("--server %q: want https://HOST:PORT", server)
	}
	return nil
}

// describeServerCert prints the names the certificates answer to, the
// thing most worth checking after init.
func describeServerCert(w io.Writer, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read back %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return fmt.Errorf("%s: no PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var names []string
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	names = append(names, cert.DNSNames...)
	fmt.Fprintf(w, "server and peer certificates valid for %s until %s\n",
		strings.Join(names, ", "), cert.NotAfter.UTC().Format(time.RFC3339))
	return nil
}
