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
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/clientcmd"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// request describes one API call, so a failure can be told in the user's terms: what they
// tried, which permission it needs, and where to look when something is missing.
type request struct {
	verb      string // RBAC verb: get, list, create, patch, update
	resource  string // plural resource, e.g. apikeys
	kind      string // kind for messages, e.g. APIKey
	name      string // object name, empty for lists
	namespace string // empty with --all-namespaces
	// notFound says what to check when the object does not exist.
	notFound string
	// exists says what to do when the object exists already; default: pick another --name.
	exists string
}

// group is the API group of a resource, for RBAC hints.
func (r request) group() string {
	switch r.resource {
	case "secrets", "configmaps":
		return ""
	}
	return v1.GroupVersion.Group
}

// where is " in namespace NS", or " across all namespaces" for -A.
func (r request) where() string {
	if r.namespace == "" {
		return " across all namespaces"
	}
	return " in namespace " + r.namespace
}

// explain turns an API error into one sentence saying what is wrong and how to fix it.
// Validation errors from the apiserver (CRD schema and CEL rules) already read that way and
// are passed on as they are.
func (r request) explain(err error) error {
	if err == nil {
		return nil
	}
	qualified := r.resource
	if g := r.group(); g != "" {
		qualified += "." + g
	}
	what := r.kind
	if r.name != "" {
		what += " " + r.name
	}
	switch {
	case meta.IsNoMatchError(err):
		return fmt.Errorf("this cluster does not serve Clearance's %s (access.clearance.dev/v1alpha1): install the Clearance CRDs or check --context", r.resource)
	case apierrors.IsForbidden(err) && admissionRefused(err):
		return errors.New(statusMessage(err))
	case apierrors.IsForbidden(err) && r.namespace == "":
		return fmt.Errorf("you may not %s %s across all namespaces: drop -A, or ask a cluster admin for %s on %s in every namespace",
			r.verb, r.resource, r.verb, qualified)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("you may not %s %s in namespace %s: ask an org admin for %s on %s in namespace %s",
			r.verb, r.resource, r.namespace, r.verb, qualified, r.namespace)
	case apierrors.IsNotFound(err):
		msg := fmt.Sprintf("%s not found%s", what, r.where())
		if r.notFound != "" {
			msg += ": " + r.notFound
		}
		return errors.New(msg)
	case apierrors.IsAlreadyExists(err) && r.exists != "":
		return fmt.Errorf("%s already exists in namespace %s: %s", what, r.namespace, r.exists)
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%s already exists in namespace %s: choose another name with --name", what, r.namespace)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return errors.New(statusMessage(err))
	case apierrors.IsConflict(err):
		return fmt.Errorf("%s was changed by someone else meanwhile: run the command again", what)
	}
	return explainConfig(err)
}

// admissionRefused reports whether a Forbidden came from admission, an admission policy or a
// webhook that read the request and said why (say, clearance-role-assignment: "may not assign
// role OrgAdmin"), rather than from RBAC ("User … cannot patch resource …"): its message is
// the answer, and the RBAC hint would be wrong.
func admissionRefused(err error) bool {
	msg := statusMessage(err)
	return strings.Contains(msg, "ValidatingAdmissionPolicy '") || strings.Contains(msg, "admission webhook ")
}

// statusMessage is the apiserver's own message, e.g. a CEL rule's.
func statusMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Message
	}
	return err.Error()
}

// explainConfig covers failures before any object is involved: no kubeconfig, an unreachable
// server, rejected credentials.
func explainConfig(err error) error {
	var urlErr *url.Error
	var netErr *net.OpError
	switch {
	case clientcmd.IsEmptyConfig(err):
		return errors.New("no cluster is configured: set KUBECONFIG or pass --kubeconfig (and --context)")
	case clientcmd.IsConfigurationInvalid(err):
		return fmt.Errorf("your kubeconfig is not usable (%v): fix it or pick another with --kubeconfig/--context", err)
	case apierrors.IsUnauthorized(err):
		return errors.New("the cluster did not accept your credentials: log in again or check --kubeconfig, --context and --user")
	case errors.As(err, &netErr), errors.As(err, &urlErr):
		return fmt.Errorf("cannot reach the cluster (%v): check that it is running and that --kubeconfig/--context point at it", err)
	}
	return err
}
