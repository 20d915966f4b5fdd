package auth

import (
	"context"
	"fmt"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
)

// SelfSubjectAccessReviewREST serves authorization.k8s.io/v1
// selfsubjectaccessreviews: "may I do X?", answered by the same authoriser
// that guards real requests, for the user making the review. Nothing is
// stored; Create only computes the status.
type SelfSubjectAccessReviewREST struct {
	authz authorizer.Authorizer
}

var (
	_ rest.Storage              = (*SelfSubjectAccessReviewREST)(nil)
	_ rest.Creater              = (*SelfSubjectAccessReviewREST)(nil)
	_ rest.Scoper               = (*SelfSubjectAccessReviewREST)(nil)
	_ rest.SingularNameProvider = (*SelfSubjectAccessReviewREST)(nil)
)

// NewSelfSubjectAccessReviewREST answers reviews with a. Pass the server's
// full authoriser chain, not RBAC alone, or reviews would disagree with what
// requests actually get.
func NewSelfSubjectAccessReviewREST(a authorizer.Authorizer) *SelfSubjectAccessReviewREST {
	return &SelfSubjectAccessReviewREST{authz: a}
}

// New returns an empty review for the decoder.
func (r *SelfSubjectAccessReviewREST) New() runtime.Object {
	return &authorizationv1.SelfSubjectAccessReview{}
}

// Destroy has nothing to release: there is no backing store.
func (r *SelfSubjectAccessReviewREST) Destroy() {}

// NamespaceScoped is false: the namespace in question is part of the spec.
func (r *SelfSubjectAccessReviewREST) NamespaceScoped() bool { return false }

// GetSingularName is used by discovery and kubectl.
func (r *SelfSubjectAccessReviewREST) GetSingularName() string { return "selfsubjectaccessreview" }

// Create evaluates the review for the requesting user and returns it with
// status filled in.
func (r *SelfSubjectAccessReviewREST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	review, ok := obj.(*authorizationv1.SelfSubjectAccessReview)
	if !ok || review == nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a SelfSubjectAccessReview: %T", obj))
	}
	if errs := validateSelfSubjectAccessReview(review); len(errs) > 0 {
		return nil, apierrors.NewInvalid(authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectAccessReview").GroupKind(), "", errs)
	}
	u, ok := genericapirequest.UserFrom(ctx)
	if !ok || u == nil {
		return nil, apierrors.NewBadRequest("no user present on request")
	}
	if createValidation != nil {
		if err := createValidation(ctx, review.DeepCopyObject()); err != nil {
			return nil, err
		}
	}
	if r.authz == nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("selfsubjectaccessreviews: %w", ErrNoAuthorizer))
	}

	var attrs authorizer.AttributesRecord
	if ra := review.Spec.ResourceAttributes; ra != nil {
		attrs = resourceAttributesFrom(u, ra)
	} else {
		attrs = nonResourceAttributesFrom(u, review.Spec.NonResourceAttributes)
	}
	decision, reason, err := r.authz.Authorize(ctx, attrs)
	review.Status = authorizationv1.SubjectAccessReviewStatus{
		Allowed:         decision == authorizer.DecisionAllow,
		Denied:          decision == authorizer.DecisionDeny,
		Reason:          reason,
		EvaluationError: evaluationError(err, attrs),
	}
	return review, nil
}

// SelfSubjectRulesReviewREST serves authorization.k8s.io/v1
// selfsubjectrulesreviews: "what may I do in this namespace?". It exists for
// UIs and kubectl auth can-i --list; the answer is advisory, which is why an
// incomplete list is returned with an evaluation error rather than failing.
type SelfSubjectRulesReviewREST struct {
	rules authorizer.RuleResolver
}

var (
	_ rest.Storage              = (*SelfSubjectRulesReviewREST)(nil)
	_ rest.Creater              = (*SelfSubjectRulesReviewREST)(nil)
	_ rest.Scoper               = (*SelfSubjectRulesReviewREST)(nil)
	_ rest.SingularNameProvider = (*SelfSubjectRulesReviewREST)(nil)
)

// NewSelfSubjectRulesReviewREST answers reviews from r.
func NewSelfSubjectRulesReviewREST(r authorizer.RuleResolver) *SelfSubjectRulesReviewREST {
	return &SelfSubjectRulesReviewREST{rules: r}
}

// New returns an empty review for the decoder.
func (r *SelfSubjectRulesReviewREST) New() runtime.Object {
	return &authorizationv1.SelfSubjectRulesReview{}
}

// Destroy has nothing to release: there is no backing store.
func (r *SelfSubjectRulesReviewREST) Destroy() {}

// NamespaceScoped is false: the namespace in question is part of the spec.
func (r *SelfSubjectRulesReviewREST) NamespaceScoped() bool { return false }

// GetSingularName is used by discovery and kubectl.
func (r *SelfSubjectRulesReviewREST) GetSingularName() string { return "selfsubjectrulesreview" }

// Create lists the requesting user's rules in spec.namespace.
func (r *SelfSubjectRulesReviewREST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	review, ok := obj.(*authorizationv1.SelfSubjectRulesReview)
	if !ok || review == nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a SelfSubjectRulesReview: %T", obj))
	}
	u, ok := genericapirequest.UserFrom(ctx)
	if !ok || u == nil {
		return nil, apierrors.NewBadRequest("no user present on request")
	}
	namespace := review.Spec.Namespace
	if namespace == "" {
		return nil, apierrors.NewBadRequest("no namespace on request")
	}
	if createValidation != nil {
		if err := createValidation(ctx, review.DeepCopyObject()); err != nil {
			return nil, err
		}
	}
	if r.rules == nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("selfsubjectrulesreviews: %w", ErrNoAuthorizer))
	}

	resourceInfos, nonResourceInfos, incomplete, err := r.rules.RulesFor(ctx, u, namespace)
	// Empty lists, not nil: the fields are required in the API and clients
	// expect [] rather than null.
	status := authorizationv1.SubjectRulesReviewStatus{
		ResourceRules:    make([]authorizationv1.ResourceRule, 0, len(resourceInfos)),
		NonResourceRules: make([]authorizationv1.NonResourceRule, 0, len(nonResourceInfos)),
		Incomplete:       incomplete,
	}
	for _, info := range resourceInfos {
		status.ResourceRules = append(status.ResourceRules, authorizationv1.ResourceRule{
			Verbs:         info.GetVerbs(),
			APIGroups:     info.GetAPIGroups(),
			Resources:     info.GetResources(),
			ResourceNames: info.GetResourceNames(),
		})
	}
	for _, info := range nonResourceInfos {
		status.NonResourceRules = append(status.NonResourceRules, authorizationv1.NonResourceRule{
			Verbs:           info.GetVerbs(),
			NonResourceURLs: info.GetNonResourceURLs(),
		})
	}
	if err != nil {
		status.EvaluationError = err.Error()
	}
	review.Status = status
	return review, nil
}
