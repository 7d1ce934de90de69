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

package verifier

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// What the authorization code grant asks of the index (docs/oauth.md): the OAuth client an
// Application ID names, the grant an org admin's consent created, and whether a grant is still
// in force. Authorization requests are rare next to key checks, so these maps sit behind one
// read-write lock of their own; the Application and connection entries are the index's own.
type grantIndex struct {
	mu       sync.RWMutex
	appsByID map[string]nsName        // Application ID → the Application holding it
	consents map[string][]*connEntry  // consent (authorization request ID) → connections carrying it
	conns    map[types.UID]*connEntry // OrgConnection UID → entry
	changed  chan struct{}            // closed (and replaced) whenever a connection changes
}

func newGrantIndex() grantIndex {
	return grantIndex{appsByID: map[string]nsName{}, consents: map[string][]*connEntry{}, conns: map[types.UID]*connEntry{},
		changed: make(chan struct{})}
}

// setApp replaces old with cur (either nil) for the Application key.
func (g *grantIndex) setApp(key nsName, old, cur *appEntry) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if old != nil && g.appsByID[old.id] == key {
		delete(g.appsByID, old.id)
	}
	if cur != nil && cur.id != "" {
		g.appsByID[cur.id] = key
	}
}

// setConn replaces old with cur (either nil), the same OrgConnection.
func (g *grantIndex) setConn(old, cur *connEntry) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if old != nil {
		delete(g.conns, old.uid)
		if old.consent != "" {
			g.consents[old.consent] = without(g.consents[old.consent], old.uid)
			if len(g.consents[old.consent]) == 0 {
				delete(g.consents, old.consent)
			}
		}
	}
	if cur != nil {
		g.conns[cur.uid] = cur
		if cur.consent != "" {
			g.consents[cur.consent] = append(without(g.consents[cur.consent], cur.uid), cur)
		}
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

// OAuthClient is an Application registered as an OAuth client.
type OAuthClient struct {
	ApplicationID string
	Namespace     string
	Description   string
	Enabled       bool
	Registration  v1.OAuthClient
}

// Grant is a consent turned into an OrgConnection: the org that granted the application a
// role, the connection that holds it, and who consented (as the apiserver recorded it).
type Grant struct {
	Org           string
	ConnectionUID string
	ApplicationID string
	// ApplicationUID is the Application object holding the ID when the consent was read: the
	// grant is that object's, not another's applied later under the same (pinned) ID.
	ApplicationUID string
	Role           v1.Role
	ConsentedBy    string
}

// OAuthClient returns the registration of the Application with this ID; false when no
// Application holds the ID, or it has no spec.oauth, or it is being deleted.
func (v *Verifier) OAuthClient(applicationID string) (OAuthClient, bool) {
	g := &v.index.grants
	g.mu.RLock()
	defer g.mu.RUnlock()
	a, _ := v.index.apps.get(g.appsByID[applicationID])
	if a == nil || a.oauth == nil || a.deleting || a.id != applicationID {
		return OAuthClient{}, false
	}
	return OAuthClient{ApplicationID: a.id, Namespace: a.namespace, Description: a.desc, Enabled: a.enabled, Registration: *a.oauth.DeepCopy()}, true
}

// Consent returns the grant recorded for the authorization request id by the application
// applicationID: the one OrgConnection of that application carrying the consent annotation,
// with its consenter recorded by the apiserver, ready and not being deleted. Two connections
// claiming the same request (an org admin copying another org's request ID) make it none.
func (v *Verifier) Consent(requestID, applicationID string) (Grant, bool) {
	grant, ok, _ := v.consent(requestID, applicationID)
	return grant, ok
}

// WaitConsent is Consent once the consent is in the index, or false when ctx ends first: the
// console sends the browser back as soon as the apiserver accepted the connection, which this
// replica's informer may not have delivered yet. It wakes on every connection change, never
// polls.
func (v *Verifier) WaitConsent(ctx context.Context, requestID, applicationID string) (Grant, bool) {
	for {
		grant, ok, changed := v.consent(requestID, applicationID)
		if ok {
			return grant, true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Grant{}, false
		}
	}
}

// consent is Consent, and the channel closed at the next connection change.
func (v *Verifier) consent(requestID, applicationID string) (Grant, bool, <-chan struct{}) {
	g := &v.index.grants
	g.mu.RLock()
	defer g.mu.RUnlock()
	grant, ok := g.consentLocked(requestID, applicationID)
	if a, _ := v.index.apps.get(g.appsByID[applicationID]); ok && a != nil {
		// The grant is the Application object's that holds the ID now (GrantInForce).
		grant.ApplicationUID = string(a.uid)
	}
	return grant, ok, g.changed
}

func (g *grantIndex) consentLocked(requestID, applicationID string) (Grant, bool) {
	list := g.consents[requestID]
	if requestID == "" || len(list) != 1 {
		return Grant{}, false
	}
	c := list[0]
	if c.applicationID != applicationID || c.consentedBy == "" || !c.ready || c.deleting {
		return Grant{}, false
	}
	return Grant{Org: c.org, ConnectionUID: string(c.uid), ApplicationID: c.applicationID, Role: c.role, ConsentedBy: c.consentedBy}, true
}

// GrantInForce says whether the connection connectionUID in org still grants applicationID a
// role now, and which: it exists, is ready and not being deleted, and the Application holding
// the ID is the object applicationUID (not another applied later under the same pinned ID),
// enabled and not being deleted.
func (v *Verifier) GrantInForce(org, connectionUID, applicationID, applicationUID string) (v1.Role, bool) {
	g := &v.index.grants
	g.mu.RLock()
	defer g.mu.RUnlock()
	c := g.conns[types.UID(connectionUID)]
	if c == nil || c.org != org || c.applicationID != applicationID || !c.ready || c.deleting {
		return "", false
	}
	a, _ := v.index.apps.get(g.appsByID[applicationID])
	if a == nil || !a.enabled || a.deleting || a.namespace != c.appNamespace || string(a.uid) != applicationUID {
		return "", false
	}
	return c.role, true
}
