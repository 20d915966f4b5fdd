package scheme

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
)

// addParameterConversions teaches the scheme to read the query parameters
// of subresources whose options are not metav1 types. Kubernetes generates
// these into its internal packages, which are not importable.
func addParameterConversions(s *runtime.Scheme) error {
	return s.AddConversionFunc((*url.Values)(nil), (*corev1.PodLogOptions)(nil), func(a, b interface{}, _ conversion.Scope) error {
		return podLogOptionsFromQuery(*a.(*url.Values), b.(*corev1.PodLogOptions))
	})
}

func podLogOptionsFromQuery(q url.Values, out *corev1.PodLogOptions) error {
	out.Container = q.Get("container")
	var err error
	boolParam := func(name string, dst *bool) {
		if v := q.Get(name); v != "" && err == nil {
			*dst, err = strconv.ParseBool(v)
			if err != nil {
				err = fmt.Errorf("query parameter %s: %w", name, err)
			}
		}
	}
	intParam := func(name string) *int64 {
		v := q.Get(name)
		if v == "" || err != nil {
			return nil
		}
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil {
			err = fmt.Errorf("query parameter %s: %w", name, perr)
			return nil
		}
		return &n
	}
	boolParam("follow", &out.Follow)
	boolParam("previous", &out.Previous)
	boolParam("timestamps", &out.Timestamps)
	boolParam("insecureSkipTLSVerifyBackend", &out.InsecureSkipTLSVerifyBackend)
	out.SinceSeconds = intParam("sinceSeconds")
	out.TailLines = intParam("tailLines")
	out.LimitBytes = intParam("limitBytes")
	if v := q.Get("sinceTime"); v != "" && err == nil {
		t, perr := time.Parse(time.RFC3339, v)
		if perr != nil {
			return fmt.Errorf("query parameter sinceTime: %w", perr)
		}
		mt := metav1.NewTime(t)
		out.SinceTime = &mt
	}
	return err
}
