package run

import (
	"reflect"
	"testing"
	"time"
)

func TestScheduleIsDeterministic(t *testing.T) {
	a, err := Schedule(42, AllFaults(), 5, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Schedule(42, AllFaults(), 5, 2*time.Minute)
	c, _ := Schedule(43, AllFaults(), 5, 2*time.Minute)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave two schedules")
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave the same schedule")
	}
	for i, s := range a {
		if s.At+s.Hold > 2*time.Minute || s.Target < 0 || s.Target >= 5 {
			t.Fatalf("step %d out of bounds: %+v", i, s)
		}
		if i > 0 && s.At < a[i-1].At+a[i-1].Hold {
			t.Fatalf("step %d overlaps the previous one", i)
		}
	}
	if _, err := Schedule(1, []string{"meteor"}, 3, time.Minute); err == nil {
		t.Fatal("unknown fault accepted")
	}
}
