package agent

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/barge-dev/barge/overlay"
)

// TestKnownPodCIDR: which pod CIDR the agent sets its network up with
// before registering, and what a disagreement with the API does.
func TestKnownPodCIDR(t *testing.T) {
	cidr := netip.MustParsePrefix("10.244.7.0/24")
	for _, tc := range []struct {
		name     string
		flag     string
		file     string // "" writes none
		want     string // "" is none
		wantFrom cidrSource
	}{
		{name: "nothing known"},
		{name: "flag", flag: "10.244.201.0/24", want: "10.244.201.0/24", wantFrom: cidrFromConfig},
		{name: "flag wins over the file", flag: "10.244.201.0/24", file: "10.244.7.0/24\n", want: "10.244.201.0/24", wantFrom: cidrFromConfig},
		{name: "remembered", file: "10.244.7.0/24\n", want: "10.244.7.0/24", wantFrom: cidrFromState},
		{name: "damaged file ignored", file: "10.244.7.0/2x"},
		{name: "outside the cluster ignored", file: "192.168.0.0/24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testPodCIDRAgent(t)
			if tc.flag != "" {
				a.cfg.PodCIDR = netip.MustParsePrefix(tc.flag)
			}
			if tc.file != "" {
				if err := os.WriteFile(a.podCIDRPath(), []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, from, err := a.knownPodCIDR()
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.want; (want == "" && got.IsValid()) || (want != "" && got.String() != want) || from != tc.wantFrom {
				t.Fatalf("got %v from %q, want %q from %q", got, from, tc.want, tc.wantFrom)
			}
		})
	}

	t.Run("remember, then disagree with the API", func(t *testing.T) {
		a := testPodCIDRAgent(t)
		if err := a.rememberPodCIDR(cidr); err != nil {
			t.Fatal(err)
		}
		got, from, err := a.knownPodCIDR()
		if err != nil || got != cidr || from != cidrFromState {
			t.Fatalf("after remembering: %v from %q, %v", got, from, err)
		}
		if err := a.checkPodCIDR(cidr, got, from); err != nil {
			t.Fatalf("same CIDR: %v", err)
		}
		err = a.checkPodCIDR(netip.MustParsePrefix("10.244.9.0/24"), got, from)
		if err == nil || !strings.Contains(err.Error(), "10.244.9.0/24") || !strings.Contains(err.Error(), "start the agent again") {
			t.Fatalf("different CIDR: %v", err)
		}
		// Forgotten, so the next start takes the API's.
		if got, _, _ := a.knownPodCIDR(); got.IsValid() {
			t.Fatalf("still remembered: %v", got)
		}
		a.cfg.PodCIDR = cidr
		if err := a.checkPodCIDR(netip.MustParsePrefix("10.244.9.0/24"), cidr, cidrFromConfig); err == nil || !strings.Contains(err.Error(), "--pod-cidr") {
			t.Fatalf("flag disagreeing: %v", err)
		}
	})
}

func testPodCIDRAgent(t *testing.T) *Agent {
	a := &Agent{log: slog.New(slog.DiscardHandler)}
	a.cfg.NodeName = "n1"
	a.cfg.ClusterCIDR = overlay.DefaultClusterCIDR
	a.cfg.Runtime.StateDir = filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(a.cfg.Runtime.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestPodCIDRConfig: --pod-cidr must be a network inside the cluster's.
func TestPodCIDRConfig(t *testing.T) {
	for _, tc := range []struct {
		cidr string
		ok   bool
	}{
		{"10.244.201.0/24", true},
		{"10.244.201.1/24", false},
		{"10.245.0.0/24", false},
		{"10.0.0.0/8", false},
	} {
		c := Config{NodeName: "n", Client: &rest.Config{}, NodeIP: "10.0.0.1", PodCIDR: netip.MustParsePrefix(tc.cidr)}
		err := c.complete()
		if (err == nil) != tc.ok {
			t.Errorf("--pod-cidr %s: %v, want ok=%v", tc.cidr, err, tc.ok)
		}
	}
}
