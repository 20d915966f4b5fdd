package auth

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
)

// RBAC authorises requests from Roles, ClusterRoles and their bindings, read
// through informer listers so that a decision never costs a storage round trip.
// It also answers "what may this user do here" for SelfSubjectRulesReview.
//
// It folds in kube-apiserver's privileged-group authoriser: members of
// system:masters are allowed everything even when no binding says so, so an
// operator can always repair a broken policy.
type RBAC struct {
	roles               rbaclisters.RoleLister
	roleBindings        rbaclisters.RoleBindingLister
	clusterRoles        rbaclisters.ClusterRoleLister
	clusterRoleBindings rbaclisters.ClusterRoleBindingLister
}

var (
	_ authorizer.Authorizer   = (*RBAC)(nil)
	_ authorizer.RuleResolver = (*RBAC)(nil)
)

// NewRBAC returns an RBAC authoriser over the given listers. The listers'
// informers must be started and synced by the caller; until then every
// non-privileged request is denied.
func NewRBAC(roles rbaclisters.RoleLister, roleBindings rbaclisters.RoleBindingLister, clusterRoles rbaclisters.ClusterRoleLister, clusterRoleBindings rbaclisters.ClusterRoleBindingLister) *RBAC {
	return &RBAC{
		roles:               roles,
		roleBindings:        roleBindings,
		clusterRoles:        clusterRoles,
		clusterRoleBindings: clusterRoleBindings,
	}
}

// Authorize allows the request if any rule reachable from the user's bindings
// grants it. A refusal is NoOpinion rather than Deny, as in Kubernetes, so
// that another authoriser in a union may still allow it. The reason is empty
// unless some binding could not be resolved: the apiserver builds the 403
// message from the request attributes and appends the reason only when set,
// which keeps the message identical to kube-apiserver's.
func (r *RBAC) Authorize(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	if attrs == nil || attrs.GetUser() == nil {
		return authorizer.DecisionNoOpinion, "", fmt.Errorf("RBAC: %w", ErrNoUser)
	}
	u := attrs.GetUser()
	if isPrivileged(u) {
		return authorizer.DecisionAllow, "", nil
	}

	v := authorizingVisitor{attrs: attrs}
	r.visitRulesFor(u, attrs.GetNamespace(), v.visit)
	if v.allowed {
		return authorizer.DecisionAllow, v.reason, nil
	}
	reason := ""
	if len(v.errs) > 0 {
		reason = fmt.Sprintf("RBAC: %v", utilerrors.NewAggregate(v.errs))
	}
	return authorizer.DecisionNoOpinion, reason, nil
}

// ConditionsAwareAuthorize exists because RBAC never returns conditional
// decisions; the library contract says to wrap Authorize.
func (r *RBAC) ConditionsAwareAuthorize(ctx context.Context, attrs authorizer.Attributes) authorizer.ConditionsAwareDecision {
	return authorizer.ConditionsAwareDecisionFromParts(r.Authorize(ctx, attrs))
}

// EvaluateConditions fails closed: RBAC issues no conditions, so a request to
// evaluate some is a wiring mistake that must not turn into an allow.
func (r *RBAC) EvaluateConditions(context.Context, authorizer.ConditionsAwareDecision, authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, "", authorizer.ErrorConditionEvaluationNotSupported
}

// RulesFor lists every rule that applies to the user in namespace (cluster
// bindings included). Rules that resolved are returned even when others did
// not, because rules are purely additive: a partial list is still true.
func (r *RBAC) RulesFor(_ context.Context, u user.Info, namespace string) ([]authorizer.ResourceRuleInfo, []authorizer.NonResourceRuleInfo, bool, error) {
	if u == nil {
		return nil, nil, false, fmt.Errorf("RBAC: %w", ErrNoUser)
	}
	if isPrivileged(u) {
		// system:masters is allowed by membership, not by any rule, so the
		// review has to say so explicitly or the UI would show nothing.
		return []authorizer.ResourceRuleInfo{&authorizer.DefaultResourceRuleInfo{
				Verbs:     []string{rbacv1.VerbAll},
				APIGroups: []string{rbacv1.APIGroupAll},
				Resources: []string{rbacv1.ResourceAll},
			}}, []authorizer.NonResourceRuleInfo{&authorizer.DefaultNonResourceRuleInfo{
				Verbs:           []string{rbacv1.VerbAll},
				NonResourceURLs: []string{rbacv1.NonResourceAll},
			}}, false, nil
	}

	var (
		resourceRules    []authorizer.ResourceRuleInfo
		nonResourceRules []authorizer.NonResourceRuleInfo
		errs             []error
	)
	r.visitRulesFor(u, namespace, func(_ fmt.Stringer, rule *rbacv1.PolicyRule, err error) bool {
		if err != nil {
			errs = append(errs, err)
		}
		if rule == nil {
			return true
		}
		if len(rule.Resources) > 0 {
			resourceRules = append(resourceRules, &authorizer.DefaultResourceRuleInfo{
				Verbs:         rule.Verbs,
				APIGroups:     rule.APIGroups,
				Resources:     rule.Resources,
				ResourceNames: rule.ResourceNames,
			})
		}
		if len(rule.NonResourceURLs) > 0 {
			nonResourceRules = append(nonResourceRules, &authorizer.DefaultNonResourceRuleInfo{
				Verbs:           rule.Verbs,
				NonResourceURLs: rule.NonResourceURLs,
			})
		}
		return true
	})
	return resourceRules, nonResourceRules, false, utilerrors.NewAggregate(errs)
}

func isPrivileged(u user.Info) bool {
	for _, g := range u.GetGroups() {
		if g == user.SystemPrivilegedGroup {
			return true
		}
	}
	return false
}

