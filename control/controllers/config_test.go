package controllers

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/klog/v2"
	kubectrlmgrconfig "k8s.io/kubernetes/pkg/controller/apis/config"
	"k8s.io/kubernetes/pkg/controller/nodelifecycle/scheduler"
)

// TestEvictionRateAfterDisruption: the node lifecycle controller's
// tainting queue, as handleDisruption drives it when a pass sees no node
// Ready (a start, a zone-wide outage) and then some: swapped to a stop
// and back to the configured rate. A node queued for tainting afterwards
// is tainted, at every rate the configuration hands upstream; at exactly
// 1 node/s upstream's queue stays stopped (kubernetes#104639).
func TestEvictionRateAfterDisruption(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"barge's default", Config{}},
		{"--node-eviction-rate 1", Config{NodeEvictionRate: 1}},
		{"--node-eviction-rate 2", Config{NodeEvictionRate: 2}},
		{"secondary rate tuned to 1", Config{NodeEvictionRate: 2, Tune: func(cc *kubectrlmgrconfig.KubeControllerManagerConfiguration) {
			cc.NodeLifecycleController.SecondaryNodeEvictionRate = 1
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.complete()
			cc, err := tc.cfg.componentConfig()
			if err != nil {
				t.Fatal(err)
			}
			for _, rate := range []float32{cc.NodeLifecycleController.NodeEvictionRate, cc.NodeLifecycleController.SecondaryNodeEvictionRate} {
				if rate < 0.5 {
					continue // a token every 2 s or more: too slow to wait for here
				}
				q := scheduler.NewRateLimitedTimedQueue(flowcontrol.NewTokenBucketRateLimiter(rate, scheduler.EvictionRateLimiterBurst))
				q.SwapLimiter(0)    // "Entering master disruption mode"
				q.SwapLimiter(rate) // "Exiting master disruption mode"
				q.Add("n1", "uid")
				tainted := false
				// A token comes within 1/rate s; the deadline only bounds a failure.
				err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
					q.Try(klog.Background(), func(scheduler.TimedValue) (bool, time.Duration) {
						tainted = true
						return true, 0
					})
					return tainted, nil
				})
				if err != nil {
					t.Fatalf("rate %v: a node queued after a full disruption was never tainted: %v", rate, err)
				}
			}
		})
	}
}
