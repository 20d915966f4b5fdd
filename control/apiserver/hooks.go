package apiserver

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"

	"github.com/barge-dev/barge/control/auth"
)

// systemNamespaces exist in every cluster; Kubernetes creates the same.
var systemNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

func (s *Server) addHooks(generic *genericapiserver.GenericAPIServer, client kubernetes.Interface) error {
	if err := generic.AddPostStartHook("start-barge-informers", func(ctx genericapiserver.PostStartHookContext) error {
		s.informers.Start(ctx.Done())
		return nil
	}); err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	// Every API server ensures the system namespaces and the built-in
	// RBAC policy; creating what exists is a harmless AlreadyExists, so
	// there is nothing to coordinate. readyz waits for this hook.
	if err := generic.AddPostStartHook("barge-bootstrap", func(ctx genericapiserver.PostStartHookContext) error {
		return wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			if err := bootstrap(ctx, client); err != nil {
				s.cfg.Logger.Info("bootstrap not done yet", "err", err)
				return false, nil
			}
			return true, nil
		})
	}); err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	return nil
}

func bootstrap(ctx context.Context, client kubernetes.Interface) error {
	for _, name := range systemNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("namespace %s: %w", name, err)
		}
	}
	return auth.EnsureBootstrapPolicy(ctx, client)
}
