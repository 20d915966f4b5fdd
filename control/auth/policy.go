package auth

import (
	"context"
	"errors"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes"
)

// Metadata Kubernetes puts on its bootstrap policy. Tools (and humans) use the
// label to tell defaults from site policy; the annotation tells a reconciler
// it may keep the object up to date.
const (
	BootstrappingLabelKey   = "kubernetes.io/bootstrapping"
	BootstrappingLabelValue = "rbac-defaults"
)

const (
	legacyGroup        = ""
	appsGroup          = "apps"
	authorizationGroup = "authorization.k8s.io"
	coordinationGroup  = "coordination.k8s.io"
	discoveryGroup     = "discovery.k8s.io"
	eventsGroup        = "events.k8s.io"
)

// Verb sets are functions, not variables, so no caller can append to a shared
// slice and silently widen every role built afterwards.
func readVerbs() []string { return []string{"get", "list", "watch"} }
func writeVerbs() []string {
	return []string{"create", "update", "patch", "delete", "deletecollection"}
}
func readWriteVerbs() []string {
	return append(readVerbs(), writeVerbs()...)
}

func resourceRule(verbs []string, group string, resources ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: []string{group}, Resources: resources}
}

func urlRule(verbs []string, urls ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, NonResourceURLs: urls}
}

// viewRules is Kubernetes' system:aggregate-to-view cut down to the resources
// this server serves. Secrets are left out on purpose: reading a secret can
// mean reading a service account token, i.e. escalating.
func viewRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		resourceRule(readVerbs(), legacyGroup, "pods", "serviceaccounts", "services", "endpoints", "configmaps"),
		resourceRule(readVerbs(), legacyGroup, "events", "pods/status", "pods/log"),
		// Reading namespaces through a RoleBinding only reveals the
		// binding's own namespace, which is how users find where they
		// have access.
		resourceRule(readVerbs(), legacyGroup, "namespaces"),
		resourceRule(readVerbs(), appsGroup,
			"deployments", "deployments/status", "deployments/scale",
			"replicasets", "replicasets/status", "replicasets/scale"),
		resourceRule(readVerbs(), discoveryGroup, "endpointslices"),
		resourceRule(readVerbs(), coordinationGroup, "leases"),
		resourceRule(readVerbs(), eventsGroup, "events"),
	}
}

// editExtraRules is Kubernetes' system:aggregate-to-edit for the resources
// served here. Endpoints and EndpointSlices stay read-only, as upstream since
// CVE-2021-25740: writing them lets a user steer a Service's traffic to
// addresses they do not own.
func editExtraRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		resourceRule(readVerbs(), legacyGroup, "secrets"),
		resourceRule([]string{"impersonate"}, legacyGroup, "serviceaccounts"),
		resourceRule(writeVerbs(), legacyGroup, "pods"),
		resourceRule([]string{"create"}, legacyGroup, "pods/eviction"),
		resourceRule(writeVerbs(), legacyGroup, "serviceaccounts", "services", "configmaps", "secrets", "events"),
		resourceRule([]string{"create"}, legacyGroup, "serviceaccounts/token"),
		resourceRule(writeVerbs(), appsGroup, "deployments", "deployments/scale", "replicasets", "replicasets/scale"),
		resourceRule(writeVerbs(), coordinationGroup, "leases"),
		resourceRule(writeVerbs(), eventsGroup, "events"),
	}
}

// adminExtraRules is what separates admin from edit: managing who else may
// act in the namespace.
func adminExtraRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		resourceRule(readWriteVerbs(), rbacv1.GroupName, "roles", "rolebindings"),
	}
}

func discoveryURLs() []string {
	return []string{
		"/livez", "/readyz", "/healthz",
		"/version", "/version/",
		"/openapi", "/openapi/*",
		"/api", "/api/*",
		"/apis", "/apis/*",
	}
}

// publicInfoURLs is the subset safe for unauthenticated callers: liveness
// and version, but not the API surface.
func publicInfoURLs() []string {
	return []string{"/livez", "/readyz", "/healthz", "/version", "/version/"}
}

