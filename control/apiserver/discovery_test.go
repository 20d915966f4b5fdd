package apiserver_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// TestDiscoveryAPI: /version, the legacy and aggregated discovery
// documents, and the resources kubectl reads from them.
func testDiscoveryAPI(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	cs := s.admin(0)
	cfg := s.c.Config(0)

	t.Run("version", func(t *testing.T) {
		v, err := cs.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(v.GitVersion, "v1.") || v.Major != "1" {
			t.Errorf("version %+v, want gitVersion v1.* and major 1", v)
		}
		if _, err := strconv.Atoi(v.Minor); err != nil {
			t.Errorf("minor %q is not a number (kubectl compares it)", v.Minor)
		}
		if v.Platform == "" || v.GoVersion == "" {
			t.Errorf("version lacks platform/goVersion: %+v", v)
		}
	})

	t.Run("legacy /api", func(t *testing.T) {
		code, _, body, err := s.raw(ctx, cfg, http.MethodGet, "/api", "application/json")
		if err != nil || code != 200 {
			t.Fatalf("/api: %d %v", code, err)
		}
		var versions metav1.APIVersions
		if err := json.Unmarshal(body, &versions); err != nil {
			t.Fatal(err)
		}
		if versions.Kind != "APIVersions" || !slices.Equal(versions.Versions, []string{"v1"}) {
			t.Errorf("/api = %+v, want APIVersions [v1]", versions)
		}
	})

	required := []string{"apps", "coordination.k8s.io", "discovery.k8s.io", "rbac.authorization.k8s.io", "authorization.k8s.io"}
	t.Run("legacy /apis", func(t *testing.T) {
		code, _, body, err := s.raw(ctx, cfg, http.MethodGet, "/apis", "application/json")
		if err != nil || code != 200 {
			t.Fatalf("/apis: %d %v", code, err)
		}
		var groups metav1.APIGroupList
		if err := json.Unmarshal(body, &groups); err != nil {
			t.Fatal(err)
		}
		listed := sets.New[string]()
		for _, g := range groups.Groups {
			listed.Insert(g.Name)
			if g.PreferredVersion.GroupVersion == "" || len(g.Versions) == 0 {
				t.Errorf("group %s has no (preferred) version: %+v", g.Name, g)
			}
		}
		for _, g := range required {
			if !listed.Has(g) {
				t.Errorf("/apis lacks %s; it lists %v", g, sets.List(listed))
			}
		}
		// A group is listed only if it serves something: autoscaling and
		// policy are used by subresources (Scale, Eviction) but have
		// resources of their own only when listed.
		for _, g := range groups.Groups {
			rl, err := cs.Discovery().ServerResourcesForGroupVersion(g.PreferredVersion.GroupVersion)
			if err != nil {
				t.Errorf("listed group %s: %v", g.PreferredVersion.GroupVersion, err)
				continue
			}
			if len(rl.APIResources) == 0 {
				t.Errorf("listed group %s serves no resources", g.PreferredVersion.GroupVersion)
			}
		}
		t.Logf("served groups: %v", sets.List(listed))
	})

	t.Run("client-go groups", func(t *testing.T) {
		groups, err := cs.Discovery().ServerGroups()
		if err != nil {
			t.Fatal(err)
		}
		names := sets.New[string]()
		for _, g := range groups.Groups {
			names.Insert(g.Name)
		}
		for _, g := range append([]string{""}, required...) {
			if !names.Has(g) {
				t.Errorf("ServerGroups lacks %q: %v", g, sets.List(names))
			}
		}
	})

	type want struct {
		kind, group, version string
		namespaced           bool
		verbs                []string
		shortNames           []string
	}
	allVerbs := []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	resourceCases := []struct {
		gv        string
		resources map[string]want
	}{
		{"apps/v1", map[string]want{
			"deployments":        {"Deployment", "", "", true, allVerbs, []string{"deploy"}},
			"deployments/scale":  {"Scale", "autoscaling", "v1", true, []string{"get", "patch", "update"}, nil},
			"deployments/status": {"Deployment", "", "", true, []string{"get", "patch", "update"}, nil},
			"replicasets":        {"ReplicaSet", "", "", true, allVerbs, []string{"rs"}},
			"replicasets/scale":  {"Scale", "autoscaling", "v1", true, []string{"get", "patch", "update"}, nil},
			"replicasets/status": {"ReplicaSet", "", "", true, []string{"get", "patch", "update"}, nil},
		}},
		{"v1", map[string]want{
			"pods":                  {"Pod", "", "", true, allVerbs, []string{"po"}},
			"pods/binding":          {"Binding", "", "", true, []string{"create"}, nil},
			"pods/eviction":         {"Eviction", "policy", "v1", true, []string{"create"}, nil},
			"pods/log":              {"Pod", "", "", true, []string{"get"}, nil},
			"pods/status":           {"Pod", "", "", true, []string{"get", "patch", "update"}, nil},
			"serviceaccounts/token": {"TokenRequest", "authentication.k8s.io", "v1", true, []string{"create"}, nil},
			"namespaces":            {"Namespace", "", "", false, []string{"create", "delete", "get", "list", "patch", "update", "watch"}, []string{"ns"}},
			"namespaces/finalize":   {"Namespace", "", "", false, []string{"update"}, nil},
			"configmaps":            {"ConfigMap", "", "", true, allVerbs, []string{"cm"}},
		}},
		{"authorization.k8s.io/v1", map[string]want{
			"selfsubjectaccessreviews": {"SelfSubjectAccessReview", "", "", false, []string{"create"}, nil},
			"selfsubjectrulesreviews":  {"SelfSubjectRulesReview", "", "", false, []string{"create"}, nil},
		}},
	}
	for _, tc := range resourceCases {
		t.Run("resources "+tc.gv, func(t *testing.T) {
			rl, err := cs.Discovery().ServerResourcesForGroupVersion(tc.gv)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]metav1.APIResource{}
			for _, r := range rl.APIResources {
				got[r.Name] = r
			}
			for name, w := range tc.resources {
				r, ok := got[name]
				if !ok {
					t.Errorf("%s lacks %s", tc.gv, name)
					continue
				}
				if r.Kind != w.kind || r.Group != w.group || r.Version != w.version || r.Namespaced != w.namespaced {
					t.Errorf("%s %s: kind %s group %q version %q namespaced %v; want %s %q %q %v",
						tc.gv, name, r.Kind, r.Group, r.Version, r.Namespaced, w.kind, w.group, w.version, w.namespaced)
				}
				if verbs := slices.Sorted(slices.Values(r.Verbs)); !slices.Equal(verbs, w.verbs) {
					t.Errorf("%s %s: verbs %v, want %v", tc.gv, name, verbs, w.verbs)
				}
				if !slices.Equal(r.ShortNames, w.shortNames) {
					t.Errorf("%s %s: short names %v, want %v", tc.gv, name, r.ShortNames, w.shortNames)
				}
			}
		})
	}

	t.Run("aggregated", func(t *testing.T) {
		const accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
		for _, tc := range []struct {
			path, group, version, resource string
		}{
			{"/apis", "apps", "v1", "deployments"},
			{"/api", "", "v1", "pods"},
		} {
			code, ctype, body, err := s.raw(ctx, cfg, http.MethodGet, tc.path, accept)
			if err != nil || code != 200 {
				t.Fatalf("aggregated %s: %d %v %.200s", tc.path, code, err, body)
			}
			if !strings.HasPrefix(ctype, accept) {
				t.Errorf("aggregated %s: Content-Type %q, want %q", tc.path, ctype, accept)
			}
			var list apidiscoveryv2.APIGroupDiscoveryList
			if err := json.Unmarshal(body, &list); err != nil {
				t.Fatal(err)
			}
			if list.Kind != "APIGroupDiscoveryList" || list.APIVersion != "apidiscovery.k8s.io/v2" {
				t.Errorf("aggregated %s: kind %q apiVersion %q", tc.path, list.Kind, list.APIVersion)
			}
			var found *apidiscoveryv2.APIResourceDiscovery
			for _, g := range list.Items {
				if g.Name != tc.group {
					continue
				}
				for _, v := range g.Versions {
					if v.Version != tc.version {
						continue
					}
					for i := range v.Resources {
						if v.Resources[i].Resource == tc.resource {
							found = &v.Resources[i]
						}
					}
				}
			}
			if found == nil {
				t.Fatalf("aggregated %s lacks %s/%s %s", tc.path, tc.group, tc.version, tc.resource)
			}
			if tc.resource == "deployments" {
				subs := map[string]apidiscoveryv2.APISubresourceDiscovery{}
				for _, sr := range found.Subresources {
					subs[sr.Subresource] = sr
				}
				scale, ok := subs["scale"]
				if !ok || scale.ResponseKind == nil || scale.ResponseKind.Kind != "Scale" || scale.ResponseKind.Group != "autoscaling" {
					t.Errorf("aggregated deployments/scale: %+v", scale)
				}
				if _, ok := subs["status"]; !ok {
					t.Errorf("aggregated deployments lacks status: %+v", found.Subresources)
				}
				if !slices.Contains(found.ShortNames, "deploy") || found.Scope != apidiscoveryv2.ScopeNamespace {
					t.Errorf("aggregated deployments: %+v", found)
				}
			}
		}
	})
}

