package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller/certificates/rootcacertpublisher"
	"k8s.io/kubernetes/pkg/controller/clusterroleaggregation"
	namespacecontroller "k8s.io/kubernetes/pkg/controller/namespace"
	serviceaccountcontroller "k8s.io/kubernetes/pkg/controller/serviceaccount"
)

// Config is what one term's controllers need.
type Config struct {
	// Client is how controllers reach the API server.
	Client *rest.Config
	// RootCA is the cluster CA bundle published in every namespace as
	// kube-root-ca.crt.
	RootCA []byte
	Logger *slog.Logger
}

// namespaceSyncPeriod is kube-controller-manager's default.
const namespaceSyncPeriod = 5 * time.Minute

// Run builds the controllers and runs them until ctx ends, then waits
// for every worker to return.
func Run(ctx context.Context, cfg Config) error {
	client, err := kubernetes.NewForConfig(cfg.Client)
	if err != nil {
		return fmt.Errorf("controllers: %w", err)
	}
	meta, err := metadata.NewForConfig(cfg.Client)
	if err != nil {
		return fmt.Errorf("controllers: %w", err)
	}
	logger := klog.FromContext(ctx)
	inf := informers.NewSharedInformerFactory(client, 0)
	core := inf.Core().V1()

	ns := namespacecontroller.NewNamespaceController(ctx, client, meta,
		client.Discovery().ServerPreferredNamespacedResources, core.Namespaces(), namespaceSyncPeriod, v1.FinalizerKubernetes)
	sa, err := serviceaccountcontroller.NewServiceAccountsController(logger, core.ServiceAccounts(), core.Namespaces(),
		client, serviceaccountcontroller.DefaultServiceAccountsControllerOptions())
	if err != nil {
		return fmt.Errorf("controllers: service accounts: %w", err)
	}
	// Kubernetes' admin, edit and view roles get their rules from the
	// roles that aggregate into them, through this controller.
	agg := clusterroleaggregation.NewClusterRoleAggregation(inf.Rbac().V1().ClusterRoles(), client.RbacV1())
	ca, err := rootcacertpublisher.NewPublisher(core.ConfigMaps(), core.Namespaces(), client, cfg.RootCA)
	if err != nil {
		return fmt.Errorf("controllers: root CA publisher: %w", err)
	}

	inf.Start(ctx.Done())
	defer inf.Shutdown()
	var wg sync.WaitGroup
	for _, run := range []func(context.Context){
		func(ctx context.Context) { ns.Run(ctx, 10) },
		func(ctx context.Context) { sa.Run(ctx, 1) },
		func(ctx context.Context) { ca.Run(ctx, 1) },
		func(ctx context.Context) { agg.Run(ctx, 1) },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(ctx)
		}()
	}
	wg.Wait()
	return nil
}