// BootstrapClusterRoles returns the built-in ClusterRoles. admin, edit and
// view carry their final rules (what Kubernetes' aggregation would produce),
// since nothing here aggregates ClusterRoles.
func BootstrapClusterRoles() []rbacv1.ClusterRole {
	view := viewRules()
	edit := append(viewRules(), editExtraRules()...)
	admin := append(append(viewRules(), editExtraRules()...), adminExtraRules()...)

	roles := []rbacv1.ClusterRole{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "cluster-admin"},
			Rules: []rbacv1.PolicyRule{
				resourceRule([]string{rbacv1.VerbAll}, rbacv1.APIGroupAll, rbacv1.ResourceAll),
				urlRule([]string{rbacv1.VerbAll}, rbacv1.NonResourceAll),
			},
		},
		{ObjectMeta: metav1.ObjectMeta{Name: "admin"}, Rules: admin},
		{ObjectMeta: metav1.ObjectMeta{Name: "edit"}, Rules: edit},
		{ObjectMeta: metav1.ObjectMeta{Name: "view"}, Rules: view},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "system:discovery"},
			Rules:      []rbacv1.PolicyRule{urlRule([]string{"get"}, discoveryURLs()...)},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "system:public-info-viewer"},
			Rules:      []rbacv1.PolicyRule{urlRule([]string{"get"}, publicInfoURLs()...)},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "system:basic-user"},
			Rules: []rbacv1.PolicyRule{
				resourceRule([]string{"create"}, authorizationGroup, "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
			},
		},
	}
	for i := range roles {
		markBootstrap(&roles[i].ObjectMeta)
	}
	return roles
}

// BootstrapClusterRoleBindings returns the built-in ClusterRoleBindings, each
// named after the ClusterRole it binds.
func BootstrapClusterRoleBindings() []rbacv1.ClusterRoleBinding {
	bindings := []rbacv1.ClusterRoleBinding{
		clusterBindingToGroups("cluster-admin", user.SystemPrivilegedGroup),
		clusterBindingToGroups("system:discovery", user.AllAuthenticated),
		clusterBindingToGroups("system:basic-user", user.AllAuthenticated),
		clusterBindingToGroups("system:public-info-viewer", user.AllAuthenticated, user.AllUnauthenticated),
	}
	for i := range bindings {
		markBootstrap(&bindings[i].ObjectMeta)
	}
	return bindings
}

func clusterBindingToGroups(role string, groups ...string) rbacv1.ClusterRoleBinding {
	b := rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
	}
	for _, g := range groups {
		b.Subjects = append(b.Subjects, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: g})
	}
	return b
}

func markBootstrap(m *metav1.ObjectMeta) {
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	m.Labels[BootstrappingLabelKey] = BootstrappingLabelValue
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[rbacv1.AutoUpdateAnnotationKey] = "true"
}

// EnsureBootstrapPolicy creates every bootstrap ClusterRole and
// ClusterRoleBinding that does not exist yet. Existing objects are left alone
// even if they differ, so an administrator's edits survive restarts. It is
// safe to call on every start and from several servers at once: losing a
// create race is AlreadyExists, which counts as success.
//
// Roles are created before bindings so that a binding never briefly points at
// a missing role. Every object is attempted even if an earlier one failed; the
// failures are joined and each wraps the API error.
func EnsureBootstrapPolicy(ctx context.Context, c kubernetes.Interface) error {
	var errs []error
	for _, role := range BootstrapClusterRoles() {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, fmt.Errorf("ensuring bootstrap RBAC policy: %w", err))...)
		}
		_, err := c.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			errs = append(errs, fmt.Errorf("creating bootstrap clusterrole %q: %w", role.Name, err))
		}
	}
	for _, binding := range BootstrapClusterRoleBindings() {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, fmt.Errorf("ensuring bootstrap RBAC policy: %w", err))...)
		}
		_, err := c.RbacV1().ClusterRoleBindings().Create(ctx, &binding, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			errs = append(errs, fmt.Errorf("creating bootstrap clusterrolebinding %q: %w", binding.Name, err))
		}
	}
	return errors.Join(errs...)
}
