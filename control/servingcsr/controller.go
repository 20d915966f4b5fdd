package servingcsr

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/kubernetes/pkg/apis/certificates"
)

// Name is the controller's name, as logs show it.
const Name = "kubelet-serving-approver"

const (
	nodeUserPrefix = "system:node:"
	nodesGroup     = "system:nodes"
	// Reason of the Approved and Denied conditions this controller adds.
	reasonApproved = "BargeKubeletServingApprove"
	reasonDenied   = "BargeKubeletServingDeny"
)

// errNodeNotReady means the request cannot be judged before its Node is
// registered with addresses: retried, not denied.
var errNodeNotReady = errors.New("node not registered with addresses yet")

// Controller approves or denies kubelet serving CSRs. One serves one term.
type Controller struct {
	client kubernetes.Interface
	csrs   certlisters.CertificateSigningRequestLister
	nodes  corelisters.NodeLister
	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
	logger *slog.Logger

	mu      sync.Mutex
	waiting map[string][]string // node name → CSRs waiting for it
}

// New builds the controller on a term's informers and its fenced client.
// Nothing happens before Run.
func New(in informers.SharedInformerFactory, client *rest.Config, logger *slog.Logger) (*Controller, error) {
	if logger == nil {
		logger = slog.Default()
	}
	cs, err := kubernetes.NewForConfig(client)
	if err != nil {
		return nil, fmt.Errorf("servingcsr: %w", err)
	}
	csrs := in.Certificates().V1().CertificateSigningRequests()
	nodes := in.Core().V1().Nodes()
	c := &Controller{
		client:  cs,
		csrs:    csrs.Lister(),
		nodes:   nodes.Lister(),
		queue:   workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: Name}),
		logger:  logger.With("controller", Name),
		waiting: map[string][]string{},
	}
	enqueue := func(obj any) {
		if r, ok := obj.(*certificatesv1.CertificateSigningRequest); ok && pending(r) && r.Spec.SignerName == certificatesv1.KubeletServingSignerName {
			c.queue.Add(r.Name)
		}
	}
	creg, err := csrs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	if err != nil {
		return nil, fmt.Errorf("servingcsr: %w", err)
	}
	nodeChanged := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			c.mu.Lock()
			names := c.waiting[n.Name]
			delete(c.waiting, n.Name)
			c.mu.Unlock()
			for _, name := range names {
				c.queue.Add(name)
			}
		}
	}
	nreg, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    nodeChanged,
		UpdateFunc: func(_, obj any) { nodeChanged(obj) },
	})
	if err != nil {
		return nil, fmt.Errorf("servingcsr: %w", err)
	}
	c.synced = []cache.InformerSynced{creg.HasSynced, nreg.HasSynced}
	return c, nil
}

// Name is the controller's name.
func (c *Controller) Name() string { return Name }

// Run approves until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer func() {
		c.queue.ShutDown()
		wg.Wait()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	wg.Go(func() {
		for c.work(ctx) {
		}
	})
	<-ctx.Done()
}

func (c *Controller) work(ctx context.Context) bool {
	name, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(name)
	if err := c.sync(ctx, name); err != nil {
		if ctx.Err() == nil {
			c.logger.Warn("judging a kubelet serving CSR; retrying", "csr", name, "err", err)
		}
		c.queue.AddRateLimited(name)
		return true
	}
	c.queue.Forget(name)
	return true
}

func (c *Controller) sync(ctx context.Context, name string) error {
	r, err := c.csrs.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !pending(r) || r.Spec.SignerName != certificatesv1.KubeletServingSignerName {
		return nil
	}
	node, verdict := Judge(r, c.nodes.Get)
	if errors.Is(verdict, errNodeNotReady) {
		c.mu.Lock()
		if !slices.Contains(c.waiting[node], name) {
			c.waiting[node] = append(c.waiting[node], name)
		}
		c.mu.Unlock()
		// The Node's add or update brings it back; one that came before
		// the line above is in the lister already.
		if _, again := Judge(r, c.nodes.Get); !errors.Is(again, errNodeNotReady) {
			c.queue.Add(name)
		}
		return nil
	}
	r = r.DeepCopy()
	cond := certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
		Reason: reasonApproved, Message: "node " + node + " asks for its own names and addresses",
		LastUpdateTime: metav1.Now(),
	}
	if verdict != nil {
		cond.Type, cond.Reason, cond.Message = certificatesv1.CertificateDenied, reasonDenied, verdict.Error()
	}
	r.Status.Conditions = append(r.Status.Conditions, cond)
	if _, err := c.client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, r.Name, r, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update approval of %s: %w", r.Name, err)
	}
	c.logger.Info("kubelet serving CSR "+strings.ToLower(string(cond.Type)), "csr", r.Name, "node", node, "message", cond.Message)
	return nil
}

func pending(r *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range r.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied {
			return false
		}
	}
	return true
}

// Judge applies the policy to one request: nil to approve, an error
// saying what is wrong to deny, errNodeNotReady to wait. It returns the
// node the request names.
func Judge(r *certificatesv1.CertificateSigningRequest, getNode func(string) (*corev1.Node, error)) (string, error) {
	node, ok := strings.CutPrefix(r.Spec.Username, nodeUserPrefix)
	if !ok || node == "" || !slices.Contains(r.Spec.Groups, nodesGroup) {
		return node, fmt.Errorf("requested by %q, not a node (want user %sNAME in group %s)", r.Spec.Username, nodeUserPrefix, nodesGroup)
	}
	block, _ := pem.Decode(r.Spec.Request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return node, errors.New("spec.request holds no PEM CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return node, fmt.Errorf("spec.request: %w", err)
	}
	usages := sets.NewString()
	for _, u := range r.Spec.Usages {
		usages.Insert(string(u))
	}
	if err := certificates.ValidateKubeletServingCSR(req, usages); err != nil {
		return node, fmt.Errorf("not a kubelet serving request: %w", err)
	}
	if req.Subject.CommonName != r.Spec.Username {
		return node, fmt.Errorf("subject CN %q is not the requester %q", req.Subject.CommonName, r.Spec.Username)
	}
	for _, d := range req.DNSNames {
		if d != node {
			return node, fmt.Errorf("DNS name %q is not the node's name %q", d, node)
		}
	}
	if len(req.IPAddresses) == 0 {
		return node, nil
	}
	n, err := getNode(node)
	if apierrors.IsNotFound(err) {
		return node, errNodeNotReady
	}
	if err != nil {
		return node, fmt.Errorf("%w: %w", errNodeNotReady, err)
	}
	var own []net.IP
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
			if ip := net.ParseIP(a.Address); ip != nil {
				own = append(own, ip)
			}
		}
	}
	if len(own) == 0 {
		return node, errNodeNotReady
	}
	for _, ip := range req.IPAddresses {
		if !slices.ContainsFunc(own, ip.Equal) {
			return node, fmt.Errorf("IP address %s is not an address of node %s", ip, node)
		}
	}
	return node, nil
}
