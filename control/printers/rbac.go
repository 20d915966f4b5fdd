package printers

import (
	"fmt"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// rbacPrinters covers the bindings only. Roles and clusterroles are left to
// the default convertor (NAME, CREATED AT) on purpose: that is what
// Kubernetes serves for them, and scripts parse that output.
func rbacPrinters() map[schema.GroupResource]resourcePrinter {
	return map[schema.GroupResource]resourcePrinter{
		{Group: rbacv1.GroupName, Resource: "rolebindings"}: bindingPrinter("roleBinding",
			rowsOf(func(b *rbacv1.RoleBinding, now time.Time) metav1.TableRow {
				return bindingRow(b.Name, b.RoleRef, b.Subjects, b.CreationTimestamp, now)
			}, func(l *rbacv1.RoleBindingList) []rbacv1.RoleBinding { return l.Items })),
		{Group: rbacv1.GroupName, Resource: "clusterrolebindings"}: bindingPrinter("clusterRoleBinding",
			rowsOf(func(b *rbacv1.ClusterRoleBinding, now time.Time) metav1.TableRow {
				return bindingRow(b.Name, b.RoleRef, b.Subjects, b.CreationTimestamp, now)
			}, func(l *rbacv1.ClusterRoleBindingList) []rbacv1.ClusterRoleBinding { return l.Items })),
	}
}

// bindingPrinter serves both binding kinds, which differ only in scope.
func bindingPrinter(kind string, rows rowsFunc) resourcePrinter {
	return resourcePrinter{
		columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Role", "string", rbacv1.RoleBinding{}.SwaggerDoc()["roleRef"]),
			ageColumn(),
			wideColumn("Users", "string", "Users in the "+kind),
			wideColumn("Groups", "string", "Groups in the "+kind),
			wideColumn("ServiceAccounts", "string", "ServiceAccounts in the "+kind),
		},
		rows: rows,
	}
}

func bindingRow(name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject, created metav1.Time, now time.Time) metav1.TableRow {
	var users, groups, sas []string
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			users = append(users, s.Name)
		case rbacv1.GroupKind:
			groups = append(groups, s.Name)
		case rbacv1.ServiceAccountKind:
			sas = append(sas, s.Namespace+"/"+s.Name)
		}
	}
	return cells(
		name,
		fmt.Sprintf("%s/%s", ref.Kind, ref.Name),
		age(created, now),
		strings.Join(users, ", "),
		strings.Join(groups, ", "),
		strings.Join(sas, ", "),
	)
}
