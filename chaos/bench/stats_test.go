package bench

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ten := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i + 1)
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", []time.Duration{7}, 99, 7},
		{"p0 is the minimum", ten, 0, 1},
		{"p50 of ten is the fifth", ten, 50, 5},
		{"p99 of ten is the maximum", ten, 99, 10},
		{"p100 is the maximum", ten, 100, 10},
		{"p50 of a hundred", hundred, 50, 50},
		{"p99 of a hundred", hundred, 99, 99},
		{"p99.9 rounds up to an observed sample", hundred, 99.9, 100},
		{"over 100 clamps", ten, 150, 10},
		{"bimodal p99 is a mode, not a blend", []time.Duration{1, 1, 1, 1, 1, 1, 1, 1, 1, 1000}, 95, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Fatalf("Percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		want    Latency
	}{
		{"empty", nil, Latency{}},
		{"unsorted input", []time.Duration{5, 1, 4, 2, 3}, Latency{Count: 5, P50: 3, P99: 5, Max: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summarize(tc.samples); got != tc.want {
				t.Fatalf("Summarize = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRatio(t *testing.T) {
	for _, tc := range []struct {
		a, b, want float64
	}{
		{100, 50, 2},
		{50, 100, 0.5},
		{100, 0, 0}, // no etcd figure is no ratio, not infinity
		{0, 100, 0},
	} {
		if got := Ratio(tc.a, tc.b); got != tc.want {
			t.Errorf("Ratio(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
