package egress

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

func TestEnsureRejects(t *testing.T) {
	pod := netip.MustParsePrefix("10.244.1.0/24")
	cluster := netip.MustParsePrefix("10.244.0.0/16")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no pod CIDR", Config{ClusterCIDR: cluster}, "pod CIDR"},
		{"IPv6 pod CIDR", Config{PodCIDR: netip.MustParsePrefix("fd00::/64"), ClusterCIDR: cluster}, "pod CIDR"},
		{"no cluster CIDR", Config{PodCIDR: pod}, "cluster CIDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Ensure(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error about the %s", err, tt.want)
			}
		})
	}
}
