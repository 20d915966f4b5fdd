package lab

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Names of what grantNodeNetwork creates.
const (
	nodeNetworkRole    = "barge:node-network"
	nodeProxierBinding = "barge:node-proxier"
)

// grantNodeNetwork lets the agents' node credentials (group system:nodes)
// read what their Service proxy, DNS and NetworkPolicy enforcement
// watch, beyond what upstream's Node authorizer grants a kubelet:
// upstream's own kube-proxy role (system:node-proxier: EndpointSlices,
// ServiceCIDRs, ...) and a role for NetworkPolicies, Namespaces and all
// pods. The
// servers do not create these yet, so the lab does, as an operator would.
func (l *Lab) grantNodeNetwork(ctx context.Context) error {
	cs, err := l.Kube()
	if err != nil {
		return err
	}
	nodes := []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}}
	read := []string{"get", "list", "watch"}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: nodeNetworkRole},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: read},
			// NetworkPolicy selects peers among every node's pods; the Node
			// authorizer lets a node list only its own.
			{APIGroups: []string{""}, Resources: []string{"namespaces", "pods"}, Verbs: read},
		},
	}
	bindings := []*rbacv1.ClusterRoleBinding{
		{ObjectMeta: metav1.ObjectMeta{Name: nodeNetworkRole}, Subjects: nodes,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: nodeNetworkRole}},
		{ObjectMeta: metav1.ObjectMeta{Name: nodeProxierBinding}, Subjects: nodes,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:node-proxier"}},
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("lab: create ClusterRole %s: %w", role.Name, err)
	}
	for _, b := range bindings {
		if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("lab: create ClusterRoleBinding %s: %w", b.Name, err)
		}
	}
	return nil
}
