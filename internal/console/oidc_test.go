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
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestASignInUnderWayIsTakenOnceAndOnlyWithinTenMinutes(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	p := &pendingLogins{clock: clock, byID: map[string]*pendingLogin{}}
	id := p.add(&pendingLogin{state: "s"})
	if l := p.take(id); l == nil || l.state != "s" {
		t.Fatalf("the sign-in under way was not found: %+v", l)
	}
	if p.take(id) != nil {
		t.Fatal("a sign-in was taken twice: a replayed callback would be accepted")
	}
	late := p.add(&pendingLogin{state: "late"})
	clock.Step(pendingLoginTTL)
	if p.take(late) != nil {
		t.Fatal("a sign-in was taken after 10 minutes")
	}
	if p.take("") != nil || p.take("made-up") != nil {
		t.Fatal("an unknown ID found a sign-in")
	}
}

func TestSignInsUnderWayAreBoundedOldestFirst(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	p := &pendingLogins{clock: clock, byID: map[string]*pendingLogin{}}
	first := p.add(&pendingLogin{})
	for range maxPendingLogins + 10 {
		clock.Step(time.Millisecond)
		p.add(&pendingLogin{})
	}
	if len(p.byID) > maxPendingLogins {
		t.Fatalf("%d sign-ins under way, above the bound of %d", len(p.byID), maxPendingLogins)
	}
	if p.take(first) != nil {
		t.Fatal("the oldest sign-in survived a full store")
	}
}

func TestOIDCOptionsSayWhatIsWrong(t *testing.T) {
	good := OIDCOptions{IssuerURL: "https://dex.example.com/dex", ClientID: "console", ClientSecret: "s",
		RedirectURL: "https://console.example.com/login/oidc/callback"}
	if err := good.check(); err != nil {
		t.Fatal(err)
	}
	if good.ProviderName != "dex.example.com" || strings.Join(good.ExtraScopes, ",") != "email,profile,offline_access" {
		t.Errorf("defaults: provider name %q, scopes %v", good.ProviderName, good.ExtraScopes)
	}
	for _, tc := range []struct {
		edit func(*OIDCOptions)
		want string
	}{
		{func(o *OIDCOptions) { o.IssuerURL = "http://dex.example.com" }, "must be the provider's https issuer URL"},
		{func(o *OIDCOptions) { o.ClientID = "" }, "--console-oidc-client-id"},
		{func(o *OIDCOptions) { o.ClientSecret = "" }, "--console-oidc-client-secret-file"},
		{func(o *OIDCOptions) { o.RedirectURL = "https://console.example.com/" }, "followed by /login/oidc/callback"},
	} {
		o := good
		tc.edit(&o)
		if err := o.check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", o, err, tc.want)
		}
	}
}

// TestAnIDTokenWithoutARefreshTokenLastsUntilItExpires: nothing is asked of the provider
// before the renewal margin; without a refresh token the session lives until the ID token's exp
// and then ends with a sentence saying why.
func TestAnIDTokenWithoutARefreshTokenLastsUntilItExpires(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	c, err := newOIDCClient(OIDCOptions{IssuerURL: "https://127.0.0.1:1", ClientID: "c", ClientSecret: "s",
		RedirectURL: "http://127.0.0.1:8095/login/oidc/callback", ProviderName: "Dex"}, clock)
	if err != nil {
		t.Fatal(err)
	}
	tokens := &oidcTokens{idToken: "id", expiry: clock.Now().Add(10 * time.Minute), subject: "alice"}
	for _, step := range []time.Duration{0, 5 * time.Minute, 4*time.Minute + 59*time.Second} {
		clock.Step(step)
		if err := c.renew(context.Background(), tokens); err != nil {
			t.Fatalf("at %s: %v", clock.Now().Format(time.TimeOnly), err)
		}
	}
	clock.Step(time.Second)
	var ended *errSignInEnded
	if err := c.renew(context.Background(), tokens); !errors.As(err, &ended) || !strings.Contains(err.Error(), "Dex gave no refresh token") {
		t.Fatalf("an expired ID token without a refresh token: %v", err)
	}
	tokens.forget()
	if _, err := tokens.Token(); err == nil {
		t.Fatal("a signed-out session still hands out its token")
	}
}

// TestOnlyTheProvidersErrorCodeIsShown: a description may quote what the console sent (a code),
// so a refusal shows the OAuth error code alone, or the HTTP status when there is none.
func TestOnlyTheProvidersErrorCodeIsShown(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&oauth2.RetrieveError{ErrorCode: "invalid_grant", ErrorDescription: "Invalid code: c0de", Body: []byte(`{"error":"invalid_grant","error_description":"Invalid code: c0de"}`)}, "invalid_grant"},
		{&oauth2.RetrieveError{Response: &http.Response{Status: "502 Bad Gateway"}, Body: []byte("c0de")}, "its token endpoint answered 502 Bad Gateway"},
		{&oauth2.RetrieveError{}, "its token endpoint refused"},
	} {
		if got := providerError(fmt.Errorf("oauth2: %w", tc.err)); got != tc.want {
			t.Errorf("providerError = %q, want %q", got, tc.want)
		}
	}
	if got := clip(strings.Repeat("é", 300), 200); len([]rune(got)) != 201 {
		t.Errorf("clip cut %d characters", len([]rune(got)))
	}
}
