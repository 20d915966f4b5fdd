package scheme

import (
	"net/url"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/barge-dev/barge/control/validation"
)

// The API server decodes every request body with this scheme's codecs,
// then validates it; neither step may panic on any input. These targets
// feed arbitrary bytes through both, as JSON/YAML/protobuf bodies and as
// strategic merge patches onto a stored object.

var fuzzSeeds = []string{
	`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"d"},"spec":{"containers":[{"name":"c","image":"i","ports":[{"containerPort":80}]}]}}`,
	`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":-1,"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"c"}},"spec":{"containers":[{"name":"c"}]}}}}`,
	`{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":99999}],"clusterIP":"10.0.0.300"}}`,
	"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: 1}\n",
	`{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"b"},"roleRef":{"kind":"ClusterRole","name":"view"},"subjects":[{"kind":"ServiceAccount","name":"x"}]}`,
	"k8s\x00\n\x0b\n\x02v1\x12\x05Pod",
	`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"type":"kubernetes.io/tls","data":{"tls.crt":"!!"}}`,
}

func FuzzDecodeAndValidate(f *testing.F) {
	s, codecs, err := New()
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range fuzzSeeds {
		f.Add([]byte(seed))
	}
	strict := serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDecoder()
	lax := codecs.UniversalDeserializer()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, dec := range []runtime.Decoder{strict, lax} {
			obj, _, err := dec.Decode(body, nil, nil)
			if err != nil || obj == nil {
				continue
			}
			// Validation must cope with anything a decoder accepts.
			_ = validation.Create(obj)
			_ = validation.Update(obj, obj.DeepCopyObject())
			_ = validation.Status(obj, obj.DeepCopyObject())
		}
	})
}

func FuzzStrategicMergePatch(f *testing.F) {
	original := []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","labels":{"a":"b"}},"spec":{"replicas":1,"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i","env":[{"name":"X","value":"1"}]}]}}}}`)
	for _, seed := range []string{
		`{"spec":{"replicas":3}}`,
		`{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"j"}]}}}}`,
		`{"spec":{"template":{"spec":{"containers":[{"name":"c","$patch":"delete"}]}}}}`,
		`{"metadata":{"labels":{"a":null}},"$retainKeys":["spec"]}`,
		`{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"z"}],"containers":[{"name":"z"}]}}}}`,
	} {
		f.Add([]byte(seed))
	}
	s, codecs, err := New()
	if err != nil {
		f.Fatal(err)
	}
	_ = s
	dec := codecs.UniversalDecoder(appsv1.SchemeGroupVersion)
	f.Fuzz(func(t *testing.T, patch []byte) {
		out, err := strategicpatch.StrategicMergePatch(original, patch, &appsv1.Deployment{})
		if err != nil {
			return
		}
		obj, _, err := dec.Decode(out, nil, nil)
		if err != nil {
			return
		}
		_ = validation.Create(obj)
	})
}

func FuzzPodLogOptionsQuery(f *testing.F) {
	for _, seed := range []string{"container=c&follow=true&tailLines=10", "sinceTime=2026-01-02T03:04:05Z&limitBytes=x", "previous=maybe", "sinceSeconds=-1&timestamps=1"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		var opts corev1.PodLogOptions
		_ = podLogOptionsFromQuery(q, &opts)
	})
}
