package auth

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
)

func withUser(u user.Info) context.Context {
	return genericapirequest.WithUser(context.Background(), u)
}

func ssar(ra *authorizationv1.ResourceAttributes, nra *authorizationv1.NonResourceAttributes) *authorizationv1.SelfSubjectAccessReview {
	return &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: ra, NonResourceAttributes: nra}}
}

// invalidFields returns the field paths of an Invalid error, or nil.
func invalidFields(err error) []string {
	var status *apierrors.StatusError
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) || status.ErrStatus.Details == nil {
		return nil
	}
	var fields []string
	for _, c := range status.ErrStatus.Details.Causes {
		fields = append(fields, c.Field)
	}
	return fields
}

func TestSelfSubjectAccessReviewCreate(t *testing.T) {
	alice := testUser("alice", "devs")
	injected := errors.New("injected")
	tests := []struct {
		name       string
		ctx        context.Context
		obj        runtime.Object
		decision   authorizer.Decision
		reason     string
		authzErr   error
		validation rest.ValidateObjectFunc
		wantStatus authorizationv1.SubjectAccessReviewStatus
		wantAttrs  *authorizer.AttributesRecord
		wantBad    bool     // BadRequest
		wantFields []string // Invalid on these fields
		wantErrIs  error
	}{
		{
			name: "resource allowed", ctx: withUser(alice),
			obj:      ssar(&authorizationv1.ResourceAttributes{Namespace: "ns1", Verb: "get", Group: "apps", Resource: "deployments", Subresource: "scale", Name: "web"}, nil),
			decision: authorizer.DecisionAllow, reason: "because",
			wantStatus: authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "because"},
			wantAttrs: &authorizer.AttributesRecord{User: alice, Verb: "get", Namespace: "ns1", APIGroup: "apps", APIVersion: "*",
				Resource: "deployments", Subresource: "scale", Name: "web", ResourceRequest: true},
		},
		{
			name: "explicit version kept", ctx: withUser(alice),
			obj:        ssar(&authorizationv1.ResourceAttributes{Verb: "list", Version: "v1", Resource: "pods"}, nil),
			decision:   authorizer.DecisionNoOpinion,
			wantStatus: authorizationv1.SubjectAccessReviewStatus{},
			wantAttrs:  &authorizer.AttributesRecord{User: alice, Verb: "list", APIVersion: "v1", Resource: "pods", ResourceRequest: true},
		},
		{
			name: "non-resource denied", ctx: withUser(alice),
			obj:      ssar(nil, &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}),
			decision: authorizer.DecisionDeny, reason: "no",
			wantStatus: authorizationv1.SubjectAccessReviewStatus{Denied: true, Reason: "no"},
			wantAttrs:  &authorizer.AttributesRecord{User: alice, Verb: "get", Path: "/metrics"},
		},
		{
			name: "evaluation error", ctx: withUser(alice),
			obj:      ssar(&authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods"}, nil),
			decision: authorizer.DecisionNoOpinion, authzErr: injected,
			wantStatus: authorizationv1.SubjectAccessReviewStatus{EvaluationError: "injected"},
		},
		{
			name: "unparsable label selector is ignored and reported", ctx: withUser(alice),
			obj: ssar(&authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods",
				LabelSelector: &authorizationv1.LabelSelectorAttributes{RawSelector: "a in ("}}, nil),
			decision:   authorizer.DecisionAllow,
			wantStatus: authorizationv1.SubjectAccessReviewStatus{Allowed: true, EvaluationError: "spec.resourceAttributes.labelSelector ignored due to parse error"},
		},
		{
			name: "partly usable field selector", ctx: withUser(alice),
			obj: ssar(&authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods",
				FieldSelector: &authorizationv1.FieldSelectorAttributes{Requirements: []metav1.FieldSelectorRequirement{
					{Key: "spec.nodeName", Operator: metav1.FieldSelectorOpIn, Values: []string{"n1"}},
					{Key: "metadata.name", Operator: metav1.FieldSelectorOpExists},
				}}}, nil),
			decision:   authorizer.DecisionAllow,
			wantStatus: authorizationv1.SubjectAccessReviewStatus{Allowed: true, EvaluationError: "spec.resourceAttributes.fieldSelector partially ignored due to parse error"},
		},
		{
			name: "both attribute kinds", ctx: withUser(alice),
			obj:        ssar(&authorizationv1.ResourceAttributes{Verb: "get"}, &authorizationv1.NonResourceAttributes{Path: "/", Verb: "get"}),
			wantFields: []string{"spec.nonResourceAttributes"},
		},
		{
			name: "neither attribute kind", ctx: withUser(alice),
			obj:        ssar(nil, nil),
			wantFields: []string{"spec.resourceAttributes"},
		},
		{
			name: "metadata set", ctx: withUser(alice),
			obj: &authorizationv1.SelfSubjectAccessReview{ObjectMeta: metav1.ObjectMeta{Name: "x"},
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/", Verb: "get"}}},
			wantFields: []string{"metadata"},
		},
		{
			name: "selector in both forms", ctx: withUser(alice),
			obj: ssar(&authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods",
				LabelSelector: &authorizationv1.LabelSelectorAttributes{RawSelector: "a=b", Requirements: []metav1.LabelSelectorRequirement{{Key: "a", Operator: metav1.LabelSelectorOpExists}}}}, nil),
			wantFields: []string{"spec.resourceAttributes.labelSelector.rawSelector"},
		},
		{
			name: "empty selector", ctx: withUser(alice),
			obj: ssar(&authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods",
				FieldSelector: &authorizationv1.FieldSelectorAttributes{}}, nil),
			wantFields: []string{"spec.resourceAttributes.fieldSelector.requirements"},
		},
		{
			name: "no user", ctx: context.Background(),
			obj:     ssar(&authorizationv1.ResourceAttributes{Verb: "get"}, nil),
			wantBad: true,
		},
		{
			name: "wrong type", ctx: withUser(alice),
			obj:     &authorizationv1.SelfSubjectRulesReview{},
			wantBad: true,
		},
		{
			name: "create validation refuses", ctx: withUser(alice),
			obj:        ssar(&authorizationv1.ResourceAttributes{Verb: "get"}, nil),
			validation: func(context.Context, runtime.Object) error { return injected },
			wantErrIs:  injected,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotAttrs authorizer.Attributes
			authz := authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
				gotAttrs = a
				return tt.decision, tt.reason, tt.authzErr
			})
			out, err := NewSelfSubjectAccessReviewREST(authz).Create(tt.ctx, tt.obj, tt.validation, &metav1.CreateOptions{})
			switch {
			case tt.wantBad:
				if !apierrors.IsBadRequest(err) {
					t.Fatalf("err = %v, want BadRequest", err)
				}
				return
			case tt.wantFields != nil:
				if got := strings.Join(invalidFields(err), ","); got != strings.Join(tt.wantFields, ",") {
					t.Fatalf("err = %v (fields %q), want Invalid on %q", err, got, tt.wantFields)
				}
				return
			case tt.wantErrIs != nil:
				if !errors.Is(err, tt.wantErrIs) {
					t.Fatalf("err = %v, want %v", err, tt.wantErrIs)
				}
				return
			case err != nil:
				t.Fatalf("Create: %v", err)
			}
			review := out.(*authorizationv1.SelfSubjectAccessReview)
			if review.Status != tt.wantStatus {
				t.Errorf("status = %+v, want %+v", review.Status, tt.wantStatus)
			}
			if tt.wantAttrs != nil {
				got, ok := gotAttrs.(authorizer.AttributesRecord)
				if !ok || !reflect.DeepEqual(got, *tt.wantAttrs) {
					t.Errorf("attributes = %+v, want %+v", gotAttrs, *tt.wantAttrs)
				}
			}
		})
	}
}

