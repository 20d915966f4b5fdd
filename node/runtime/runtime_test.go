package runtime

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestCRILogFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c", "0.log")
	s, err := newStreams(path, false)
	if err != nil {
		t.Fatal(err)
	}
	out, errw := s.writer("stdout"), s.writer("stderr")
	long := strings.Repeat("x", maxLogLine+10)
	if _, err := out.Write([]byte("hello\n\n" + long + "\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := errw.Write([]byte("oops\nno newline")); err != nil {
		t.Fatal(err)
	}
	s.close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct{ stream, tag, text string }
	var got []entry
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) != 4 {
			t.Fatalf("malformed line %q", l)
		}
		if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil {
			t.Errorf("timestamp %q: %v", f[0], err)
		}
		got = append(got, entry{f[1], f[2], f[3]})
	}
	// stdout and stderr interleave arbitrarily; compare each in order.
	want := map[string][]entry{
		"stdout": {{"stdout", "F", "hello"}, {"stdout", "F", ""}, {"stdout", "P", long[:maxLogLine]}, {"stdout", "F", long[maxLogLine:]}},
		"stderr": {{"stderr", "F", "oops"}, {"stderr", "P", "no newline"}},
	}
	for stream, w := range want {
		var g []entry
		for _, e := range got {
			if e.stream == stream {
				g = append(g, e)
			}
		}
		if len(g) != len(w) {
			t.Fatalf("%s: %d entries, want %d: %v", stream, len(g), len(w), g)
		}
		for i := range w {
			if g[i] != w[i] {
				t.Errorf("%s entry %d: %+v, want %+v", stream, i, g[i], w[i])
			}
		}
	}
}

func TestResourceOpts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		req, lim corev1.ResourceList
		shares   uint64
		quota    int64
		memory   int64
	}{
		{name: "best effort", shares: 2},
		{name: "request", req: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}, shares: 256},
		{name: "limit only", lim: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("64Mi")}, shares: 1024, quota: 100000, memory: 64 << 20},
		{name: "tiny limit", lim: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1m")}, shares: 2, quota: 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{Requests: tc.req, Limits: tc.lim}}
			opts, err := resourceOpts(c)
			if err != nil {
				t.Fatal(err)
			}
			s := &oci.Spec{Linux: &specs.Linux{}}
			for _, o := range opts {
				if err := o(context.Background(), nil, nil, s); err != nil {
					t.Fatal(err)
				}
			}
			r := s.Linux.Resources
			if r.CPU == nil || r.CPU.Shares == nil || *r.CPU.Shares != tc.shares {
				t.Errorf("shares %v, want %d", r.CPU, tc.shares)
			}
			if tc.quota != 0 && (r.CPU.Quota == nil || *r.CPU.Quota != tc.quota || *r.CPU.Period != cfsPeriod) {
				t.Errorf("quota %v period %v, want %d", r.CPU.Quota, r.CPU.Period, tc.quota)
			}
			if tc.quota == 0 && r.CPU.Quota != nil {
				t.Errorf("quota %d, want none", *r.CPU.Quota)
			}
			if tc.memory != 0 && (r.Memory == nil || *r.Memory.Limit != tc.memory) {
				t.Errorf("memory %v, want %d", r.Memory, tc.memory)
			}
		})
	}
}

func TestNormalizeImage(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                    "docker.io/library/busybox:latest",
		"127.0.0.1:5000/busybox":     "127.0.0.1:5000/busybox:latest",
		"registry.k8s.io/pause:3.10": "registry.k8s.io/pause:3.10",
	} {
		got, err := NormalizeImage(in)
		if err != nil || got != want {
			t.Errorf("NormalizeImage(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := NormalizeImage("bad image name"); err == nil {
		t.Error("NormalizeImage accepted an invalid reference")
	}
}

func TestCapNames(t *testing.T) {
	got := capNames([]corev1.Capability{"NET_ADMIN", "cap_sys_time"})
	if len(got) != 2 || got[0] != "CAP_NET_ADMIN" || got[1] != "CAP_SYS_TIME" {
		t.Errorf("capNames = %v", got)
	}
}
