package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/barge-dev/barge/node/hollow"
)

func newHollowCmd() *cobra.Command {
	var (
		kubeconfig, server string
		cfg                hollow.Config
		logLevel           string
	)
	cmd := &cobra.Command{
		Use:   "hollow",
		Short: "Run simulated (hollow) nodes: Nodes and Leases kept fresh, pods reported Running without containers",
		Long: `Register --count simulated nodes and keep them alive as kubelets would
(Lease renewed every 10 s), reporting every pod bound to them Running and
Ready, a Job's pods Succeeded after --job-runtime, and deletions confirmed.
Nothing runs: this is for tests and benchmarks of the control plane, like
Kubernetes' kubemark and kwok. Nodes carry the label barge.dev/hollow=true.`,
		Example: `  barge hollow --kubeconfig certs/admin.kubeconfig --count 1000`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(logLevel, "text")
			if err != nil {
				return err
			}
			rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
			overrides := &clientcmd.ConfigOverrides{}
			overrides.ClusterInfo.Server = server
			rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
			if err != nil {
				return fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
			}
			cfg.Client, cfg.Logger = rc, logger
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return hollow.Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig with rights over nodes, leases and pods (admin.kubeconfig)")
	f.StringVar(&server, "server", "", "API server URL, overriding the kubeconfig's")
	f.IntVar(&cfg.Count, "count", 1, "number of hollow nodes")
	f.StringVar(&cfg.Prefix, "prefix", "hollow", "node names are PREFIX-0, PREFIX-1, ...")
	f.DurationVar(&cfg.JobRuntime, "job-runtime", time.Second, "how long a Job's pod runs before it succeeds")
	f.IntVar(&cfg.Workers, "workers", 16, "concurrent status writes")
	f.IntVar(&cfg.MaxPods, "max-pods", 110, "pods each node takes, as a kubelet's --max-pods; benchmarks with many pods on few nodes raise it")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	_ = cmd.MarkFlagRequired("kubeconfig")
	return cmd
}