func TestSelfSubjectAccessReviewWithRBAC(t *testing.T) {
	r := NewSelfSubjectAccessReviewREST(rbacFixture(t))
	tests := []struct {
		user    user.Info
		attrs   *authorizationv1.ResourceAttributes
		allowed bool
	}{
		{testUser("bob"), &authorizationv1.ResourceAttributes{Namespace: "ns1", Verb: "delete", Resource: "configmaps"}, true},
		{testUser("bob"), &authorizationv1.ResourceAttributes{Namespace: "ns2", Verb: "delete", Resource: "configmaps"}, false},
		{testUser("root", user.SystemPrivilegedGroup), &authorizationv1.ResourceAttributes{Verb: "*", Group: "*", Resource: "*"}, true},
	}
	for _, tt := range tests {
		out, err := r.Create(withUser(tt.user), ssar(tt.attrs, nil), nil, &metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if got := out.(*authorizationv1.SelfSubjectAccessReview).Status.Allowed; got != tt.allowed {
			t.Errorf("%s %+v: allowed = %v, want %v", tt.user.GetName(), tt.attrs, got, tt.allowed)
		}
	}
}

func TestReviewStorageMetadata(t *testing.T) {
	sar, srr := NewSelfSubjectAccessReviewREST(nil), NewSelfSubjectRulesReviewREST(nil)
	if _, ok := sar.New().(*authorizationv1.SelfSubjectAccessReview); !ok {
		t.Errorf("SelfSubjectAccessReviewREST.New() = %T", sar.New())
	}
	if _, ok := srr.New().(*authorizationv1.SelfSubjectRulesReview); !ok {
		t.Errorf("SelfSubjectRulesReviewREST.New() = %T", srr.New())
	}
	if sar.NamespaceScoped() || srr.NamespaceScoped() {
		t.Error("reviews must be cluster-scoped")
	}
	if sar.GetSingularName() != "selfsubjectaccessreview" || srr.GetSingularName() != "selfsubjectrulesreview" {
		t.Errorf("singular names %q, %q", sar.GetSingularName(), srr.GetSingularName())
	}
	sar.Destroy()
	srr.Destroy()

	_, err := sar.Create(withUser(testUser("a")), ssar(&authorizationv1.ResourceAttributes{Verb: "get"}, nil), nil, nil)
	// StatusErrors do not unwrap, so the sentinel can only be seen in the text.
	if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), ErrNoAuthorizer.Error()) {
		t.Errorf("Create without authorizer: err = %v, want internal error about ErrNoAuthorizer", err)
	}
	_, err = srr.Create(withUser(testUser("a")), &authorizationv1.SelfSubjectRulesReview{Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "ns1"}}, nil, nil)
	if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), ErrNoAuthorizer.Error()) {
		t.Errorf("Create without resolver: err = %v, want internal error about ErrNoAuthorizer", err)
	}
}

