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

package plugin

import (
	"encoding/json"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/ops"
)

// TestTransportsShowsRefusesAndAllowsAConnectionsTransports: a new connection allows all three;
// --refuse and --allow change only what they name, by the application's ID or the connection's
// name; allowing one again needs bind on the role, and the policy's words are printed.
func TestTransportsShowsRefusesAndAllowsAConnectionsTransports(t *testing.T) {
	ns := env.Namespace(t, "transports")
	appID, err := keyformat.ApplicationID()
	must(t, err)
	run(t, ns, "connect", appID).ok(t)
	name := ops.ConnectionName(appID)

	rows := table(run(t, ns, "transports", appID).ok(t).stdout)
	wantRow(t, rows, "TRANSPORT", "POLICY")
	for _, tr := range []string{"WebSockets", "ServerSentEvents", "LongPolling"} {
		wantRow(t, rows, tr, "Allowed")
	}

	r := run(t, ns, "transports", name, "--refuse", "websockets,long-polling").ok(t)
	if want := "orgconnection/" + name + " updated: " + appID + " may use ServerSentEvents in " + ns + "; WebSockets, LongPolling refused\n"; r.stdout != want {
		t.Errorf("\n got %q\nwant %q", r.stdout, want)
	}
	var conn v1.OrgConnection
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name}, &conn))
	want := v1.ConnectionTransports{WebSockets: v1.TransportRefused, ServerSentEvents: v1.TransportAllowed, LongPolling: v1.TransportRefused}
	if *conn.Spec.Transports != want {
		t.Errorf("stored %+v, want %+v", conn.Spec.Transports, want)
	}
	if r := run(t, ns, "transports", appID, "--refuse", "WebSockets").ok(t); !strings.HasPrefix(r.stdout, "orgconnection/"+name+" unchanged: ") {
		t.Errorf("refusing what is refused: %q", r.stdout)
	}

	// Someone who may patch but not bind Observer refuses more, but may not allow again.
	grantOnly(t, ns, "pat",
		rbacv1.PolicyRule{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"orgconnections"}, Verbs: []string{"get", "patch"}})
	run(t, ns, "--as", "pat", "transports", name, "--refuse", "sse").ok(t)
	msg := run(t, ns, "--as", "pat", "transports", name, "--allow", "ws").failed(t)
	if want := `user "pat" may not allow a transport that OrgConnection "` + name + `" refuses, which grants role Observer in org "` + ns + `"`; !strings.Contains(msg, want) {
		t.Errorf("\n got %s\nwant …%s…", msg, want)
	}

	var printed v1.OrgConnection
	must(t, json.Unmarshal([]byte(run(t, ns, "transports", name, "--allow", "websockets,sse,long-polling", "-o", "json").ok(t).stdout), &printed))
	all := v1.ConnectionTransports{WebSockets: v1.TransportAllowed, ServerSentEvents: v1.TransportAllowed, LongPolling: v1.TransportAllowed}
	if printed.Kind != "OrgConnection" || printed.Spec.Transports == nil || *printed.Spec.Transports != all {
		t.Errorf("-o json printed %+v", printed.Spec.Transports)
	}

	for args, want := range map[string]string{
		"--refuse pigeons":                `--refuse "pigeons" is not a transport: use websockets, sse or long-polling`,
		"--refuse sse --allow sse":        "ServerSentEvents is both allowed and refused: name it in --allow or in --refuse, not both",
		"--allow websockets --refuse sse": "",
	} {
		r := run(t, ns, append([]string{"transports", name}, strings.Fields(args)...)...)
		if want == "" {
			r.ok(t)
			continue
		}
		if msg := r.failed(t); msg != want {
			t.Errorf("%s:\n got %s\nwant %s", args, msg, want)
		}
	}
	if msg := run(t, ns, "transports", "nope").failed(t); !strings.Contains(msg, "list the connections with `kubectl clearance connections -n "+ns+"`") {
		t.Errorf("a connection that does not exist: %s", msg)
	}
}
