package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// errNotEmpty means deletion is under way but objects remain (pods on a
// node waiting for their agent, objects with finalizers).
var errNotEmpty = errors.New("namespace still has content")

// Namespaces empties terminating namespaces and gives every active one
// what Kubernetes puts in each: the "default" service account and the
// kube-root-ca.crt config map pods use to verify the API server.
type Namespaces struct {
	rootCA    string
	client    kubernetes.Interface
	dynamic   dynamic.Interface
	discovery discovery.DiscoveryInterface
	logger    *slog.Logger
	queue     workqueue.TypedRateLimitingInterface[string]
	informer  cache.SharedIndexInformer
}

// NewNamespaces builds the controller on a shared informer factory.
func NewNamespaces(client kubernetes.Interface, dyn dynamic.Interface, inf informers.SharedInformerFactory, rootCA []byte, logger *slog.Logger) (*Namespaces, error) {
	c := &Namespaces{
		rootCA:    string(rootCA),
		client:    client,
		dynamic:   dyn,
		discovery: client.Discovery(),
		logger:    logger.With("controller", "namespace"),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 10*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespace"}),
		informer: inf.Core().V1().Namespaces().Informer(),
	}
	enqueue := func(obj interface{}) {
		if ns, ok := obj.(*corev1.Namespace); ok {
			c.queue.Add(ns.Name)
		}
	}
	if _, err := c.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj interface{}) { enqueue(obj) },
	}); err != nil {
		return nil, fmt.Errorf("namespace controller: %w", err)
	}
	return c, nil
}

// Run works the queue until ctx ends.
func (c *Namespaces) Run(ctx context.Context) {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.informer.HasSynced) {
		return
	}
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	for c.processNext(ctx) {
	}
}

func (c *Namespaces) processNext(ctx context.Context) bool {
	name, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(name)
	err := c.sync(ctx, name)
	switch {
	case err == nil:
		c.queue.Forget(name)
	case errors.Is(err, errNotEmpty):
		c.queue.AddRateLimited(name)
	default:
		c.logger.Warn("sync failed", "namespace", name, "err", err)
		c.queue.AddRateLimited(name)
	}
	return true
}

func (c *Namespaces) sync(ctx context.Context, name string) error {
	obj, exists, err := c.informer.GetStore().GetByKey(name)
	if err != nil || !exists {
		return err
	}
	ns := obj.(*corev1.Namespace)
	if ns.DeletionTimestamp == nil {
		if err := c.ensureDefaultServiceAccount(ctx, ns); err != nil {
			return err
		}
		return c.ensureRootCA(ctx, ns)
	}
	if hasFinalizer(ns) {
		if err := c.deleteContent(ctx, ns.Name); err != nil {
			return err
		}
	}
	return c.finalize(ctx, ns)
}

func (c *Namespaces) ensureDefaultServiceAccount(ctx context.Context, ns *corev1.Namespace) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns.Name}}
	_, err := c.client.CoreV1().ServiceAccounts(ns.Name).Create(ctx, sa, metav1.CreateOptions{})
	return createdOrPresent(ns, "default service account", err)
}

// createdOrPresent reads the outcome of creating one of a namespace's
// default objects: already there is fine, and so is a refusal because the
// namespace began terminating meanwhile (a race with deletion).
func createdOrPresent(ns *corev1.Namespace, what string, err error) error {
	switch {
	case err == nil, apierrors.IsAlreadyExists(err):
		return nil
	case apierrors.IsForbidden(err) && ns.Status.Phase == corev1.NamespaceTerminating:
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// rootCAConfigMap is the config map Kubernetes publishes in every namespace.
const rootCAConfigMap = "kube-root-ca.crt"

func (c *Namespaces) ensureRootCA(ctx context.Context, ns *corev1.Namespace) error {
	if c.rootCA == "" {
		return nil
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: rootCAConfigMap, Namespace: ns.Name, Annotations: map[string]string{
			"kubernetes.io/description": "Contains a CA bundle that can be used to verify the API server when using internal endpoints such as the internal service IP or kubernetes.default.svc.",
		}},
		Data: map[string]string{"ca.crt": c.rootCA},
	}
	_, err := c.client.CoreV1().ConfigMaps(ns.Name).Create(ctx, cm, metav1.CreateOptions{})
	return createdOrPresent(ns, rootCAConfigMap, err)
}

// deleteContent deletes every namespaced object in the namespace and
// reports errNotEmpty until none is left.
func (c *Namespaces) deleteContent(ctx context.Context, namespace string) error {
	lists, err := c.discovery.ServerPreferredNamespacedResources()
	if err != nil && len(lists) == 0 {
		return fmt.Errorf("discover resources: %w", err)
	}
	remaining := 0
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if !hasVerb(r, "list") || !hasVerb(r, "delete") {
				continue
			}
			client := c.dynamic.Resource(gv.WithResource(r.Name)).Namespace(namespace)
			if hasVerb(r, "deletecollection") {
				if err := client.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
					return fmt.Errorf("delete %s: %w", r.Name, err)
				}
			}
			items, err := client.List(ctx, metav1.ListOptions{})
			if err != nil {
				return fmt.Errorf("list %s: %w", r.Name, err)
			}
			for _, item := range items.Items {
				if item.GetDeletionTimestamp() == nil {
					if err := client.Delete(ctx, item.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
						return fmt.Errorf("delete %s/%s: %w", r.Name, item.GetName(), err)
					}
				}
			}
			remaining += len(items.Items)
		}
	}
	if remaining > 0 {
		return fmt.Errorf("%w: %d objects left in %s", errNotEmpty, remaining, namespace)
	}
	return nil
}

// finalize drops the "kubernetes" finalizer and deletes the namespace,
// which now goes at once.
func (c *Namespaces) finalize(ctx context.Context, ns *corev1.Namespace) error {
	if !hasFinalizer(ns) {
		return c.deleteNamespace(ctx, ns.Name)
	}
	ns = ns.DeepCopy()
	var keep []corev1.FinalizerName
	for _, f := range ns.Spec.Finalizers {
		if f != corev1.FinalizerKubernetes {
			keep = append(keep, f)
		}
	}
	ns.Spec.Finalizers = keep
	if _, err := c.client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("finalize: %w", err)
	}
	if len(keep) > 0 {
		// Other finalizers belong to other controllers.
		return nil
	}
	return c.deleteNamespace(ctx, ns.Name)
}

func (c *Namespaces) deleteNamespace(ctx context.Context, name string) error {
	err := c.client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete: %w", err)
	}
	c.logger.Info("namespace deleted", "namespace", name)
	return nil
}

func hasFinalizer(ns *corev1.Namespace) bool {
	for _, f := range ns.Spec.Finalizers {
		if f == corev1.FinalizerKubernetes {
			return true
		}
	}
	return false
}

func hasVerb(r metav1.APIResource, verb string) bool {
	for _, v := range r.Verbs {
		if v == verb {
			return true
		}
	}
	return false
}
