package bench

import (
	"strings"
	"testing"
)

func TestParseIperf(t *testing.T) {
	good := `{"start": {}, "end": {"sum_sent": {"bits_per_second": 2.1e9, "retransmits": 17}, "sum_received": {"bits_per_second": 2.0e9}}}`
	r, err := parseIperf([]byte(good))
	if err != nil || r.gbps != 2.0 || r.retransmits != 17 {
		t.Fatalf("got %+v, %v", r, err)
	}
	for name, bad := range map[string]string{
		"error":       `{"error": "unable to connect to server: Connection refused"}`,
		"no receiver": `{"end": {"sum_sent": {"bits_per_second": 1e9}}}`,
		"not JSON":    `iperf3: error`,
	} {
		if _, err := parseIperf([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestNetMarkdown(t *testing.T) {
	r := &NetReport{
		DurationS: 10, RRDurationS: 5, RRSize: 64, Rounds: 3,
		ThroughputGoal: map[string]float64{"vxlan": 0.9}, LatencyGoal: 1.2,
		Rows: []NetRow{
			{Mode: "vxlan", Path: "host-to-host", MTU: 1500, Gbps: 10, RRP50Us: 20},
			{Mode: "vxlan", Path: "pod-to-pod", MTU: 1450, Gbps: 9.5, RRP50Us: 22, ThroughputRatio: 0.95, LatencyP50Ratio: 1.1},
		},
	}
	md := r.Markdown()
	for _, want := range []string{"| vxlan | pod-to-pod | 1450 | 9.50 | 0.95 | ≥ 0.9, p50 ≤ 1.2 |", "| vxlan | host-to-host | 1500 | 10.00 |  |  |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
