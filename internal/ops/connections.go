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

package ops

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// ConnectionName is the default name of a connection: Application IDs are not valid object
// names (the underscore), and their random tail is unique enough within one org.
func ConnectionName(applicationID string) string {
	id := strings.ToLower(applicationID)
	const tail = 12
	if len(id) > tail {
		id = id[len(id)-tail:]
	}
	return "conn-" + id
}

// ConnectOptions are the choices of a connection beyond the application and its role.
type ConnectOptions struct {
	// Name is the OrgConnection's name; empty is ConnectionName of the Application ID.
	Name string
	// MetricSets limits the connection to these MetricSets of the org; empty is all of them.
	MetricSets []string
}

// Connect grants the application with applicationID role in org ns by creating the org's
// OrgConnection. Whether the person may assign role is the apiserver's to say (the policy
// clearance-role-assignment: bind on orgroles named after the role), and a role above Observer
// comes back with an admission warning. It returns the connection as created, or as asked for
// when the apiserver refused it.
func Connect(ctx context.Context, c client.Client, ns, applicationID string, role v1.Role, opts ConnectOptions) (*v1.OrgConnection, error) {
	name := opts.Name
	if name == "" {
		name = ConnectionName(applicationID)
	}
	conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.OrgConnectionSpec{ApplicationID: applicationID, Role: role, MetricSets: opts.MetricSets}}
	return conn, c.Create(ctx, conn)
}

// ErrNotConnected: the org has no connection of the application.
var ErrNotConnected = errors.New("the application is not connected to this org")

var applicationIDPattern = regexp.MustCompile(v1.ApplicationIDPattern)

// FindConnection reads a connection of org ns by its name or, when ref is an Application ID,
// the org's connection of that application, whatever its name (ErrNotConnected when there is
// none). Finding it by ID lists the org's connections; someone who may only get them finds it
// under its default name.
func FindConnection(ctx context.Context, c client.Client, ns, ref string) (*v1.OrgConnection, error) {
	conn := &v1.OrgConnection{}
	if !applicationIDPattern.MatchString(ref) {
		return conn, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref}, conn)
	}
	var list v1.OrgConnectionList
	err := c.List(ctx, &list, client.InNamespace(ns))
	if apierrors.IsForbidden(err) {
		return connectionByDefaultName(ctx, c, ns, ref, err)
	}
	if err != nil {
		return nil, err
	}
	var found []v1.OrgConnection
	var names []string
	for _, item := range list.Items {
		if item.Spec.ApplicationID == ref {
			found, names = append(found, item), append(names, item.Name)
		}
	}
	switch len(found) {
	case 0:
		return nil, ErrNotConnected
	case 1:
		return &found[0], nil
	}
	return nil, &SeveralConnectionsError{ApplicationID: ref, Namespace: ns, Names: names}
}

// SeveralConnectionsError: the org connects the application by more than one OrgConnection
// (the webhook that refuses a second one fails open while the operator is down, and the
// controller marks it Conflict), so its ID does not say which one is meant.
type SeveralConnectionsError struct {
	ApplicationID, Namespace string
	// Names are the OrgConnections of the application.
	Names []string
}

func (e *SeveralConnectionsError) Error() string {
	return fmt.Sprintf("application %s is connected to %s by %d OrgConnections (%s): name the one meant instead of the ID",
		e.ApplicationID, e.Namespace, len(e.Names), strings.Join(e.Names, ", "))
}

// connectionByDefaultName is FindConnection of an Application ID for someone who may not list
// the org's connections: the one under the default name, or the list's refusal.
func connectionByDefaultName(ctx context.Context, c client.Client, ns, applicationID string, listErr error) (*v1.OrgConnection, error) {
	conn := &v1.OrgConnection{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ConnectionName(applicationID)}, conn); err != nil || conn.Spec.ApplicationID != applicationID {
		return nil, listErr
	}
	return conn, nil
}

// SetRole changes the role the connection grants, with a merge patch of spec.role; conn names
// the OrgConnection and is updated from the answer. Raising the role needs bind on orgroles
// named after it (clearance-role-assignment); keeping or lowering it needs only patch.
func SetRole(ctx context.Context, c client.Client, conn *v1.OrgConnection, role v1.Role) error {
	return mergePatch(ctx, c, conn, map[string]any{"spec": map[string]any{"role": role}})
}

// SetTransports allows or refuses transports (WebSockets, Server-Sent Events, long polling) on
// the connection, with a merge patch of spec.transports that names only the transports in set:
// the others keep their policy. conn names the OrgConnection and is updated from the answer.
// Refusing is anyone's who may patch the connection; allowing one it refuses needs bind on
// orgroles named after its role (clearance-role-assignment), as widening what it grants does.
func SetTransports(ctx context.Context, c client.Client, conn *v1.OrgConnection, set map[v1.Transport]v1.TransportPolicy) error {
	var patch v1.ConnectionTransports
	for t, p := range set {
		if p != v1.TransportAllowed && p != v1.TransportRefused {
			return fmt.Errorf("%q is not a transport policy: use %s or %s", p, v1.TransportAllowed, v1.TransportRefused)
		}
		if !patch.Set(t, p) {
			return fmt.Errorf("%q is not a transport: use one of %v", t, v1.Transports)
		}
	}
	if len(set) == 0 {
		return nil
	}
	return mergePatch(ctx, c, conn, map[string]any{"spec": map[string]any{"transports": patch}})
}

// Disconnect deletes the connection (only the very object read, by UID): the application loses
// its role in the org at once; the Application itself, in its own org, is untouched.
func Disconnect(ctx context.Context, c client.Client, conn *v1.OrgConnection) error {
	return c.Delete(ctx, conn, client.Preconditions{UID: &conn.UID})
}
