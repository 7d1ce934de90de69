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

package console

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// inClusterCAFile is where a pod finds the apiserver's CA. The chart mounts the
// kube-root-ca.crt ConfigMap there, without a ServiceAccount token: the console has no
// credentials of its own.
const inClusterCAFile = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"

// BaseConfig keeps of cfg only how to reach and trust the apiserver (host, CA, TLS server
// name), never its credentials: every call the console makes carries the signed-in person's
// token instead.
func BaseConfig(cfg *rest.Config) *rest.Config {
	base := rest.AnonymousClientConfig(cfg)
	base.QPS, base.Burst = 20, 40
	base.UserAgent = "clearance-console"
	return base
}

// LoadBaseConfig finds the apiserver for a console running on its own: in a pod, from the
// KUBERNETES_SERVICE_HOST/PORT variables and the mounted CA (no token needed or read);
// elsewhere, from the kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config), of which only the
// server and CA are kept.
func LoadBaseConfig() (*rest.Config, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host != "" && port != "" {
		if _, err := os.Stat(inClusterCAFile); err != nil {
			return nil, fmt.Errorf("running in a pod but the apiserver's CA is not at %s: mount the kube-root-ca.crt ConfigMap there (the chart does): %w", inClusterCAFile, err)
		}
		return BaseConfig(&rest.Config{Host: "https://" + net.JoinHostPort(host, port), TLSClientConfig: rest.TLSClientConfig{CAFile: inClusterCAFile}}), nil
	}
	cfg, err := ctrlconfig.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("no Kubernetes API to point the console at (set KUBECONFIG or run in a cluster): %w", err)
	}
	return BaseConfig(cfg), nil
}

// restMapper knows the few kinds the console touches, so a session's client needs no
// discovery round trips.
func restMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	for kind, plural := range map[string]string{"Application": "applications", "APIKey": "apikeys", "OrgConnection": "orgconnections", "MetricSet": "metricsets"} {
		gvk, gvr := v1.GroupVersion.WithKind(kind), v1.GroupVersion.WithResource(plural)
		m.AddSpecific(gvk, gvr, v1.GroupVersion.WithResource(strings.ToLower(kind)), meta.RESTScopeNamespace)
	}
	for _, kind := range []string{"Secret", "ConfigMap"} {
		m.Add(corev1.SchemeGroupVersion.WithKind(kind), meta.RESTScopeNamespace)
	}
	m.Add(corev1.SchemeGroupVersion.WithKind("Namespace"), meta.RESTScopeRoot)
	m.Add(rbacv1.SchemeGroupVersion.WithKind("RoleBinding"), meta.RESTScopeNamespace)
	m.Add(authenticationv1.SchemeGroupVersion.WithKind("SelfSubjectReview"), meta.RESTScopeRoot)
	m.Add(authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectAccessReview"), meta.RESTScopeRoot)
	return m
}

// warnings collects the admission warnings of the apiserver's answers during one page
// request, to show them to the person as they are.
type warnings struct {
	mu   sync.Mutex
	list []string
}

type warningsKey struct{}

// withWarnings returns a context whose API calls collect their warnings into w.
func withWarnings(ctx context.Context, w *warnings) context.Context {
	return context.WithValue(ctx, warningsKey{}, w)
}

// warningRouter hands each warning to the collector of the request it came with.
type warningRouter struct{}

func (warningRouter) HandleWarningHeaderWithContext(ctx context.Context, code int, _ string, text string) {
	w, ok := ctx.Value(warningsKey{}).(*warnings)
	if code != 299 || text == "" || !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, seen := range w.list {
		if seen == text {
			return
		}
	}
	w.list = append(w.list, text)
}

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.list...)
}

// permission is one SelfSubjectAccessReview: may the person do verb on resource (named name)
// in the org. The page offers only what is allowed; the apiserver decides anyway.
type permission struct {
	verb, group, resource, name string
}

func clearance(verb, resource string) permission {
	return permission{verb: verb, group: v1.GroupVersion.Group, resource: resource}
}

// bindRole is what the apiserver's policy clearance-role-assignment asks before a role is
// assigned (config/policies/role_assignment.yaml): the bind verb on the virtual resource
// orgroles named after the role.
func bindRole(role v1.Role) permission {
	return permission{verb: "bind", group: v1.GroupVersion.Group, resource: "orgroles", name: string(role)}
}

var readSecrets = permission{verb: "get", resource: "secrets"}

// readSecret is getting the one Secret named name: what copying a key from it needs.
func readSecret(name string) permission {
	return permission{verb: "get", resource: "secrets", name: name}
}

// allowed asks the apiserver, with the person's own credentials, which of perms they hold in
// org; the reviews run at once. A review that fails counts as not allowed.
func allowed(ctx context.Context, s *session, org string, perms ...permission) map[permission]bool {
	out := make(map[permission]bool, len(perms))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range perms {
		wg.Go(func() {
			review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: org, Verb: p.verb, Group: p.group, Resource: p.resource, Name: p.name,
				},
			}}
			ok := s.client.Create(ctx, review) == nil && review.Status.Allowed
			mu.Lock()
			out[p] = ok
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// whoAmI asks the apiserver who the token belongs to; a token it does not accept is an error
// the sign-in page shows.
func whoAmI(ctx context.Context, s *session) (string, error) {
	review := &authenticationv1.SelfSubjectReview{}
	if err := s.client.Create(ctx, review); err != nil {
		return "", err
	}
	return review.Status.UserInfo.Username, nil
}

// apiMessage is the apiserver's own wording of a failure (a denial by RBAC, an admission
// policy, a webhook or a CEL rule), shown to the person as it is.
func apiMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Message != "" {
		return status.Status().Message
	}
	return err.Error()
}
