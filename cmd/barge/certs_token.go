package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/barge-dev/barge/node/bootstrap"
	"github.com/barge-dev/barge/raftstore/pki"
)

func newCertsTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Bootstrap tokens, with which an agent without a credential asks for one",
	}
	cmd.AddCommand(newCertsTokenCreateCmd())
	return cmd
}

func newCertsTokenCreateCmd() *cobra.Command {
	var (
		dir, kubeconfig, description string
		ttl                          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Store a new bootstrap token in the cluster and print it",
		Long: `Create a bootstrap token (a kube-system Secret of type
bootstrap.kubernetes.io/token, as kubeadm token create does) and print it
as ID.SECRET. An agent started with --bootstrap-token-file holding it, and
ca.crt and gossip-keyring.json in its --certs directory, asks for its node
credential by CertificateSigningRequest: the client certificate is approved
for bootstrap tokens, the kubelet serving certificate for the node's own
name and addresses. The token stops authenticating after --ttl.`,
		Example: `  barge certs token create --dir ./certs --ttl 1h > token
  barge agent --name w2 --certs ./w2 --bootstrap-token-file token --servers https://10.0.0.1:6443 --node-ip 10.0.0.12`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kubeconfig == "" {
				kubeconfig = os.Getenv("KUBECONFIG")
			}
			if kubeconfig == "" {
				kubeconfig = filepath.Join(dir, pki.AdminKubeconfig)
			}
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			token, err := bootstrap.CreateToken(ctx, cs, ttl, description)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), token)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "certs", "certificate directory whose admin.kubeconfig is used when neither --kubeconfig nor KUBECONFIG is given")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of an administrator (default $KUBECONFIG, else DIR/admin.kubeconfig)")
	f.DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token authenticates")
	f.StringVar(&description, "description", "barge agent bootstrap", "recorded in the token's Secret")
	return cmd
}
