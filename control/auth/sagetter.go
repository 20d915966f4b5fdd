package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// liveLookupTimeout bounds the fallback read: it runs inside authentication,
// and a slow API must not hold every request that carries a fresh token.
const liveLookupTimeout = 5 * time.Second

// ListerGetter adapts client-go listers to ServiceAccountGetter and
// PodGetter for the token authenticator.
//
// Informer caches lag writes, so a token used right after its service account
// (or pod) was created could be refused. When live is set, a cache miss is
// confirmed against the API before the token is rejected, as kube-apiserver
// does; hits are never re-read, so the steady state costs no requests.
type ListerGetter struct {
	serviceAccounts corelisters.ServiceAccountLister
	pods            corelisters.PodLister
	live            kubernetes.Interface
}

var (
	_ ServiceAccountGetter = (*ListerGetter)(nil)
	_ PodGetter            = (*ListerGetter)(nil)
)

// NewListerGetter returns a getter over the listers. pods may be nil, in which
// case pod-bound tokens are refused; live may be nil to trust the caches alone.
func NewListerGetter(serviceAccounts corelisters.ServiceAccountLister, pods corelisters.PodLister, live kubernetes.Interface) *ListerGetter {
	return &ListerGetter{serviceAccounts: serviceAccounts, pods: pods, live: live}
}

// Get returns the named service account.
func (g *ListerGetter) Get(namespace, name string) (*corev1.ServiceAccount, error) {
	sa, err := g.serviceAccounts.ServiceAccounts(namespace).Get(name)
	if err == nil || !apierrors.IsNotFound(err) || g.live == nil {
		return sa, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), liveLookupTimeout)
	defer cancel()
	sa, err = g.live.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("getting service account %s/%s: %w", namespace, name, err)
	}
	return sa, nil
}

// GetPod returns the named pod.
func (g *ListerGetter) GetPod(namespace, name string) (*corev1.Pod, error) {
	if g.pods == nil && g.live == nil {
		return nil, errors.New("pod lookups are not configured")
	}
	if g.pods != nil {
		pod, err := g.pods.Pods(namespace).Get(name)
		if err == nil || !apierrors.IsNotFound(err) || g.live == nil {
			return pod, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), liveLookupTimeout)
	defer cancel()
	pod, err := g.live.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("getting pod %s/%s: %w", namespace, name, err)
	}
	return pod, nil
}
