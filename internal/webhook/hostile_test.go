/*
Copyright 2026 The Clearance Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// hostileSnapshot is every Clearance object and key Secret in the given namespaces, as JSON,
// resourceVersions included: any write, even a no-op one that bumps a version, shows.
func hostileSnapshot(t *testing.T, namespaces ...string) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, ns := range namespaces {
		lists := []client.ObjectList{&v1.ApplicationList{}, &v1.APIKeyList{}, &v1.OrgConnectionList{}, &v1.MetricSetList{}}
		for _, l := range lists {
			if err := env.Client.List(ctx, l, client.InNamespace(ns)); err != nil {
				t.Fatal(err)
			}
		}
		secrets := &corev1.SecretList{}
		if err := env.Client.List(ctx, secrets, client.InNamespace(ns), client.HasLabels{v1.LabelAPIKey}); err != nil {
			t.Fatal(err)
		}
		lists = append(lists, secrets)
		for _, l := range lists {
			l.(metav1.ListInterface).SetResourceVersion("") // the list's own version moves with any write in the cluster
			data, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(data)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// js marshals v, so unicode tricks and wrong types reach the apiserver exactly as written.
func js(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}

type obj = map[string]any

// createRaw creates an object from untyped JSON, so it can carry what the Go types cannot.
func createRaw(c client.Client, ns, kind, name string, spec any) error {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js(obj{
		"apiVersion": v1.GroupVersion.String(), "kind": kind,
		"metadata": obj{"namespace": ns, "name": name}, "spec": spec,
	})); err != nil {
		return fmt.Errorf("building the object: %w", err)
	}
	return c.Create(context.Background(), u)
}

// mergePatch sends a JSON merge patch as c to the object o names.
func mergePatch(c client.Client, o client.Object, patch any) error {
	return c.Patch(context.Background(), o.DeepCopyObject().(client.Object), client.RawPatch(types.MergePatchType, js(patch)))
}

func TestHostileObjectsAreRefusedClearlyAndChangeNothing(t *testing.T) {
	ctx := context.Background()
	peopleRoles(t)
	org, other := env.Namespace(t, "hostile-a"), env.Namespace(t, "hostile-b")
	ada := newPerson(t, org, "ada", "clearance-org-admin")
	tom := newPerson(t, org, "tom", "clearance-technician")
	admin := env.Client

	// What a normal org holds: an Application with a pinned ID, a key, a connection, a metric
	// set at its cap, a protected default and a key Secret; the other org has its own Application.
	idA, idB := newID(), newID()
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi"}, Spec: v1.ApplicationSpec{
		Description: "BI", ApplicationID: idA, AllowedOrigins: []string{"https://bi.acme.example"},
		RateLimits: []v1.RateLimit{{Name: "general", Limit: 100, Period: metav1.Duration{Duration: 3600e9}}},
	}}
	otherApp := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "partner"}, Spec: v1.ApplicationSpec{Description: "partner", ApplicationID: idB}}
	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "exporter"}, Spec: v1.APIKeySpec{
		ApplicationName: "bi", TTL: &metav1.Duration{Duration: 720 * 3600e9}, Scopes: []string{"reports:read"},
	}}
	connection := conn(org, "partner", idB, v1.RoleObserver)
	two, t1 := int32(2), true
	ms := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "default"}, Spec: v1.MetricSetSpec{
		MaxEnabled: &two, Metrics: []v1.Metric{{Name: "occupancy.current", Enabled: &t1}, {Name: "occupancy.peak", Enabled: &t1}},
	}}
	protected := &v1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "system-default", Labels: map[string]string{v1.LabelProtected: "true"}},
		Spec:       v1.ApplicationSpec{Description: "system default"},
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "exporter-key", Labels: map[string]string{v1.LabelAPIKey: "exporter"}},
		StringData: map[string]string{"key": "not-a-real-key"}}
	for _, o := range []client.Object{app, key, connection, ms} {
		if err := ada.c.Create(ctx, o); err != nil {
			t.Fatalf("creating %s: %v", o.GetName(), err)
		}
	}
	// A system default is the platform team's to make.
	for _, o := range []client.Object{protected, otherApp, secret} {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("creating %s: %v", o.GetName(), err)
		}
	}
	// The uniqueness checks read the webhook's cache: wait until it has the fixtures.
	eventually(t, func() bool {
		return admin.Create(ctx, conn(org, "probe", idB, v1.RoleObserver), client.DryRunAll) != nil &&
			admin.Create(ctx, &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "probe"},
				Spec: v1.ApplicationSpec{Description: "probe", ApplicationID: idA}}, client.DryRunAll) != nil
	})

	long := func(n int, s string) string { return strings.Repeat(s, n) }
	many := func(n int, f func(i int) any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	manyKeys := func(n int, prefix string) obj {
		m := obj{}
		for i := range n {
			m[fmt.Sprintf("%s%d", prefix, i)] = "x"
		}
		return m
	}
	keySpec := func(extra obj) obj {
		s := obj{"applicationName": "bi"}
		for k, v := range extra {
			s[k] = v
		}
		return s
	}
	appSpec := func(extra obj) obj {
		s := obj{"description": "hostile"}
		for k, v := range extra {
			s[k] = v
		}
		return s
	}

	cases := []struct {
		name string
		do   func() error
		want string
	}{
		// Huge fields.
		{"application description of 300 characters",
			func() error {
				return createRaw(admin, org, "Application", "h-desc", appSpec(obj{"description": long(300, "x")}))
			},
			"spec.description: Too long: may not be more than 256 bytes"},
		{"key description of 300 characters",
			func() error { return mergePatch(admin, key, obj{"spec": obj{"description": long(300, "é")}}) },
			"spec.description: Too long: may not be more than 256 bytes"},
		{"scope of 10000 characters",
			func() error {
				return createRaw(admin, org, "APIKey", "h-scope", keySpec(obj{"scopes": []string{"reports:" + long(10000, "r")}}))
			},
			"spec.scopes[0]: Too long: may not be more than 128 bytes"},
		{"100 scopes",
			func() error {
				return mergePatch(admin, key, obj{"spec": obj{"scopes": many(100, func(i int) any { return fmt.Sprintf("s%d:read", i) })}})
			},
			"spec.scopes: Too many: 100: must have at most 32 items"},
		{"3000 metrics",
			func() error {
				return createRaw(admin, org, "MetricSet", "h-metrics", obj{"maxEnabled": 1000, "metrics": many(3000, func(i int) any { return obj{"name": fmt.Sprintf("m%d", i)} })})
			},
			"spec.metrics: Too many: 3000: must have at most 2000 items"},
		{"65 allowed origins",
			func() error {
				return mergePatch(admin, app, obj{"spec": obj{"allowedOrigins": many(65, func(i int) any { return fmt.Sprintf("https://o%d.example", i) })}})
			},
			"spec.allowedOrigins: Too many: 65: must have at most 64 items"},
		{"17 rate limits",
			func() error {
				return mergePatch(admin, app, obj{"spec": obj{"rateLimits": many(17, func(i int) any { return obj{"name": fmt.Sprintf("b%d", i), "limit": 1, "period": "1h"} })}})
			},
			"spec.rateLimits: Too many: 17: must have at most 16 items"},
		{"secretTemplate with 40 labels",
			func() error {
				return mergePatch(admin, key, obj{"spec": obj{"secretTemplate": obj{"labels": manyKeys(40, "l")}}})
			},
			"spec.secretTemplate.labels: Too many: 40: must have at most 32 items"},
		{"secretTemplate with 40 annotations",
			func() error {
				return mergePatch(admin, key, obj{"spec": obj{"secretTemplate": obj{"annotations": manyKeys(40, "a")}}})
			},
			"spec.secretTemplate.annotations: Too many: 40: must have at most 32 items"},
		// The apiserver would refuse the key's Secret (256 KiB of annotations at most), so the
		// operator could never deliver the key: refused at apply time instead.
		{"secretTemplate annotations of 300 KiB",
			func() error {
				return mergePatch(admin, key, obj{"spec": obj{"secretTemplate": obj{"annotations": obj{"example.com/blob": long(300<<10, "a")}}}})
			},
			"secretTemplate.annotations of APIKey exporter hold 307216 bytes, more than the 261120 (255 KiB) a key Secret leaves them"},
		{"300 KiB of annotations on an application",
			func() error {
				return mergePatch(admin, app, obj{"metadata": obj{"annotations": obj{"example.com/blob": long(300<<10, "a")}}})
			},
			"metadata.annotations: Too long: may not be more than 262144 bytes"},
		{"label value of 100 characters on a connection",
			func() error {
				return mergePatch(admin, connection, obj{"metadata": obj{"labels": obj{"team": long(100, "a")}}})
			},
			`metadata.labels: Invalid value: "` + long(100, "a") + `": must be no more than 63 bytes`},

		// Unicode tricks.
		{"application description of zero-width spaces only",
			func() error {
				return createRaw(admin, org, "Application", "h-zwsp", appSpec(obj{"description": "\u200b\u200b\u200b"}))
			},
			"description must be plain text without control or invisible formatting characters"},
		{"key description of a zero-width space",
			func() error { return mergePatch(admin, key, obj{"spec": obj{"description": "\u200b"}}) },
			"description must be plain text without control or invisible formatting characters"},
		{"application description with a terminal escape",
			func() error {
				return createRaw(admin, org, "Application", "h-esc", appSpec(obj{"description": "BI\x1b[31mred"}))
			},
			"description must be plain text without control or invisible formatting characters"},
		{"application description with a right-to-left override",
			func() error {
				return createRaw(admin, org, "Application", "h-rlo", appSpec(obj{"description": "BI \u202egnp.exe"}))
			},
			"description must be plain text without control or invisible formatting characters"},
		{"secret template label key that is no label key",
			func() error {
				return mergePatch(admin, key, obj{"spec": obj{"secretTemplate": obj{"labels": obj{"not a label key!": "x"}}}})
			},
			`secretTemplate.labels key "not a label key!" is not a valid label key`},
		{"secret template label value of 100 characters",
			func() error {
				return mergePatch(admin, key, obj{"spec": obj{"secretTemplate": obj{"labels": obj{"team": long(100, "a")}}}})
			},
			"secretTemplate.labels[team] is not a valid label value: must be no more than 63 bytes"},
		{"secret template label claiming the Clearance prefix in capitals",
			func() error {
				return mergePatch(admin, key, obj{"spec": obj{"secretTemplate": obj{"labels": obj{"Access.clearance.dev/apikey": "x"}}}})
			},
			"secretTemplate.labels cannot use the access.clearance.dev/ prefix"},
		{"key rate-limit bucket its application does not define",
			func() error {
				return mergePatch(admin, key, obj{"spec": obj{"rateLimits": []any{obj{"name": "unknown", "limit": 5, "period": "1h"}}}})
			},
			`rate limit bucket "unknown" is not defined by Application bi: a key may only narrow its application's buckets`},
		{"key rate limit wider than its application's",
			func() error {
				return mergePatch(admin, key, obj{"spec": obj{"rateLimits": []any{obj{"name": "general", "limit": 1000000, "period": "1h"}}}})
			},
			`rate limit "general" (1000000 per 1h0m0s) allows more than Application bi's (100 per 1h0m0s): a key may only narrow it`},
		{"description of only whitespace (tab, newline, NBSP, ideographic space)",
			func() error {
				return createRaw(admin, org, "Application", "h-ws", appSpec(obj{"description": "\t\n \u00a0\u3000"}))
			},
			"description must not be blank: say what the application is, e.g. Acme BI export"},
		{"right-to-left override in a scope",
			func() error {
				return mergePatch(admin, key, obj{"spec": obj{"scopes": []string{"reports:\u202edaer"}}})
			},
			"each scope must be lowercase words joined by ':', e.g. reports:read"},
		{"Cyrillic а homoglyph in an Application ID",
			func() error {
				return createRaw(admin, org, "Application", "h-homoglyph", appSpec(obj{"applicationID": "\u0430" + idA[1:]}))
			},
			"applicationID must be app_ followed by 26 lowercase letters or digits"},
		{"fullwidth digits in a connection's application ID",
			func() error {
				return createRaw(admin, org, "OrgConnection", "h-fullwidth", obj{"applicationID": "app_" + long(26, "\uff11")})
			},
			"applicationID must be app_ followed by 26 lowercase letters or digits"},
		{"NUL byte in a key's applicationName",
			func() error {
				return createRaw(admin, org, "APIKey", "h-nul", keySpec(obj{"applicationName": "bi\x00"}))
			},
			"applicationName must be the metadata.name of an Application in this namespace"},
		{"NUL byte in a connection's application ID",
			func() error {
				return createRaw(admin, org, "OrgConnection", "h-nul", obj{"applicationID": idB[:29] + "\x00"})
			},
			"applicationID must be app_ followed by 26 lowercase letters or digits"},
		{"Cyrillic е homoglyph in a metric name",
			func() error {
				return mergePatch(admin, ms, obj{"spec": obj{"metrics": []any{obj{"name": "occupancy.curr\u0435nt"}}}})
			},
			"metric names are lowercase words joined by '.', e.g. occupancy.current"},

		// Wrong types.
		{"spec.enabled set to \"yes\"",
			func() error { return mergePatch(admin, key, obj{"spec": obj{"enabled": "yes"}}) },
			`spec.enabled: Invalid value: "string": spec.enabled in body must be of type boolean: "string"`},
		{"spec.role set to 3",
			func() error { return mergePatch(admin, connection, obj{"spec": obj{"role": 3}}) },
			`spec.role: Invalid value: "integer": spec.role in body must be of type string: "integer"`},
		{"spec.role set to an unknown role",
			func() error { return mergePatch(admin, connection, obj{"spec": obj{"role": "Root"}}) },
			`spec.role: Unsupported value: "Root": supported values: "Observer", "Analyst", "Technician", "OrgAdmin"`},
		{"spec.metrics set to a string",
			func() error { return mergePatch(admin, ms, obj{"spec": obj{"metrics": "all"}}) },
			`spec.metrics: Invalid value: "string": spec.metrics in body must be of type array: "string"`},
		{"spec.maxEnabled set to a string",
			func() error { return mergePatch(admin, ms, obj{"spec": obj{"maxEnabled": "fifty"}}) },
			`spec.maxEnabled: Invalid value: "string": spec.maxEnabled in body must be of type integer: "string"`},
		{"rate limit of -1",
			func() error {
				return mergePatch(admin, app, obj{"spec": obj{"rateLimits": []any{obj{"name": "general", "limit": -1, "period": "1h"}}}})
			},
			"spec.rateLimits[0].limit: Invalid value: -1: spec.rateLimits[0].limit in body should be greater than or equal to 1"},
		{"rate limit of 1e20",
			func() error {
				return mergePatch(admin, app, obj{"spec": obj{"rateLimits": []any{obj{"name": "general", "limit": 1e20, "period": "1h"}}}})
			},
			"spec.rateLimits[0].limit: Invalid value: 1e+20: spec.rateLimits[0].limit in body should be less than or equal to 1e+09"},
		{"rate limit period of 1d",
			func() error {
				return mergePatch(admin, app, obj{"spec": obj{"rateLimits": []any{obj{"name": "general", "limit": 5, "period": "1d"}}}})
			},
			"period must be between 1s and 8760h (one year), for example 1h"},
		{"rate limit period of -5m",
			func() error {
				return mergePatch(admin, app, obj{"spec": obj{"rateLimits": []any{obj{"name": "general", "limit": 5, "period": "-5m"}}}})
			},
			"period must be between 1s and 8760h (one year), for example 1h"},
		{"rate limit period of 9000h",
			func() error {
				return mergePatch(admin, app, obj{"spec": obj{"rateLimits": []any{obj{"name": "general", "limit": 5, "period": "9000h"}}}})
			},
			"period must be between 1s and 8760h (one year), for example 1h"},
		{"ttl of 1d",
			func() error { return createRaw(admin, org, "APIKey", "h-ttl-1d", keySpec(obj{"ttl": "1d"})) },
			`spec.ttl: Invalid value: "1d": ttl must be at least 1m, written as a duration such as 720h`},
		{"ttl of -5m",
			func() error { return createRaw(admin, org, "APIKey", "h-ttl-neg", keySpec(obj{"ttl": "-5m"})) },
			"ttl must be at least 1m, written as a duration such as 720h"},
		{"empty ttl",
			func() error { return createRaw(admin, org, "APIKey", "h-ttl-empty", keySpec(obj{"ttl": ""})) },
			`spec.ttl: Invalid value: "": ttl must be at least 1m, written as a duration such as 720h`},
		{"rotation every 1d",
			func() error {
				return createRaw(admin, org, "APIKey", "h-every-1d", keySpec(obj{"rotation": obj{"every": "1d"}}))
			},
			`spec.rotation.every: Invalid value: "1d": rotation.every must be at least 1m, written as a duration such as 720h`},
		{"rotation every -5m",
			func() error {
				return createRaw(admin, org, "APIKey", "h-every-neg", keySpec(obj{"rotation": obj{"every": "-5m"}}))
			},
			"rotation.every must be at least 1m, written as a duration such as 720h"},
		{"empty rotation every",
			func() error {
				return createRaw(admin, org, "APIKey", "h-every-empty", keySpec(obj{"rotation": obj{"every": ""}}))
			},
			`spec.rotation.every: Invalid value: "": rotation.every must be at least 1m, written as a duration such as 720h`},
		{"scopes set to an object",
			func() error { return mergePatch(admin, key, obj{"spec": obj{"scopes": obj{"reports": "read"}}}) },
			`spec.scopes: Invalid value: "object": spec.scopes in body must be of type array: "object"`},

		// Cross-namespace references and IDs of other orgs.
		{"a second connection for the same application in one org",
			func() error { return ada.c.Create(ctx, conn(org, "partner-again", idB, v1.RoleObserver)) },
			fmt.Sprintf(`org %q already connects application %s with OrgConnection "partner": edit the role there instead of creating another connection`, org, idB)},
		{"pinning another org's Application ID",
			func() error {
				return admin.Create(ctx, &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "thief"}, Spec: v1.ApplicationSpec{Description: "thief", ApplicationID: idA}})
			},
			fmt.Sprintf("application ID %s already belongs to Application %s/bi: remove spec.applicationID to have a new ID generated", idA, org)},
		{"changing a connection's applicationID",
			func() error { return mergePatch(admin, connection, obj{"spec": obj{"applicationID": idA}}) },
			"spec.applicationID cannot change: delete this OrgConnection and create one for the other application"},
		{"changing an Application's pinned ID to another org's",
			func() error { return mergePatch(admin, app, obj{"spec": obj{"applicationID": idB}}) },
			"spec.applicationID cannot be changed or removed once set: create a new Application for a new ID"},
		{"removing an Application's pinned ID",
			func() error { return mergePatch(admin, app, obj{"spec": obj{"applicationID": nil}}) },
			"spec.applicationID cannot be changed or removed once set: create a new Application for a new ID"},
		{"changing a key's applicationName",
			func() error { return mergePatch(admin, key, obj{"spec": obj{"applicationName": "system-default"}}) },
			"spec.applicationName cannot change: create a new APIKey for the other application"},
		{"a key naming an Application in another namespace",
			func() error {
				return createRaw(admin, org, "APIKey", "h-xns", keySpec(obj{"applicationName": other + "/partner"}))
			},
			"applicationName must be the metadata.name of an Application in this namespace"},
		{"a connection limited to another namespace's MetricSet",
			func() error {
				return mergePatch(admin, connection, obj{"spec": obj{"metricSets": []string{other + "/default"}}})
			},
			"each metricSets entry must be the metadata.name of a MetricSet in this namespace"},
		{"secretTemplate making the Secret a service-account token",
			func() error {
				return mergePatch(admin, key, obj{"spec": obj{"secretTemplate": obj{"annotations": obj{"kubernetes.io/service-account.name": "default"}}}})
			},
			"secretTemplate.annotations cannot set service-account, last-applied-configuration or access.clearance.dev/ annotations: remove them"},
		{"secretTemplate setting the apikey label",
			func() error {
				return createRaw(admin, org, "APIKey", "h-label", keySpec(obj{"secretTemplate": obj{"labels": obj{v1.LabelAPIKey: "exporter"}}}))
			},
			"secretTemplate.labels cannot use the access.clearance.dev/ prefix: the operator owns those labels"},
		{"secretTemplate setting last-applied-configuration",
			func() error {
				return mergePatch(admin, key, obj{"spec": obj{"secretTemplate": obj{"annotations": obj{"kubectl.kubernetes.io/last-applied-configuration": "{}"}}}})
			},
			"secretTemplate.annotations cannot set service-account, last-applied-configuration or access.clearance.dev/ annotations: remove them"},
		{"a technician raising a connection to OrgAdmin",
			func() error { return mergePatch(tom.c, connection, obj{"spec": obj{"role": "OrgAdmin"}}) },
			fmt.Sprintf(`user "tom" may not assign role OrgAdmin in org %q: assigning it needs the bind verb on orgroles.access.clearance.dev named "OrgAdmin"`, org)},
		{"a technician creating a connection",
			func() error { return tom.c.Create(ctx, conn(org, "tom-own", newID(), v1.RoleObserver)) },
			fmt.Sprintf(`User "tom" cannot create resource "orgconnections" in API group "access.clearance.dev" in the namespace %q`, org)},
		{"an org admin creating an Application in another org",
			func() error { return createRaw(ada.c, other, "Application", "h-foreign", appSpec(nil)) },
			fmt.Sprintf(`User "ada" cannot create resource "applications" in API group "access.clearance.dev" in the namespace %q`, other)},
		{"an org admin connecting an application in another org",
			func() error { return ada.c.Create(ctx, conn(other, "h-foreign", idA, v1.RoleOrgAdmin)) },
			fmt.Sprintf(`User "ada" cannot create resource "orgconnections" in API group "access.clearance.dev" in the namespace %q`, other)},

		// Protected objects and recorded metadata.
		{"deleting a protected Application",
			func() error { return ada.c.Delete(ctx, protected.DeepCopy()) },
			fmt.Sprintf("Application %s/system-default is a protected system default (label access.clearance.dev/protected=true) and cannot be deleted", org)},
		{"removing the protected label",
			func() error {
				return mergePatch(ada.c, protected, obj{"metadata": obj{"labels": obj{v1.LabelProtected: nil}}})
			},
			fmt.Sprintf("the access.clearance.dev/protected=true label of Application %s/system-default cannot be removed: it marks a system default", org)},
		{"setting the protected label to false",
			func() error {
				return mergePatch(admin, protected, obj{"metadata": obj{"labels": obj{v1.LabelProtected: "false"}}})
			},
			fmt.Sprintf("the access.clearance.dev/protected=true label of Application %s/system-default cannot be removed: it marks a system default", org)},
		{"rewriting who created a key",
			func() error {
				return mergePatch(ada.c, key, obj{"metadata": obj{"annotations": obj{v1.AnnotationCreatedBy: "mallory"}}})
			},
			`annotation access.clearance.dev/created-by records who created APIKey exporter and cannot change (it is "ada"): leave it as it is`},

		// Caps and contradictory settings.
		{"enabling a metric over the cap",
			func() error {
				return mergePatch(admin, ms, obj{"spec": obj{"metrics": []any{obj{"name": "occupancy.current"}, obj{"name": "occupancy.peak"}, obj{"name": "occupancy.mean"}}}})
			},
			"more metrics are enabled than spec.maxEnabled allows: disable some or raise maxEnabled"},
		{"lowering the cap below what is enabled",
			func() error { return mergePatch(admin, ms, obj{"spec": obj{"maxEnabled": 1}}) },
			"more metrics are enabled than spec.maxEnabled allows: disable some or raise maxEnabled"},
		{"a cap over 1000",
			func() error { return createRaw(admin, org, "MetricSet", "h-cap", obj{"maxEnabled": 1001}) },
			"spec.maxEnabled: Invalid value: 1001: spec.maxEnabled in body should be less than or equal to 1000"},
		{"expiresAt and ttl both",
			func() error {
				return createRaw(admin, org, "APIKey", "h-both", keySpec(obj{"expiresAt": "2030-01-01T00:00:00Z", "ttl": "720h"}))
			},
			"set either spec.expiresAt or spec.ttl, not both"},
		{"rotation overlap equal to every",
			func() error {
				return createRaw(admin, org, "APIKey", "h-overlap", keySpec(obj{"rotation": obj{"every": "24h", "overlap": "24h"}}))
			},
			"rotation.overlap must be shorter than rotation.every, e.g. every: 720h with overlap: 24h"},
		{"rotation overlap longer than every",
			func() error {
				return mergePatch(admin, key, obj{"spec": obj{"rotation": obj{"every": "1h", "overlap": "720h"}}})
			},
			"rotation.overlap must be shorter than rotation.every, e.g. every: 720h with overlap: 24h"},
		{"negative rotation overlap",
			func() error {
				return createRaw(admin, org, "APIKey", "h-overlap-neg", keySpec(obj{"rotation": obj{"every": "24h", "overlap": "-1h"}}))
			},
			"rotation.overlap must be a duration such as 24h, not negative"},

		// Origins.
		{"origin with a path",
			func() error {
				return mergePatch(admin, app, obj{"spec": obj{"allowedOrigins": []string{"https://bi.acme.example/app"}}})
			},
			"each allowed origin must be scheme://host[:port] in lowercase with no path, e.g. https://bi.acme.example"},
		{"origin in uppercase",
			func() error {
				return mergePatch(admin, app, obj{"spec": obj{"allowedOrigins": []string{"https://BI.acme.example"}}})
			},
			"each allowed origin must be scheme://host[:port] in lowercase with no path, e.g. https://bi.acme.example"},
		{"javascript: origin",
			func() error {
				return createRaw(admin, org, "Application", "h-js", appSpec(obj{"allowedOrigins": []string{"javascript:alert(1)"}}))
			},
			"each allowed origin must be scheme://host[:port] in lowercase with no path, e.g. https://bi.acme.example"},
		{"wildcard origin",
			func() error { return mergePatch(admin, app, obj{"spec": obj{"allowedOrigins": []string{"*"}}}) },
			"each allowed origin must be scheme://host[:port] in lowercase with no path, e.g. https://bi.acme.example"},

		// Malformed application IDs.
		{"application ID too short",
			func() error {
				return createRaw(admin, org, "OrgConnection", "h-short", obj{"applicationID": "app_123"})
			},
			`spec.applicationID: Invalid value: "app_123": applicationID must be app_ followed by 26 lowercase letters or digits, as shown in the Application's status.applicationID`},
		{"application ID in uppercase",
			func() error {
				return createRaw(admin, org, "Application", "h-upper", appSpec(obj{"applicationID": strings.ToUpper(idA)}))
			},
			"applicationID must be app_ followed by 26 lowercase letters or digits; copy it from the status of the original Application, or leave it empty to generate one"},
		{"application ID with the wrong prefix",
			func() error {
				return createRaw(admin, org, "OrgConnection", "h-prefix", obj{"applicationID": "key_" + idA[4:]})
			},
			"applicationID must be app_ followed by 26 lowercase letters or digits, as shown in the Application's status.applicationID"},
		{"empty application ID",
			func() error { return createRaw(admin, org, "OrgConnection", "h-empty", obj{"applicationID": ""}) },
			"applicationID must be app_ followed by 26 lowercase letters or digits, as shown in the Application's status.applicationID"},
		{"application ID of 26 spaces after app_",
			func() error {
				return createRaw(admin, org, "OrgConnection", "h-spaces", obj{"applicationID": "app_" + long(26, " ")})
			},
			"applicationID must be app_ followed by 26 lowercase letters or digits, as shown in the Application's status.applicationID"},

		// Duplicates and out-of-range values the list and number schemas catch.
		{"the same scope twice",
			func() error {
				return mergePatch(admin, key, obj{"spec": obj{"scopes": []string{"reports:read", "reports:read"}}})
			},
			`spec.scopes[1]: Duplicate value: "reports:read"`},
		{"the same metric twice",
			func() error {
				return createRaw(admin, org, "MetricSet", "h-dup", obj{"metrics": []any{obj{"name": "occupancy.current"}, obj{"name": "occupancy.current"}}})
			},
			`spec.metrics[1]: Duplicate value: {"name":"occupancy.current"}`},
		{"a negative cap",
			func() error { return mergePatch(admin, ms, obj{"spec": obj{"maxEnabled": -1}}) },
			"spec.maxEnabled: Invalid value: -1: spec.maxEnabled in body should be greater than or equal to 0"},
		{"a catalog reference that walks out of the namespace",
			func() error {
				return mergePatch(admin, ms, obj{"spec": obj{"catalogRef": obj{"name": "../kube-system/catalog"}}})
			},
			`spec.catalogRef.name: Invalid value: "../kube-system/catalog": catalogRef.name must be the metadata.name of a ConfigMap in this namespace`},
		{"an empty role",
			func() error { return mergePatch(admin, connection, obj{"spec": obj{"role": ""}}) },
			`spec.role: Unsupported value: "": supported values: "Observer", "Analyst", "Technician", "OrgAdmin"`},
		{"a ttl that overflows a duration",
			func() error {
				return createRaw(admin, org, "APIKey", "h-ttl-huge", keySpec(obj{"ttl": "9999999999999h"}))
			},
			"ttl must be at least 1m, written as a duration such as 720h"},
		{"a rotation period that overflows a duration",
			func() error {
				return mergePatch(admin, key, obj{"spec": obj{"rotation": obj{"every": "99999999999h"}}})
			},
			"rotation.every must be at least 1m, written as a duration such as 720h"},
	}

	// HOSTILE_EXPLORE=1 logs every refusal, to read the messages when adding cases.
	explore := os.Getenv("HOSTILE_EXPLORE") != ""
	n := 0
	for _, tc := range cases {
		before := hostileSnapshot(t, org, other)
		err := tc.do()
		after := hostileSnapshot(t, org, other)
		if explore {
			t.Logf("CASE %s\n  ERR: %v", tc.name, err)
		}
		switch {
		case err == nil:
			t.Errorf("%s: accepted", tc.name)
		case !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s:\n got: %v\nwant it to contain: %s", tc.name, err, tc.want)
		}
		if before != after {
			t.Errorf("%s: refused or not, it changed something:\nbefore: %.2000s\n after: %.2000s", tc.name, before, after)
		}
		if err != nil && before == after {
			n++
		}
	}
	t.Logf("%d hostile inputs refused, nothing changed", n)
}

// TestASecretTemplateKeyThatIsNoQualifiedNameIsRefusedForLabelsAndAnnotationsAlike: a key's
// Secret template names label keys and annotation keys the operator must be able to write on
// the Secret. Every kind of key the apiserver would refuse on a Secret (a space, a leading or
// trailing dash, two slashes, an empty prefix or name, a prefix that is no DNS subdomain, a
// name over 63 characters, a non-ASCII letter) is refused by clearance-apikey at apply, in
// labels and in annotations, on create and on update, and the same keys made valid pass.
func TestASecretTemplateKeyThatIsNoQualifiedNameIsRefusedForLabelsAndAnnotationsAlike(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "template-keys")
	admin := env.Client
	keySpec := func(template obj) obj {
		return obj{"applicationName": "bi", "ttl": "720h", "secretTemplate": template}
	}
	if err := createRaw(admin, org, "APIKey", "exporter", keySpec(obj{})); err != nil {
		t.Fatal(err)
	}
	key := &v1.APIKey{}
	key.Namespace, key.Name = org, "exporter"
	invalid := []string{
		"not a key!", "-team", "team-", "a/b/c", "/team", "example.com/", "Example_Com/team",
		strings.Repeat("n", 64), "example.com/" + strings.Repeat("n", 64), "tëam",
	}
	valid := []string{"team", "example.com/team", "team.example.com/cost-center_2", strings.Repeat("n", 63)}
	for _, field := range []string{"labels", "annotations"} {
		kind := strings.TrimSuffix(field, "s")
		for i, k := range invalid {
			want := fmt.Sprintf(`secretTemplate.%s key %q is not a valid %s key: `, field, k, kind)
			template := obj{field: obj{k: "x"}}
			name := fmt.Sprintf("bad-%s-%d", kind, i)
			if err := createRaw(admin, org, "APIKey", name, keySpec(template)); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("creating a key whose template has %s key %q: %v, want a refusal containing %q", kind, k, err, want)
			}
			if err := mergePatch(admin, key, obj{"spec": obj{"secretTemplate": template}}); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("giving a key's template %s key %q: %v, want a refusal containing %q", kind, k, err, want)
			}
		}
		for _, k := range valid {
			patch := client.RawPatch(types.MergePatchType, js(obj{"spec": obj{"secretTemplate": obj{field: obj{k: "x"}}}}))
			if err := admin.Patch(ctx, key.DeepCopy(), patch, client.DryRunAll); err != nil {
				t.Errorf("a template with %s key %q is valid: %v", kind, k, err)
			}
		}
	}
}