// incompleteResolver stands in for an authoriser that cannot list its rules.
type incompleteResolver struct{}

func (incompleteResolver) RulesFor(context.Context, user.Info, string) ([]authorizer.ResourceRuleInfo, []authorizer.NonResourceRuleInfo, bool, error) {
	return nil, nil, true, errors.New("cannot enumerate")
}

func TestSelfSubjectRulesReviewCreate(t *testing.T) {
	rbac := rbacFixture(t)
	srr := func(ns string) *authorizationv1.SelfSubjectRulesReview {
		return &authorizationv1.SelfSubjectRulesReview{Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: ns}}
	}
	tests := []struct {
		name       string
		resolver   authorizer.RuleResolver
		ctx        context.Context
		obj        runtime.Object
		wantRes    []authorizationv1.ResourceRule
		wantURLs   []authorizationv1.NonResourceRule
		incomplete bool
		evalErrHas string
		wantBad    bool
	}{
		{
			name: "namespace rules", resolver: rbac, ctx: withUser(testUser("bob")), obj: srr("ns1"),
			wantRes:  []authorizationv1.ResourceRule{{Verbs: []string{"*"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}},
			wantURLs: []authorizationv1.NonResourceRule{},
		},
		{
			name: "nothing", resolver: rbac, ctx: withUser(testUser("bob")), obj: srr("ns2"),
			wantRes: []authorizationv1.ResourceRule{}, wantURLs: []authorizationv1.NonResourceRule{},
		},
		{
			name: "masters get one star rule", resolver: rbac, ctx: withUser(testUser("root", user.SystemPrivilegedGroup)), obj: srr("ns1"),
			wantRes:  []authorizationv1.ResourceRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}},
			wantURLs: []authorizationv1.NonResourceRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}},
		},
		{
			name: "partial rules with error", resolver: rbac, ctx: withUser(testUser("carol", "devs")), obj: srr("ns1"),
			wantRes:    []authorizationv1.ResourceRule{},
			wantURLs:   []authorizationv1.NonResourceRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz", "/logs/*"}}},
			evalErrHas: `"missing" not found`,
		},
		{
			name: "incomplete", resolver: incompleteResolver{}, ctx: withUser(testUser("bob")), obj: srr("ns1"),
			wantRes: []authorizationv1.ResourceRule{}, wantURLs: []authorizationv1.NonResourceRule{},
			incomplete: true, evalErrHas: "cannot enumerate",
		},
		{name: "no namespace", resolver: rbac, ctx: withUser(testUser("bob")), obj: srr(""), wantBad: true},
		{name: "no user", resolver: rbac, ctx: context.Background(), obj: srr("ns1"), wantBad: true},
		{name: "wrong type", resolver: rbac, ctx: withUser(testUser("bob")), obj: ssar(nil, nil), wantBad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := NewSelfSubjectRulesReviewREST(tt.resolver).Create(tt.ctx, tt.obj, nil, &metav1.CreateOptions{})
			if tt.wantBad {
				if !apierrors.IsBadRequest(err) {
					t.Fatalf("err = %v, want BadRequest", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			st := out.(*authorizationv1.SelfSubjectRulesReview).Status
			if st.ResourceRules == nil || st.NonResourceRules == nil {
				t.Errorf("rule lists must be empty, not nil: %+v", st)
			}
			if !equalJSON(t, st.ResourceRules, tt.wantRes) {
				t.Errorf("resource rules = %+v, want %+v", st.ResourceRules, tt.wantRes)
			}
			if !equalJSON(t, st.NonResourceRules, tt.wantURLs) {
				t.Errorf("non-resource rules = %+v, want %+v", st.NonResourceRules, tt.wantURLs)
			}
			if st.Incomplete != tt.incomplete {
				t.Errorf("incomplete = %v, want %v", st.Incomplete, tt.incomplete)
			}
			if (tt.evalErrHas == "") != (st.EvaluationError == "") || !strings.Contains(st.EvaluationError, tt.evalErrHas) {
				t.Errorf("evaluationError = %q, want %q", st.EvaluationError, tt.evalErrHas)
			}
		})
	}
}
