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
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

// defaultIssuer is the verifier's Service as the chart installs it (docs/oauth.md).
const defaultIssuer = "http://clearance-verifier.clearance-system.svc:8090"

// tokenCommand prints how a partner gets an OAuth access token with an APIKey: the commands
// that read the key's two halves from its Secret and call the token endpoint. It reads the
// APIKey only, never the Secret, so it prints no key material.
func (o *Options) tokenCommand() *cobra.Command {
	var issuer, scope, org string
	cmd := &cobra.Command{
		Use:   "token NAME",
		Short: "Print the commands that get an OAuth access token with an API key",
		Long: "token prints shell commands that read APIKey NAME's access key and secret key from its\n" +
			"Secret and ask the verifier's token endpoint for an access token (OAuth 2.0 client\n" +
			"credentials, docs/oauth.md), then call an API with it. It prints no key material: the\n" +
			"commands read the Secret when you run them, with your own permissions.",
		Example: "  kubectl clearance token acme-bi-prod -n acme --issuer https://api.acme.example --scope reports:read\n" +
			"  eval \"$(kubectl clearance token acme-bi-prod -n acme)\" && echo $TOKEN",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := o.connect()
			if err != nil {
				return err
			}
			if err := plainTokenFlags(issuer, scope, org); err != nil {
				return err
			}
			if errs := validation.IsDNS1123Label(s.namespace); len(errs) > 0 {
				return fmt.Errorf("namespace %q is not a namespace name: %s", s.namespace, strings.Join(errs, "; "))
			}
			var key v1.APIKey
			if err := s.client.Get(cmd.Context(), client.ObjectKey{Namespace: s.namespace, Name: args[0]}, &key); err != nil {
				return request{verb: "get", resource: "apikeys", kind: "APIKey", name: args[0], namespace: s.namespace,
					notFound: "list the keys with `kubectl clearance keys -n " + s.namespace + "`"}.explain(err)
			}
			secret := ops.KeySecretName(&key)
			// The status is written by whoever may write apikeys/status, and what we print is
			// evaluated by a shell: a name that is not a Secret's is refused, not printed.
			if errs := validation.IsDNS1123Subdomain(secret); len(errs) > 0 {
				return fmt.Errorf("APIKey %s/%s names %s as its Secret, which is not a Secret name (%s): its status was not written by the operator; printing nothing",
					s.namespace, key.Name, strconv.Quote(secret), strings.Join(errs, "; "))
			}
			w := o.out()
			fmt.Fprintf(w, "# An access token for APIKey %s/%s (application %s, key %s), from Secret %s.\n",
				s.namespace, key.Name, shown(orNone(key.Status.ApplicationID)), shown(orNone(key.Status.Masked)), secret)
			for _, half := range []struct{ name, data string }{{"ACCESS", v1.SecretKeyAccessKey}, {"SECRET", v1.SecretKeySecretKey}} {
				fmt.Fprintf(w, "%s=$(kubectl get secret %s -n %s -o jsonpath=%s | base64 -d)\n",
					half.name, shellQuote(secret), shellQuote(s.namespace), shellQuote("{.data."+half.data+"}"))
			}
			params := " -d grant_type=client_credentials"
			if scope != "" {
				params += " --data-urlencode " + shellQuote("scope="+scope)
			}
			if org != "" {
				params += " -d " + shellQuote("org="+org)
			}
			fmt.Fprintf(w, "TOKEN=$(curl -sf -u \"$ACCESS:$SECRET\"%s %s | jq -r .access_token)\n",
				params, shellQuote(strings.TrimSuffix(issuer, "/")+"/oauth2/token"))
			fmt.Fprintln(w, "# Then, through your proxy: curl -H \"Authorization: Bearer $TOKEN\" https://<your API>/...")
			return nil
		},
	}
	cmd.Flags().StringVar(&issuer, "issuer", defaultIssuer, "The verifier's OAuth issuer URL, as you reach it (--oauth-issuer of the operator)")
	cmd.Flags().StringVar(&scope, "scope", "", "Space-separated scopes the token should carry; each must be among the key's")
	cmd.Flags().StringVar(&org, "org", "", "The one org the token should be good for (default: every org connected to the application)")
	return cmd
}

// plainURL is an issuer URL without shell metacharacters.
var plainURL = regexp.MustCompile(`^https?://[A-Za-z0-9.:_~%/-]+$`)

// plainTokenFlags refuses flag values that are not what they claim to be. The printed commands
// quote every value anyway; this says early and in one sentence what is wrong.
func plainTokenFlags(issuer, scope, org string) error {
	if !plainURL.MatchString(issuer) {
		return fmt.Errorf("--issuer %q must be an http or https URL of letters, digits and . : _ ~ %% / - only", issuer)
	}
	// RFC 6749 3.3: scope tokens are printable ASCII but " and \, separated by spaces.
	if i := strings.IndexFunc(scope, func(r rune) bool { return r < ' ' || r > '~' || r == '"' || r == '\\' }); i >= 0 {
		return fmt.Errorf("--scope %q holds %q: scopes are printable ASCII words (no \" or \\) separated by spaces", scope, scope[i:i+1])
	}
	if org != "" && len(validation.IsDNS1123Label(org)) > 0 {
		return fmt.Errorf("--org %q must be an org's namespace name (a DNS label)", org)
	}
	return nil
}

// shellWord is a word that every POSIX shell (and bash and zsh) reads literally unquoted; a
// leading = or ~ would be expanded by zsh or bash, so it is not one.
var shellWord = regexp.MustCompile(`^[A-Za-z0-9@%+:,./_-][A-Za-z0-9@%+=:,./_-]*$`)

// shellQuote is s as one shell word, read back exactly: unchanged when it is a plain word, else
// in single quotes, inside which nothing is special but the quote itself: each is closed, given
// escaped (\') and reopened.
func shellQuote(s string) string {
	if shellWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shown is s for a comment line of the printed commands: as it is when every character is
// graphic, else Go-quoted, so a newline cannot end the comment and start a command, and no
// control sequence reaches the terminal.
func shown(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
