package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/raftstore/pki"
	"github.com/spf13/cobra"
)

// Files `barge certs node` writes into the node's directory.
const (
	nodeClientCertFile = "node.crt"
	nodeClientKeyFile  = "node.key"
	kubeletCertFile    = "kubelet.crt"
	kubeletKeyFile     = "kubelet.key"
	nodeKubeconfigFile = "node.kubeconfig"
	nodeOrganization   = "system:nodes"
	nodeUserPrefix     = "system:node:"
)

// nodeCredentials are the files of one node's credential.
type nodeCredentials struct {
	dir string
}

func (n nodeCredentials) path(name string) string { return filepath.Join(n.dir, name) }

func newCertsNodeCmd() *cobra.Command {
	var (
		dir, name, ip, out string
		validity           time.Duration
		force              bool
	)
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Issue a node agent's client and kubelet serving certificates",
		Long: `Issue, from the CA in --dir, the credential of one worker node:

  node.crt, node.key         client certificate CN=system:node:NAME,
                             O=system:nodes: the API server's Node
                             authorizer and NodeRestriction admission let
                             it act only as that node
  kubelet.crt, kubelet.key   the kubelet API's serving certificate, for
                             the node IP and name
  ca.crt                     the cluster CA
  gossip-keyring.json        the gossip pool's keys, copied from --dir
                             (the agent joins the servers' pool with it)

into --out (default DIR/nodes/NAME), the directory 'barge agent --certs'
takes. Existing files are replaced only with --force.`,
		Example: `  barge certs node --dir ./certs --name w1 --ip 10.0.0.11
  barge agent --name w1 --certs ./certs/nodes/w1 --servers https://10.0.0.1:6443 --node-ip 10.0.0.11`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name = strings.TrimSpace(name)
			if name == "" || strings.ContainsAny(name, "/ ") {
				return fmt.Errorf("--name %q: want a node name (a DNS subdomain)", name)
			}
			if net.ParseIP(ip) == nil {
				return fmt.Errorf("--ip %q: want the node's IP address", ip)
			}
			ca, err := pki.LoadCA(dir)
			if err != nil {
				return err
			}
			// Read first: a directory without the pool's key fails before
			// anything is written.
			keys, err := gossip.ReadKeyring(filepath.Join(dir, gossip.KeyringFile))
			if err != nil {
				return fmt.Errorf("%w (barge certs init writes it; or barge gossip keygen --certs %s)", err, dir)
			}
			if out == "" {
				out = filepath.Join(dir, "nodes", name)
			}
			nc := nodeCredentials{dir: out}
			if !force {
				for _, f := range []string{nodeClientCertFile, kubeletCertFile} {
					if _, err := os.Lstat(nc.path(f)); err == nil {
						return fmt.Errorf("%s already exists; use --force to replace it", nc.path(f))
					}
				}
			}
			client, err := ca.Issue(pki.Request{CommonName: nodeUserPrefix + name, Organizations: []string{nodeOrganization}, Client: true, Validity: validity})
			if err != nil {
				return err
			}
			serving, err := ca.Issue(pki.Request{CommonName: nodeUserPrefix + name, Organizations: []string{nodeOrganization}, Hosts: []string{ip, name}, Server: true, Validity: validity})
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return fmt.Errorf("create %s: %w", out, err)
			}
			for _, f := range []struct {
				name string
				data []byte
				mode os.FileMode
			}{
				{pki.CACertFile, ca.CertPEM, 0o644},
				{nodeClientCertFile, client.CertPEM, 0o644},
				{nodeClientKeyFile, client.KeyPEM, 0o600},
				{kubeletCertFile, serving.CertPEM, 0o644},
				{kubeletKeyFile, serving.KeyPEM, 0o600},
			} {
				if err := os.WriteFile(nc.path(f.name), f.data, f.mode); err != nil {
					return err
				}
			}
			if err := gossip.WriteKeyring(nc.path(gossip.KeyringFile), keys); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote node credential for %s (user %s%s, group %s) and kubelet serving certificate for %s, %s into %s\n",
				name, nodeUserPrefix, name, nodeOrganization, ip, name, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "certificate directory from 'barge certs init', holding ca.crt and ca.key (required)")
	f.StringVar(&name, "name", "", "node name (required)")
	f.StringVar(&ip, "ip", "", "node IP address, in the kubelet serving certificate (required)")
	f.StringVar(&out, "out", "", "directory to write the node's files to (default DIR/nodes/NAME)")
	f.DurationVar(&validity, "validity", 0, "certificate lifetime (default 1 year, never beyond the CA's)")
	f.BoolVar(&force, "force", false, "replace existing files")
	for _, n := range []string{"dir", "name", "ip"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}
