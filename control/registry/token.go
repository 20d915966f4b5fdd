package registry

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/barge-dev/barge/control/auth"
)

// Token lifetimes, as Kubernetes bounds them.
const (
	defaultTokenExpiry = time.Hour
	minTokenExpiry     = 10 * time.Minute
	maxTokenExpiry     = 48 * time.Hour
)

// tokenREST is serviceaccounts/token (TokenRequest): `kubectl create
// token` and kubelets get short-lived signed tokens for a service account.
type tokenREST struct {
	serviceAccounts *genericregistry.Store
	pods            *genericregistry.Store
	issuer          *auth.TokenIssuer
	// audiences are the API server's own, given to tokens that ask for none.
	audiences []string
}

func (r *tokenREST) New() runtime.Object   { return &authenticationv1.TokenRequest{} }
func (r *tokenREST) Destroy()              {}
func (r *tokenREST) NamespaceScoped() bool { return true }

func (r *tokenREST) GroupVersionKind(schema.GroupVersion) schema.GroupVersionKind {
	return authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")
}

func (r *tokenREST) Create(ctx context.Context, name string, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	if r.issuer == nil {
		return nil, apierrors.NewServiceUnavailable("service account tokens are not configured on this API server (no signing key)")
	}
	req, ok := obj.(*authenticationv1.TokenRequest)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a TokenRequest: %T", obj))
	}
	if createValidation != nil {
		if err := createValidation(ctx, req.DeepCopyObject()); err != nil {
			return nil, err
		}
	}
	expiry := defaultTokenExpiry
	if req.Spec.ExpirationSeconds != nil {
		expiry = time.Duration(*req.Spec.ExpirationSeconds) * time.Second
	}
	if expiry < minTokenExpiry || expiry > maxTokenExpiry {
		return nil, apierrors.NewInvalid(authenticationv1.SchemeGroupVersion.WithKind("TokenRequest").GroupKind(), name, field.ErrorList{
			field.Invalid(field.NewPath("spec", "expirationSeconds"), int64(expiry/time.Second),
				fmt.Sprintf("must be between %d and %d seconds", int64(minTokenExpiry/time.Second), int64(maxTokenExpiry/time.Second))),
		})
	}
	obj, err := r.serviceAccounts.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	sa := obj.(*corev1.ServiceAccount)
	var bound *authenticationv1.BoundObjectReference
	if ref := req.Spec.BoundObjectRef; ref != nil {
		if ref.Kind != "Pod" {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("spec.boundObjectRef.kind: tokens can be bound to pods only, not %q", ref.Kind))
		}
		// A token bound to a pod names a pod that exists now, runs as
		// this service account, and has the uid given (if one is).
		obj, err := r.pods.Get(ctx, ref.Name, &metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		pod := obj.(*corev1.Pod)
		if ref.UID != "" && ref.UID != pod.UID {
			return nil, apierrors.NewConflict(corev1.Resource("pods"), ref.Name, fmt.Errorf("the UID in the bound object reference (%s) does not match the pod's (%s)", ref.UID, pod.UID))
		}
		if pod.Spec.ServiceAccountName != sa.Name {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("pod %s runs as service account %q, not %q", pod.Name, pod.Spec.ServiceAccountName, sa.Name))
		}
		bound = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	audiences := req.Spec.Audiences
	if len(audiences) == 0 {
		audiences = r.audiences
	}
	token, expires, err := r.issuer.IssueBound(sa, bound, audiences, expiry, time.Now())
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("sign token: %w", err))
	}
	out := req.DeepCopy()
	out.Name, out.Namespace = sa.Name, sa.Namespace
	out.Spec.Audiences = audiences
	out.Status = authenticationv1.TokenRequestStatus{Token: token, ExpirationTimestamp: metav1.NewTime(expires)}
	return out, nil
}
