package apiserver

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
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
			if err := s.bootstrap(ctx, client); err != nil {
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

func (s *Server) bootstrap(ctx context.Context, client kubernetes.Interface) error {
	for _, name := range systemNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("namespace %s: %w", name, err)
		}
	}
	if err := s.ensureKubernetesService(ctx, client); err != nil {
		return err
	}
	return auth.EnsureBootstrapPolicy(ctx, client)
}

// ensureKubernetesService creates default/kubernetes on the first address
// of the service range, as Kubernetes does; in-cluster clients find the
// API through it.
func (s *Server) ensureKubernetesService(ctx context.Context, client kubernetes.Interface) error {
	_, portStr, err := net.SplitHostPort(s.addr)
	if err != nil {
		return fmt.Errorf("kubernetes service: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("kubernetes service: %w", err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: s.cfg.ServiceCIDR.Masked().Addr().Next().String(),
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(int32(port))}},
			SessionAffinity: corev1.ServiceAffinityNone,
		},
	}
	services := client.CoreV1().Services(metav1.NamespaceDefault)
	if _, err := services.Get(ctx, svc.Name, metav1.GetOptions{}); err == nil {
		return nil
	}
	if _, err := services.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		// Another API server may have won the race: its create holds the
		// IP, so ours fails as "already allocated" before AlreadyExists.
		if _, gerr := services.Get(ctx, svc.Name, metav1.GetOptions{}); gerr == nil {
			return nil
		}
		return fmt.Errorf("kubernetes service: %w", err)
	}
	return nil
}
