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

// Package metricsauth lets only the clients Kubernetes RBAC allows read the metrics endpoint
// (--metrics-secure): the counts per org and application there tell which orgs each
// application is connected to (docs/security.md).
package metricsauth

import (
	"context"
	"crypto/sha256"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

const (
	// TTL is how long an answer of the apiserver is remembered: a token that stops being valid,
	// or a binding removed, stops scrapes within it.
	TTL = time.Minute
	// remembered bounds the answers kept (tokens and decisions each), so clients sending
	// ever new tokens cannot grow the process.
	remembered = 1024
	// reviewTimeout bounds one TokenReview or SubjectAccessReview.
	reviewTimeout = 10 * time.Second
	// reviewQPS and reviewBurst bound the reviews a replica asks for: a scrape every few
	// seconds needs one a minute.
	reviewQPS, reviewBurst = 5, 20
)

// Filter is a FilterProvider of controller-runtime's metrics server: it answers a request only
// when the apiserver authenticates its bearer token (a TokenReview) and authorizes the user it
// names for the request's verb on its path as a non-resource URL (a SubjectAccessReview): get
// on /metrics, which the ClusterRole clearance-metrics-reader grants. A request without a token
// or with one the apiserver does not know is answered 401, one it does not allow 403, and one
// the apiserver could not be asked about 503; the reason is logged, never the token.
//
// It does what controller-runtime's filters.WithAuthenticationAndAuthorization does, without
// linking k8s.io/apiserver, which adds about 3 MiB to the memory of every replica (make bench
// holds the operator to 150 MiB with 5,000 keys).
func Filter(clk clock.PassiveClock) func(*rest.Config, *http.Client) (metricsserver.Filter, error) {
	return func(cfg *rest.Config, hc *http.Client) (metricsserver.Filter, error) {
		// Reviews have a rate limit of their own, well below the controllers': a flood of
		// made-up tokens at the port (each a TokenReview) must not take the operator's share
		// of the apiserver.
		cfg = rest.CopyConfig(cfg)
		cfg.QPS, cfg.Burst, cfg.RateLimiter = reviewQPS, reviewBurst, nil
		authn, err := authenticationclient.NewForConfigAndClient(cfg, hc)
		if err != nil {
			return nil, err
		}
		authz, err := authorizationclient.NewForConfigAndClient(cfg, hc)
		if err != nil {
			return nil, err
		}
		g := &gate{tokens: authn.TokenReviews(), access: authz.SubjectAccessReviews(),
			users: cache.NewLRUExpireCacheWithClock(remembered, clk), decisions: cache.NewLRUExpireCacheWithClock(remembered, clk)}
		return func(log logr.Logger, next http.Handler) (http.Handler, error) {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				code, why := g.check(r)
				if code != http.StatusOK {
					log.Info("a metrics request was refused", "status", code, "reason", why, "remote", r.RemoteAddr, "path", r.URL.Path)
					http.Error(w, http.StatusText(code)+": "+why, code)
					return
				}
				next.ServeHTTP(w, r)
			}), nil
		}, nil
	}
}

// gate asks the apiserver, and remembers its answers for TTL.
type gate struct {
	tokens authenticationclient.TokenReviewInterface
	access authorizationclient.SubjectAccessReviewInterface
	// users maps a token's SHA-256 to the user the apiserver named (nil: not authenticated).
	users *cache.LRUExpireCache
	// decisions maps a user, verb and path to whether they are allowed.
	decisions *cache.LRUExpireCache
}

// check is the status to answer r with (200: go on) and, otherwise, why.
func (g *gate) check(r *http.Request) (int, string) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return http.StatusUnauthorized, "send a Kubernetes bearer token (Authorization: Bearer …) of an identity allowed get on " + r.URL.Path
	}
	user, err := g.user(r, token)
	if err != nil {
		return http.StatusServiceUnavailable, "the token could not be reviewed: " + err.Error()
	}
	if user == nil {
		return http.StatusUnauthorized, "the apiserver does not authenticate this token"
	}
	verb := strings.ToLower(r.Method)
	allowed, err := g.allowed(r, user, verb)
	if err != nil {
		return http.StatusServiceUnavailable, "the access could not be reviewed: " + err.Error()
	}
	if !allowed {
		return http.StatusForbidden, user.Username + " may not " + verb + " " + r.URL.Path + " (bind it to the ClusterRole clearance-metrics-reader)"
	}
	return http.StatusOK, ""
}

// user is the user the apiserver authenticates token as, nil when it does not.
func (g *gate) user(r *http.Request, token string) (*authenticationv1.UserInfo, error) {
	key := sha256.Sum256([]byte(token))
	if u, ok := g.users.Get(key); ok {
		return u.(*authenticationv1.UserInfo), nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), reviewTimeout)
	defer cancel()
	review, err := g.tokens.Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	var u *authenticationv1.UserInfo
	if review.Status.Authenticated {
		u = &review.Status.User
	}
	g.users.Add(key, u, TTL)
	return u, nil
}

// allowed reports whether the apiserver allows user verb on r's path.
func (g *gate) allowed(r *http.Request, user *authenticationv1.UserInfo, verb string) (bool, error) {
	extra := map[string]authorizationv1.ExtraValue{}
	var extras []string
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
		extras = append(extras, k+"\x00"+strings.Join(v, "\x00"))
	}
	slices.Sort(extras)
	key := decisionKey{user: user.Username, uid: user.UID, groups: strings.Join(user.Groups, "\x00"),
		extra: strings.Join(extras, "\x01"), verb: verb, path: r.URL.Path}
	if d, ok := g.decisions.Get(key); ok {
		return d.(bool), nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), reviewTimeout)
	defer cancel()
	review, err := g.access.Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: r.URL.Path, Verb: verb},
	}}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	g.decisions.Add(key, review.Status.Allowed, TTL)
	return review.Status.Allowed, nil
}

// decisionKey names one SubjectAccessReview: who (each list joined with separators no name
// holds), what and where.
type decisionKey struct{ user, uid, groups, extra, verb, path string }
