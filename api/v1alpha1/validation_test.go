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

package v1alpha1_test

import (
	"context"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	flag.Parse()
	// Fuzzing runs the binary once per worker; matching redirect URIs needs no apiserver.
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	testenv.Main(m, &env)
}

const validID = "app_0123456789abcdefghijklmnop"

func application(name string) *v1.Application {
	return &v1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1.ApplicationSpec{Description: "Acme BI export"},
	}
}

func apiKey(name string) *v1.APIKey {
	return &v1.APIKey{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1.APIKeySpec{ApplicationName: "acme-bi"},
	}
}

func connection(name string) *v1.OrgConnection {
	return &v1.OrgConnection{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1.OrgConnectionSpec{ApplicationID: validID, Role: v1.RoleObserver},
	}
}

func metricSet(name string) *v1.MetricSet {
	return &v1.MetricSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1.MetricSetSpec{},
	}
}

func dur(s string) metav1.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return metav1.Duration{Duration: d}
}

// TestInvalidObjectsAreRefusedWithAMessageThatSaysHowToFixThem applies objects a user might
// write by mistake and checks the exact sentence kubectl would print.
func TestInvalidObjectsAreRefusedWithAMessageThatSaysHowToFixThem(t *testing.T) {
	ns := env.Namespace(t, "invalid")
	cases := []struct {
		name string
		// create is the object to create; when update is set, create must be valid and
		// update's change to it is what must be refused.
		create client.Object
		// minted records a key hash in status first, as the operator does when it mints.
		minted bool
		update func(client.Object)
		want   string
	}{
		{
			name:   "application without a description",
			create: &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: "no-description"}},
			want:   `Application.access.clearance.dev "no-description" is invalid: spec.description: Invalid value: "": description must not be blank: say what the application is, e.g. Acme BI export`,
		},
		{
			name: "application with a blank description",
			create: func() client.Object {
				a := application("blank-description")
				a.Spec.Description = "   "
				return a
			}(),
			want: `Application.access.clearance.dev "blank-description" is invalid: spec.description: Invalid value: "   ": description must not be blank: say what the application is, e.g. Acme BI export`,
		},
		{
			name: "application with a description over 256 characters",
			create: func() client.Object {
				a := application("long-description")
				a.Spec.Description = strings.Repeat("x", 257)
				return a
			}(),
			want: `Application.access.clearance.dev "long-description" is invalid: [spec.description: Too long: may not be more than 256 bytes, <nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation]`,
		},
		{
			name: "application pinning a malformed ID",
			create: func() client.Object {
				a := application("bad-id")
				a.Spec.ApplicationID = "app_ABC"
				return a
			}(),
			want: `Application.access.clearance.dev "bad-id" is invalid: spec.applicationID: Invalid value: "app_ABC": applicationID must be app_ followed by 26 lowercase letters or digits; copy it from the status of the original Application, or leave it empty to generate one`,
		},
		{
			name: "application changing its pinned ID",
			create: func() client.Object {
				a := application("changed-id")
				a.Spec.ApplicationID = validID
				return a
			}(),
			update: func(o client.Object) { o.(*v1.Application).Spec.ApplicationID = "app_zzzzzzzzzzzzzzzzzzzzzzzzzz" },
			want:   `Application.access.clearance.dev "changed-id" is invalid: spec.applicationID: Invalid value: spec.applicationID cannot be changed or removed once set: create a new Application for a new ID`,
		},
		{
			name: "application removing its pinned ID",
			create: func() client.Object {
				a := application("removed-id")
				a.Spec.ApplicationID = validID
				return a
			}(),
			update: func(o client.Object) { o.(*v1.Application).Spec.ApplicationID = "" },
			want:   `Application.access.clearance.dev "removed-id" is invalid: spec.applicationID: Invalid value: spec.applicationID cannot be changed or removed once set: create a new Application for a new ID`,
		},
		{
			name: "application allowing an origin with a path",
			create: func() client.Object {
				a := application("origin-path")
				a.Spec.AllowedOrigins = []string{"https://bi.acme.example/app"}
				return a
			}(),
			want: `Application.access.clearance.dev "origin-path" is invalid: spec.allowedOrigins[0]: Invalid value: "https://bi.acme.example/app": each allowed origin must be scheme://host[:port] in lowercase with no path, e.g. https://bi.acme.example`,
		},
		{
			name: "application with a zero rate limit",
			create: func() client.Object {
				a := application("zero-limit")
				a.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: 0, Period: dur("1h")}}
				return a
			}(),
			want: `Application.access.clearance.dev "zero-limit" is invalid: spec.rateLimits[0].limit: Invalid value: 0: spec.rateLimits[0].limit in body should be greater than or equal to 1`,
		},
		{
			name: "application with a rate-limit period under a second",
			create: func() client.Object {
				a := application("short-period")
				a.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: 10, Period: dur("10ms")}}
				return a
			}(),
			want: `Application.access.clearance.dev "short-period" is invalid: spec.rateLimits[0]: Invalid value: period must be between 1s and 8760h (one year), for example 1h`,
		},
		{
			name:   "key without an application",
			create: &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Name: "no-app"}},
			want:   `APIKey.access.clearance.dev "no-app" is invalid: spec.applicationName: Invalid value: "": applicationName must be the metadata.name of an Application in this namespace (lowercase letters, digits, '-' and '.')`,
		},
		{
			name: "key with both expiresAt and ttl",
			create: func() client.Object {
				k := apiKey("both-expiries")
				k.Spec.ExpiresAt = &metav1.Time{Time: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
				k.Spec.TTL = ptr.To(dur("720h"))
				return k
			}(),
			want: `APIKey.access.clearance.dev "both-expiries" is invalid: spec.ttl: Invalid value: set either spec.expiresAt or spec.ttl, not both`,
		},
		{
			name: "key with a ttl under a minute",
			create: func() client.Object {
				k := apiKey("short-ttl")
				k.Spec.TTL = ptr.To(dur("10s"))
				return k
			}(),
			want: `APIKey.access.clearance.dev "short-ttl" is invalid: spec.ttl: Invalid value: "10s": ttl must be at least 1m, written as a duration such as 720h`,
		},
		{
			name: "key whose rotation overlap is not shorter than its period",
			create: func() client.Object {
				k := apiKey("long-overlap")
				k.Spec.Rotation = &v1.KeyRotation{Every: dur("24h"), Overlap: ptr.To(dur("24h"))}
				return k
			}(),
			want: `APIKey.access.clearance.dev "long-overlap" is invalid: spec.rotation.overlap: Invalid value: rotation.overlap must be shorter than rotation.every, e.g. every: 720h with overlap: 24h`,
		},
		{
			name: "key with a malformed scope",
			create: func() client.Object {
				k := apiKey("bad-scope")
				k.Spec.Scopes = []string{"Reports Read"}
				return k
			}(),
			want: `APIKey.access.clearance.dev "bad-scope" is invalid: spec.scopes[0]: Invalid value: "Reports Read": each scope must be lowercase words joined by ':', e.g. reports:read`,
		},
		{
			name:   "key moved to another application",
			create: apiKey("moved"),
			update: func(o client.Object) { o.(*v1.APIKey).Spec.ApplicationName = "other-app" },
			want:   `APIKey.access.clearance.dev "moved" is invalid: spec.applicationName: Invalid value: spec.applicationName cannot change: create a new APIKey for the other application`,
		},
		{
			name: "minted key moved to another Secret",
			create: func() client.Object {
				k := apiKey("moved-secret")
				k.Spec.SecretName = "first"
				return k
			}(),
			minted: true,
			update: func(o client.Object) { o.(*v1.APIKey).Spec.SecretName = "second" },
			want:   `APIKey.access.clearance.dev "moved-secret" is invalid: spec.secretName: Invalid value: spec.secretName cannot change once the key is minted: create a new APIKey to deliver a key into another Secret`,
		},
		{
			name:   "minted key given a ttl afterwards",
			create: apiKey("late-ttl"),
			minted: true,
			update: func(o client.Object) { o.(*v1.APIKey).Spec.TTL = ptr.To(dur("720h")) },
			want:   `APIKey.access.clearance.dev "late-ttl" is invalid: spec.ttl: Invalid value: spec.ttl counts from the first mint and cannot be added or changed afterwards: set spec.expiresAt to change this key's expiry`,
		},
		{
			name: "key whose Secret template claims a Clearance label",
			create: func() client.Object {
				k := apiKey("template-label")
				k.Spec.SecretTemplate = &v1.SecretTemplate{Labels: map[string]string{v1.LabelAPIKey: "someone-else"}}
				return k
			}(),
			want: `APIKey.access.clearance.dev "template-label" is invalid: spec.secretTemplate.labels: Invalid value: secretTemplate.labels cannot use the access.clearance.dev/ prefix: the operator owns those labels`,
		},
		{
			name: "key whose Secret template turns it into a service-account token",
			create: func() client.Object {
				k := apiKey("template-sa")
				k.Spec.SecretTemplate = &v1.SecretTemplate{Annotations: map[string]string{"kubernetes.io/service-account.name": "default"}}
				return k
			}(),
			want: `APIKey.access.clearance.dev "template-sa" is invalid: spec.secretTemplate.annotations: Invalid value: secretTemplate.annotations cannot set service-account, last-applied-configuration or access.clearance.dev/ annotations: remove them`,
		},
		{
			name: "connection with an unknown role",
			create: func() client.Object {
				c := connection("bad-role")
				c.Spec.Role = "Admin"
				return c
			}(),
			want: `OrgConnection.access.clearance.dev "bad-role" is invalid: [spec.role: Unsupported value: "Admin": supported values: "Observer", "Analyst", "Technician", "OrgAdmin", <nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation]`,
		},
		{
			name: "connection to a malformed application ID",
			create: func() client.Object {
				c := connection("bad-app-id")
				c.Spec.ApplicationID = "acme-bi"
				return c
			}(),
			want: `OrgConnection.access.clearance.dev "bad-app-id" is invalid: spec.applicationID: Invalid value: "acme-bi": applicationID must be app_ followed by 26 lowercase letters or digits, as shown in the Application's status.applicationID`,
		},
		{
			name: "connection with a transport neither allowed nor refused",
			create: func() client.Object {
				c := connection("bad-transport")
				c.Spec.Transports = &v1.ConnectionTransports{WebSockets: "Off"}
				return c
			}(),
			want: `OrgConnection.access.clearance.dev "bad-transport" is invalid: [spec.transports.webSockets: Unsupported value: "Off": supported values: "Allowed", "Refused", <nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation]`,
		},
		{
			name:   "connection switched to another application",
			create: connection("switched"),
			update: func(o client.Object) { o.(*v1.OrgConnection).Spec.ApplicationID = "app_zzzzzzzzzzzzzzzzzzzzzzzzzz" },
			want:   `OrgConnection.access.clearance.dev "switched" is invalid: spec.applicationID: Invalid value: "app_zzzzzzzzzzzzzzzzzzzzzzzzzz": spec.applicationID cannot change: delete this OrgConnection and create one for the other application`,
		},
		{
			name: "metric set enabling more than its cap",
			create: func() client.Object {
				m := metricSet("over-cap")
				m.Spec.MaxEnabled = ptr.To[int32](1)
				m.Spec.Metrics = []v1.Metric{{Name: "occupancy.current"}, {Name: "occupancy.peak", Enabled: ptr.To(true)}}
				return m
			}(),
			want: `MetricSet.access.clearance.dev "over-cap" is invalid: spec.metrics: Invalid value: more metrics are enabled than spec.maxEnabled allows: disable some or raise maxEnabled`,
		},
		{
			name: "metric set with a malformed metric name",
			create: func() client.Object {
				m := metricSet("bad-metric")
				m.Spec.Metrics = []v1.Metric{{Name: "Occupancy Current"}}
				return m
			}(),
			want: `MetricSet.access.clearance.dev "bad-metric" is invalid: spec.metrics[0].name: Invalid value: "Occupancy Current": metric names are lowercase words joined by '.', e.g. occupancy.current`,
		},
		{
			name: "metric set listing a metric twice",
			create: func() client.Object {
				m := metricSet("twice")
				m.Spec.Metrics = []v1.Metric{{Name: "dwell.p95"}, {Name: "dwell.p95", Enabled: ptr.To(false)}}
				return m
			}(),
			want: `MetricSet.access.clearance.dev "twice" is invalid: spec.metrics[1]: Duplicate value: {"name":"dwell.p95"}`,
		},
	}
	if len(cases) < 15 {
		t.Fatalf("the table must hold at least 15 invalid objects, has %d", len(cases))
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.create
			obj.SetNamespace(ns)
			err := env.Client.Create(ctx, obj)
			if tc.update != nil {
				if err != nil {
					t.Fatalf("the object to update must be valid: %v", err)
				}
				if tc.minted {
					key := obj.(*v1.APIKey)
					key.Status.Hash = "sha256:0000"
					if err := env.Client.Status().Update(ctx, key); err != nil {
						t.Fatalf("recording a hash in status: %v", err)
					}
				}
				tc.update(obj)
				err = env.Client.Update(ctx, obj)
			}
			if err == nil {
				t.Fatalf("accepted; want refused with %q", tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("message:\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}
