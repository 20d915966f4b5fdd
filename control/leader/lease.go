package leader

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Kubernetes' Lease election defaults (kube-controller-manager's
// --leader-elect-lease-duration, -renew-deadline, -retry-period).
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// LeaseName is the Lease (in kube-system) that the servers of a cluster
// on external etcd contend for.
const LeaseName = "barge-controllers"

// LeaseElection is leadership by a Kubernetes Lease, the way
// kube-controller-manager elects itself. barge uses it only where there
// is no Raft leadership to follow: a cluster on external etcd.
type LeaseElection struct {
	elector *leaderelection.LeaderElector

	mu      sync.Mutex
	leading bool
	changed chan struct{}
}

// NewLeaseElection prepares an election for identity; Run takes part.
func NewLeaseElection(cfg *rest.Config, identity string, logger *slog.Logger) (*LeaseElection, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("lease election: %w", err)
	}
	l := &LeaseElection{changed: make(chan struct{})}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: LeaseName},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	l.elector, err = leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   DefaultLeaseDuration,
		RenewDeadline:   DefaultRenewDeadline,
		RetryPeriod:     DefaultRetryPeriod,
		ReleaseOnCancel: true,
		Name:            LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				logger.Info("won the lease", "lease", LeaseName)
				l.set(true)
			},
			OnStoppedLeading: func() {
				logger.Info("lost the lease", "lease", LeaseName)
				l.set(false)
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("lease election: %w", err)
	}
	return l, nil
}

// Run contends for the lease until ctx ends, again after every loss.
func (l *LeaseElection) Run(ctx context.Context) {
	for ctx.Err() == nil {
		l.elector.Run(ctx)
	}
}

func (l *LeaseElection) set(leading bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leading = leading
	close(l.changed)
	l.changed = make(chan struct{})
}

// LeaderTerm reports whether this server holds the lease. A Lease has no
// term the store could fence writes to, so the term is 0: unfenced, as in
// Kubernetes.
func (l *LeaseElection) LeaderTerm() (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return 0, l.leading
}

// LeaderChange returns a channel closed at the next change.
func (l *LeaseElection) LeaderChange() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}
