package kubeletapi

import (
	"errors"
	"net/url"
	"testing"
	"time"
)

func TestLogOptions(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		query   string
		bad     bool
		follow  bool
		ts      bool
		prev    bool
		tail    int64 // -1: unset
		limit   int64 // -1: unset
		sinceAt time.Time
	}{
		{query: "", tail: -1, limit: -1},
		{query: "follow=true&timestamps=true&previous=true", follow: true, ts: true, prev: true, tail: -1, limit: -1},
		{query: "tailLines=5&limitBytes=100", tail: 5, limit: 100},
		{query: "tail=7", tail: 7, limit: -1},
		{query: "tail=all", tail: -1, limit: -1},
		{query: "sinceSeconds=60", tail: -1, limit: -1, sinceAt: now.Add(-time.Minute)},
		{query: "sinceTime=2025-12-31T00:00:00Z", tail: -1, limit: -1, sinceAt: time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)},
		{query: "tailLines=-1", bad: true},
		{query: "limitBytes=0", bad: true},
		{query: "sinceSeconds=0", bad: true},
		{query: "sinceSeconds=5&sinceTime=2025-12-31T00:00:00Z", bad: true},
		{query: "tailLines=x", bad: true},
	} {
		q, _ := url.ParseQuery(tc.query)
		o, err := logOptions(q)
		if tc.bad {
			if !errors.Is(err, errBadRequest) {
				t.Errorf("%q: %v, want a bad request", tc.query, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.query, err)
			continue
		}
		lo := criLogOptions(o, now)
		if lo.Follow != tc.follow || lo.Timestamp != tc.ts || o.Previous != tc.prev {
			t.Errorf("%q: follow %v timestamps %v previous %v", tc.query, lo.Follow, lo.Timestamp, o.Previous)
		}
		if (tc.tail < 0) != (lo.TailLines == nil) || (lo.TailLines != nil && *lo.TailLines != tc.tail) {
			t.Errorf("%q: tail %v, want %d", tc.query, lo.TailLines, tc.tail)
		}
		if (tc.limit < 0) != (lo.LimitBytes == nil) || (lo.LimitBytes != nil && *lo.LimitBytes != tc.limit) {
			t.Errorf("%q: limit %v, want %d", tc.query, lo.LimitBytes, tc.limit)
		}
		if !lo.Since.Equal(tc.sinceAt) {
			t.Errorf("%q: since %v, want %v", tc.query, lo.Since, tc.sinceAt)
		}
	}
}