// TestDiscoveryOpenAPI: OpenAPI v2 (JSON and protobuf) and v3, which
// kubectl uses for explain, validation and apply.
func testDiscoveryOpenAPI(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	cs := s.admin(0)
	cfg := s.c.Config(0)

	t.Run("v2 json", func(t *testing.T) {
		code, ctype, body, err := s.raw(ctx, cfg, http.MethodGet, "/openapi/v2", "application/json")
		if err != nil || code != 200 {
			t.Fatalf("/openapi/v2: %d %v", code, err)
		}
		if !strings.HasPrefix(ctype, "application/json") {
			t.Errorf("Content-Type %q", ctype)
		}
		var doc struct {
			Swagger     string `json:"swagger"`
			Definitions map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
				GVK        []map[string]string        `json:"x-kubernetes-group-version-kind"`
			} `json:"definitions"`
			Paths map[string]json.RawMessage `json:"paths"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Swagger != "2.0" {
			t.Errorf("swagger %q", doc.Swagger)
		}
		d, ok := doc.Definitions["io.k8s.api.apps.v1.Deployment"]
		if !ok {
			t.Fatalf("no io.k8s.api.apps.v1.Deployment among %d definitions", len(doc.Definitions))
		}
		if _, ok := d.Properties["spec"]; !ok {
			t.Errorf("Deployment definition without spec: %v", d.Properties)
		}
		if len(d.GVK) == 0 || d.GVK[0]["kind"] != "Deployment" || d.GVK[0]["group"] != "apps" {
			t.Errorf("Deployment x-kubernetes-group-version-kind %v", d.GVK)
		}
		if _, ok := doc.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]; !ok {
			t.Errorf("no path for deployments/scale")
		}
	})

	t.Run("v2 protobuf", func(t *testing.T) {
		// kube-openapi accepts the deprecated "@v1.0" spelling (what
		// kubectl has long sent) and the current ".v1.0" one, and always
		// answers with the current one.
		const answered = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
		var body []byte
		for _, accept := range []string{"application/com.github.proto-openapi.spec.v2@v1.0+protobuf", answered} {
			code, ctype, b, err := s.raw(ctx, cfg, http.MethodGet, "/openapi/v2", accept)
			if err != nil || code != 200 {
				t.Fatalf("/openapi/v2 as %s: %d %v", accept, code, err)
			}
			if ctype != answered {
				t.Errorf("/openapi/v2 as %s: Content-Type %q, want %q", accept, ctype, answered)
			}
			body = b
		}
		if len(body) == 0 || body[0] == '{' {
			t.Errorf("protobuf body looks like JSON: %.40q", body)
		}
		// client-go's OpenAPISchema fetches and parses exactly this.
		doc, err := cs.Discovery().OpenAPISchema()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range doc.GetDefinitions().GetAdditionalProperties() {
			if p.GetName() == "io.k8s.api.apps.v1.Deployment" {
				found = true
			}
		}
		if !found {
			t.Errorf("parsed protobuf document lacks io.k8s.api.apps.v1.Deployment")
		}
	})

	t.Run("v3", func(t *testing.T) {
		paths, err := cs.Discovery().OpenAPIV3().Paths()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"api/v1", "apis/apps/v1", "apis/rbac.authorization.k8s.io/v1"} {
			if _, ok := paths[p]; !ok {
				t.Errorf("/openapi/v3 lacks %s", p)
			}
		}
		// The raw index points at each document by a hashed URL.
		code, _, body, err := s.raw(ctx, cfg, http.MethodGet, "/openapi/v3", "application/json")
		if err != nil || code != 200 {
			t.Fatalf("/openapi/v3: %d %v", code, err)
		}
		var index struct {
			Paths map[string]struct {
				URL string `json:"serverRelativeURL"`
			} `json:"paths"`
		}
		if err := json.Unmarshal(body, &index); err != nil {
			t.Fatal(err)
		}
		ref := index.Paths["apis/apps/v1"].URL
		u, err := url.Parse(ref)
		if err != nil || !strings.HasPrefix(u.Path, "/openapi/v3/apis/apps/v1") || u.Query().Get("hash") == "" {
			t.Fatalf("apis/apps/v1 serverRelativeURL %q", ref)
		}
		code, _, body, err = s.raw(ctx, cfg, http.MethodGet, ref, "application/json")
		if err != nil || code != 200 {
			t.Fatalf("%s: %d %v", ref, code, err)
		}
		type param struct {
			Ref  string `json:"$ref"`
			Name string `json:"name"`
			In   string `json:"in"`
		}
		var doc struct {
			OpenAPI string `json:"openapi"`
			Paths   map[string]map[string]json.RawMessage
			Comps   struct {
				Parameters map[string]param `json:"parameters"`
				Schemas    map[string]json.RawMessage
			} `json:"components"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(doc.OpenAPI, "3.") {
			t.Errorf("openapi %q", doc.OpenAPI)
		}
		if _, ok := doc.Comps.Schemas["io.k8s.api.apps.v1.Deployment"]; !ok {
			t.Errorf("apps/v1 document lacks the Deployment schema")
		}
		item, ok := doc.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
		if !ok {
			t.Fatalf("apps/v1 document lacks the deployment item path")
		}
		var patch struct {
			Parameters []param `json:"parameters"`
		}
		if err := json.Unmarshal(item["patch"], &patch); err != nil {
			t.Fatalf("PATCH of deployments: %v (%s)", err, item["patch"])
		}
		names := sets.New[string]()
		for _, p := range patch.Parameters {
			if p.Ref != "" {
				p = doc.Comps.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
			}
			names.Insert(p.Name)
		}
		for _, want := range []string{"fieldValidation", "fieldManager", "dryRun", "force"} {
			if !names.Has(want) {
				t.Errorf("PATCH of deployments lacks the %s parameter; it has %v", want, sets.List(names))
			}
		}
	})
}

