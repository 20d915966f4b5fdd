package defaults

import (
	rbacv1 "k8s.io/api/rbac/v1"
)

// Bindings may only refer to roles of the RBAC group, so Kubernetes fills the
// roleRef group in rather than making every client spell it out.
func setRoleBinding(b *rbacv1.RoleBinding) {
	if b.RoleRef.APIGroup == "" {
		b.RoleRef.APIGroup = rbacv1.GroupName
	}
	setSubjects(b.Subjects)
}

func setClusterRoleBinding(b *rbacv1.ClusterRoleBinding) {
	if b.RoleRef.APIGroup == "" {
		b.RoleRef.APIGroup = rbacv1.GroupName
	}
	setSubjects(b.Subjects)
}

// setSubjects gives users and groups the RBAC group and leaves service
// accounts in the core group, the only combinations validation accepts.
func setSubjects(subjects []rbacv1.Subject) {
	for i := range subjects {
		s := &subjects[i]
		if s.APIGroup != "" {
			continue
		}
		switch s.Kind {
		case rbacv1.UserKind, rbacv1.GroupKind:
			s.APIGroup = rbacv1.GroupName
		}
	}
}