// authorizingVisitor stops at the first granting rule and keeps resolution
// errors, which only matter (as the reason) when nothing granted the request.
type authorizingVisitor struct {
	attrs   authorizer.Attributes
	allowed bool
	reason  string
	errs    []error
}

func (v *authorizingVisitor) visit(source fmt.Stringer, rule *rbacv1.PolicyRule, err error) bool {
	if rule != nil && ruleAllows(v.attrs, rule) {
		v.allowed = true
		v.reason = "RBAC: allowed by " + source.String()
		return false
	}
	if err != nil {
		v.errs = append(v.errs, err)
	}
	return true
}

// ruleVisitor receives each applicable rule with where it came from, or a
// resolution error with a nil rule. Returning false stops the walk.
type ruleVisitor func(source fmt.Stringer, rule *rbacv1.PolicyRule, err error) bool

// visitRulesFor walks cluster-wide bindings first and then the bindings of
// namespace, the order Kubernetes uses, so "allowed by" reasons match.
func (r *RBAC) visitRulesFor(u user.Info, namespace string, visit ruleVisitor) {
	crbs, err := r.clusterRoleBindings.List(labels.Everything())
	if err != nil {
		if !visit(nil, nil, fmt.Errorf("listing clusterrolebindings: %w", err)) {
			return
		}
	}
	for _, b := range crbs {
		i, ok := appliesTo(u, b.Subjects, "")
		if !ok {
			continue
		}
		rules, err := r.roleRefRules(b.RoleRef, "")
		if err != nil {
			if !visit(nil, nil, err) {
				return
			}
			continue
		}
		src := &clusterRoleBindingSource{binding: b, subject: &b.Subjects[i]}
		for j := range rules {
			if !visit(src, &rules[j], nil) {
				return
			}
		}
	}

	// Cluster-scoped requests have no namespace, and RoleBindings only ever
	// grant inside their own namespace.
	if namespace == "" {
		return
	}
	rbs, err := r.roleBindings.RoleBindings(namespace).List(labels.Everything())
	if err != nil {
		visit(nil, nil, fmt.Errorf("listing rolebindings in %q: %w", namespace, err))
		return
	}
	for _, b := range rbs {
		i, ok := appliesTo(u, b.Subjects, namespace)
		if !ok {
			continue
		}
		rules, err := r.roleRefRules(b.RoleRef, namespace)
		if err != nil {
			if !visit(nil, nil, err) {
				return
			}
			continue
		}
		src := &roleBindingSource{binding: b, subject: &b.Subjects[i]}
		for j := range rules {
			if !visit(src, &rules[j], nil) {
				return
			}
		}
	}
}

// roleRefRules resolves a binding's roleRef. The lister's NotFound error is
// returned as is: its text ("clusterrole.rbac.authorization.k8s.io \"x\" not
// found") is what Kubernetes puts in the denial reason.
func (r *RBAC) roleRefRules(ref rbacv1.RoleRef, bindingNamespace string) ([]rbacv1.PolicyRule, error) {
	switch ref.Kind {
	case "Role":
		role, err := r.roles.Roles(bindingNamespace).Get(ref.Name)
		if err != nil {
			return nil, err
		}
		return role.Rules, nil
	case "ClusterRole":
		role, err := r.clusterRoles.Get(ref.Name)
		if err != nil {
			return nil, err
		}
		return role.Rules, nil
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedRoleRefKind, ref.Kind)
	}
}

// appliesTo returns the index of the first subject that names u.
func appliesTo(u user.Info, subjects []rbacv1.Subject, bindingNamespace string) (int, bool) {
	for i := range subjects {
		if subjectMatches(u, &subjects[i], bindingNamespace) {
			return i, true
		}
	}
	return 0, false
}

func subjectMatches(u user.Info, s *rbacv1.Subject, bindingNamespace string) bool {
	switch s.Kind {
	case rbacv1.UserKind:
		return u.GetName() == s.Name
	case rbacv1.GroupKind:
		for _, g := range u.GetGroups() {
			if g == s.Name {
				return true
			}
		}
		return false
	case rbacv1.ServiceAccountKind:
		// A RoleBinding may leave the namespace out to mean its own; a
		// ClusterRoleBinding has no namespace to default to.
		ns := s.Namespace
		if ns == "" {
			ns = bindingNamespace
		}
		if ns == "" {
			return false
		}
		return serviceaccount.MatchesUsername(ns, s.Name, u.GetName())
	default:
		return false
	}
}

// The sources are fmt.Stringers so the description is only built for the
// one rule that grants, not for every rule inspected.
type clusterRoleBindingSource struct {
	binding *rbacv1.ClusterRoleBinding
	subject *rbacv1.Subject
}

func (s *clusterRoleBindingSource) String() string {
	return fmt.Sprintf("ClusterRoleBinding %q of %s %q to %s",
		s.binding.Name, s.binding.RoleRef.Kind, s.binding.RoleRef.Name, describeSubject(s.subject, ""))
}

type roleBindingSource struct {
	binding *rbacv1.RoleBinding
	subject *rbacv1.Subject
}

func (s *roleBindingSource) String() string {
	return fmt.Sprintf("RoleBinding %q of %s %q to %s",
		s.binding.Name+"/"+s.binding.Namespace, s.binding.RoleRef.Kind, s.binding.RoleRef.Name, describeSubject(s.subject, s.binding.Namespace))
}

func describeSubject(s *rbacv1.Subject, bindingNamespace string) string {
	if s.Kind != rbacv1.ServiceAccountKind {
		return fmt.Sprintf("%s %q", s.Kind, s.Name)
	}
	ns := s.Namespace
	if ns == "" {
		ns = bindingNamespace
	}
	return fmt.Sprintf("%s %q", s.Kind, s.Name+"/"+ns)
}