// TestDiscoveryHealthAndTables: the health endpoints, and the server-side
// tables kubectl get prints.
func testDiscoveryHealthAndTables(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	cs := s.admin(0)
	cfg := s.c.Config(0)

	for _, path := range []string{"/healthz", "/livez", "/readyz", "/readyz/etcd", "/livez/etcd"} {
		t.Run(path, func(t *testing.T) {
			code, _, body, err := s.raw(ctx, cfg, http.MethodGet, path, "")
			if err != nil || code != 200 || string(body) != "ok" {
				t.Fatalf("%s: %d %v %q, want 200 ok", path, code, err, body)
			}
		})
	}
	t.Run("/readyz?verbose", func(t *testing.T) {
		code, _, body, err := s.raw(ctx, cfg, http.MethodGet, "/readyz?verbose", "")
		if err != nil || code != 200 {
			t.Fatalf("%d %v", code, err)
		}
		for _, want := range []string{"[+]ping ok", "[+]etcd ok", "readyz check passed"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("verbose readyz lacks %q:\n%s", want, body)
			}
		}
	})
	t.Run("unknown check", func(t *testing.T) {
		code, _, _, err := s.raw(ctx, cfg, http.MethodGet, "/readyz/no-such-check", "")
		if err != nil || code != 404 {
			t.Fatalf("/readyz/no-such-check: %d %v, want 404", code, err)
		}
	})

	if _, err := cs.CoreV1().Pods("default").Create(ctx, s.pod("table-pod", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, s.deployment("table-deploy", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io"
	for _, tc := range []struct {
		path    string
		columns []string
		row     []any // leading cells of the first row
	}{
		{"/api/v1/namespaces/default/pods", []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}, []any{"table-pod", "0/1", "Pending", "0"}},
		{"/api/v1/namespaces/default/pods/table-pod", []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}, []any{"table-pod"}},
		{"/apis/apps/v1/namespaces/default/deployments", []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"}, []any{"table-deploy", "0/2"}},
		{"/api/v1/namespaces", []string{"NAME", "STATUS", "AGE"}, []any{"default", "Active"}},
	} {
		t.Run("table "+tc.path, func(t *testing.T) {
			code, ctype, body, err := s.raw(ctx, cfg, http.MethodGet, tc.path, tableAccept)
			if err != nil || code != 200 {
				t.Fatalf("%d %v %.300s", code, err, body)
			}
			if !strings.HasPrefix(ctype, "application/json") {
				t.Errorf("Content-Type %q", ctype)
			}
			var table metav1.Table
			if err := json.Unmarshal(body, &table); err != nil {
				t.Fatal(err)
			}
			if table.Kind != "Table" || table.APIVersion != "meta.k8s.io/v1" {
				t.Errorf("kind %q apiVersion %q, want Table meta.k8s.io/v1", table.Kind, table.APIVersion)
			}
			var cols []string
			for _, c := range table.ColumnDefinitions {
				cols = append(cols, strings.ToUpper(c.Name))
			}
			if len(cols) < len(tc.columns) || !slices.Equal(cols[:len(tc.columns)], tc.columns) {
				t.Errorf("columns %v, want them to start %v", cols, tc.columns)
			}
			if len(table.Rows) == 0 {
				t.Fatal("no rows")
			}
			row := table.Rows[0]
			if len(row.Cells) != len(table.ColumnDefinitions) {
				t.Errorf("row has %d cells for %d columns", len(row.Cells), len(table.ColumnDefinitions))
			}
			for i, want := range tc.row {
				if i >= len(row.Cells) || row.Cells[i] != want {
					t.Errorf("row cells %v, want them to start %v", row.Cells, tc.row)
					break
				}
			}
			// The default includeObject=Metadata attaches each row's object
			// metadata, which kubectl uses for --show-labels and sorting.
			var obj metav1.PartialObjectMetadata
			if err := json.Unmarshal(row.Object.Raw, &obj); err != nil || obj.Kind != "PartialObjectMetadata" || obj.Name != tc.row[0] {
				t.Errorf("row object %s (%v), want PartialObjectMetadata of %v", row.Object.Raw, err, tc.row[0])
			}
		})
	}
}
