package plane

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// NodeNetworkRole is the ClusterRole every node credential (group
// system:nodes) is bound to, beside upstream's kube-proxy role.
const NodeNetworkRole = "barge:node-network"

// nodeProxierBinding binds system:nodes to upstream's system:node-proxier.
const nodeProxierBinding = "barge:node-proxier"

// nodeNetworkRBAC is what barge's agent needs beyond the Node authorizer's
// kubelet rules, since each agent is also its node's kube-proxy, DNS
// server and NetworkPolicy enforcer: upstream's kube-proxy role
// (EndpointSlices, ServiceCIDRs, Services, Nodes, events), and reads of
// NetworkPolicies, Namespaces and every pod (policy peers are pods of any
// node; Calico's and Cilium's agents read the same). Writes stay as the
// Node authorizer and NodeRestriction limit them: to the node's own
// objects.
func nodeNetworkRBAC() (*rbacv1.ClusterRole, []*rbacv1.ClusterRoleBinding) {
	nodes := []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}}
	read := []string{"get", "list", "watch"}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: NodeNetworkRole, Labels: map[string]string{"app.kubernetes.io/managed-by": "barge"}},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: read},
			{APIGroups: []string{""}, Resources: []string{"namespaces", "pods"}, Verbs: read},
		},
	}
	bootstrappers := []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: BootstrappersGroup}}
	bind := func(name, role string, subjects []rbacv1.Subject) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "barge"}},
			Subjects:   subjects,
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		}
	}
	return role, []*rbacv1.ClusterRoleBinding{
		bind(NodeNetworkRole, NodeNetworkRole, nodes),
		bind(nodeProxierBinding, "system:node-proxier", nodes),
		// The TLS bootstrap, as kubeadm binds it: a bootstrap token may
		// create CSRs, and its client CSR is approved by csrapproving;
		// a node's renewal of its own client certificate is too.
		bind("barge:node-bootstrapper", "system:node-bootstrapper", bootstrappers),
		bind("barge:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", bootstrappers),
		bind("barge:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", nodes),
	}
}

// BootstrappersGroup is the group of every bootstrap token's user.
const BootstrappersGroup = "system:bootstrappers"

// ensureNodeRBAC creates the node network role and bindings if they are
// missing, retrying until it succeeds or ctx ends. Every server runs it
// once its API server is ready; what exists already (an operator's
// edit included) is left alone, as kube-apiserver's own RBAC bootstrap
// leaves roles alone that it finds.
func ensureNodeRBAC(ctx context.Context, cs kubernetes.Interface, logger *slog.Logger) {
	role, bindings := nodeNetworkRBAC()
	create := func(ctx context.Context) error {
		if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("ClusterRole %s: %w", role.Name, err)
		}
		for _, b := range bindings {
			if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("ClusterRoleBinding %s: %w", b.Name, err)
			}
		}
		return nil
	}
	var last error
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		last = create(ctx)
		return last == nil, nil
	})
	if err != nil && ctx.Err() == nil {
		logger.Error("node network RBAC", "err", last)
	}
}
