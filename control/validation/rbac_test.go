package validation

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRoles(t *testing.T) {
	role := &rbacv1.Role{ObjectMeta: meta("reader"), Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}}}
	expect(t, Create(role), nil)

	role.Rules = []rbacv1.PolicyRule{
		{Resources: []string{"pods"}},
		{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}},
		{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods", "services"}, ResourceNames: []string{"a"}},
	}
	expect(t, Create(role), []string{
		`rules[0].verbs: Required value: verbs must contain at least one value`,
		`rules[0].apiGroups: Required value: resource rules must supply at least one api group`,
		`rules[1].nonResourceURLs: Invalid value: ["/healthz"]: namespaced rules cannot apply to non-resource URLs`,
		`rules[2].resourceNames: Required value: resource names cannot apply to multiple resources`,
	})

	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "system:health"}, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}}}
	expect(t, Create(cr), nil)

	cr.Rules[0].Resources = []string{"pods"}
	cr.Name = "a/b"
	cr.AggregationRule = &rbacv1.AggregationRule{}
	expect(t, Create(cr), []string{
		`metadata.name: Invalid value: "a/b": may not contain '/'`,
		`rules[0].nonResourceURLs: Invalid value: ["/healthz"]: rules cannot apply to both regular resources and non-resource URLs`,
		`aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil`,
	})
}

func TestBindings(t *testing.T) {
	rb := &rbacv1.RoleBinding{
		ObjectMeta: meta("read-pods"),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
		Subjects: []rbacv1.Subject{
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"},
			{Kind: rbacv1.ServiceAccountKind, Name: "builder"},
		},
	}
	expect(t, Create(rb), nil)

	bad := rb.DeepCopy()
	bad.RoleRef = rbacv1.RoleRef{Kind: "Policy"}
	bad.Subjects = []rbacv1.Subject{{Kind: rbacv1.GroupKind}, {Kind: "Robot", Name: "r2"}, {Kind: rbacv1.ServiceAccountKind, Name: "sa", APIGroup: rbacv1.GroupName}}
	expect(t, Create(bad), []string{
		`roleRef.apiGroup: Unsupported value: "": supported values: "rbac.authorization.k8s.io"`,
		`roleRef.kind: Unsupported value: "Policy": supported values: "Role", "ClusterRole"`,
		`roleRef.name: Required value`,
		`subjects[0].name: Required value`,
		`subjects[0].name: Invalid value: "": group name cannot be empty`,
		`subjects[0].apiGroup: Unsupported value: "": supported values: "rbac.authorization.k8s.io"`,
		`subjects[1].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"`,
		`subjects[2].apiGroup: Unsupported value: "rbac.authorization.k8s.io": supported values: ""`,
	})

	old := rb.DeepCopy()
	old.ObjectMeta = stored(old.ObjectMeta)
	upd := old.DeepCopy()
	upd.RoleRef.Name = "admin"
	upd.Subjects = nil
	expect(t, Update(upd, old), []string{`roleRef: Invalid value: {"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"admin"}: cannot change roleRef`})

	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "builders"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "edit"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "builder"}},
	}
	expect(t, Create(crb), []string{
		`roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"`,
		`subjects[0].namespace: Required value`,
	})
}
