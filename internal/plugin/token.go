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
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
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
			var key v1.APIKey
			if err := s.client.Get(cmd.Context(), client.ObjectKey{Namespace: s.namespace, Name: args[0]}, &key); err != nil {
				return request{verb: "get", resource: "apikeys", kind: "APIKey", name: args[0], namespace: s.namespace,
					notFound: "list the keys with `kubectl clearance keys -n " + s.namespace + "`"}.explain(err)
			}
			secret := key.Status.SecretName
			if secret == "" {
				secret = key.SecretNameOrDefault()
			}
			// The values go into shell commands: plain ones only.
			if err := plainTokenFlags(issuer, scope, org); err != nil {
				return err
			}
			params := " -d grant_type=client_credentials"
			if scope != "" {
				params += " --data-urlencode 'scope=" + scope + "'"
			}
			if org != "" {
				params += " -d org=" + org
			}
			w := o.out()
			fmt.Fprintf(w, "# An access token for APIKey %s/%s (application %s, key %s), from Secret %s.\n",
				s.namespace, key.Name, orNone(key.Status.ApplicationID), orNone(key.Status.Masked), secret)
			fmt.Fprintf(w, "ACCESS=$(kubectl get secret %s -n %s -o jsonpath='{.data.access-key}' | base64 -d)\n", secret, s.namespace)
			fmt.Fprintf(w, "SECRET=$(kubectl get secret %s -n %s -o jsonpath='{.data.secret-key}' | base64 -d)\n", secret, s.namespace)
			fmt.Fprintf(w, "TOKEN=$(curl -sf -u \"$ACCESS:$SECRET\"%s %s/oauth2/token | jq -r .access_token)\n", params, strings.TrimSuffix(issuer, "/"))
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

// plainTokenFlags refuses flag values that would not be safe in the printed shell commands.
func plainTokenFlags(issuer, scope, org string) error {
	if !plainURL.MatchString(issuer) {
		return fmt.Errorf("--issuer %q must be an http or https URL of letters, digits and . : _ ~ %% / - only", issuer)
	}
	if strings.ContainsAny(scope, "'\\\n\t") {
		return fmt.Errorf("--scope %q holds a quote, a backslash or a control character: scopes are plain words separated by spaces", scope)
	}
	if org != "" && len(validation.IsDNS1123Label(org)) > 0 {
		return fmt.Errorf("--org %q must be an org's namespace name (a DNS label)", org)
	}
	return nil
}
