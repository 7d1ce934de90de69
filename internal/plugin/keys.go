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
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

// Data keys of a key Secret, in the order --field lists them.
var secretFields = ops.SecretFields

func (o *Options) keysCommand() *cobra.Command {
	var lf listFlags
	var app string
	cmd := &cobra.Command{
		Use:     "keys",
		Aliases: []string{"apikeys"},
		Short:   "List API keys (masked) with their state, expiry and usage",
		Example: "  kubectl clearance keys -n acme\n  kubectl clearance keys --app acme-bi -o yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := o.connect()
			if err != nil {
				return err
			}
			ns, opts := lf.scope(s)
			var list v1.APIKeyList
			if err := s.client.List(cmd.Context(), &list, opts...); err != nil {
				return request{verb: "list", resource: "apikeys", kind: "APIKeys", namespace: ns}.explain(err)
			}
			if app != "" {
				list.Items = slices.DeleteFunc(list.Items, func(k v1.APIKey) bool { return k.Spec.ApplicationName != app })
			}
			l := listing{list: &list, all: lf.allNamespaces,
				header: []string{"NAME", "APPLICATION", "KEY", "ENABLED", "STATE", "EXPIRES", "LAST-USED", "USES"}}
			for _, k := range list.Items {
				expires := k.EffectiveExpiry()
				l.rows = append(l.rows, row{k.Namespace, []string{
					k.Name, k.Spec.ApplicationName, k.Status.Masked, strconv.FormatBool(k.IsEnabled()),
					string(k.Status.State), timestamp(expires), o.ago(k.Status.LastUsedAt), itoa(k.Status.UsageCount),
				}})
			}
			return o.printList(s, l)
		},
	}
	lf.add(cmd)
	cmd.Flags().StringVar(&app, "app", "", "Only keys of this Application (its metadata.name)")
	return cmd
}

func (o *Options) keyShowCommand() *cobra.Command {
	var field string
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Print a key from its Secret (needs get on secrets)",
		Long: "show prints the key of APIKey NAME, read from the Secret the operator minted it into,\n" +
			"to stdout only. It works only if you may read Secrets in the namespace; people who may\n" +
			"only list keys see them masked with `kubectl clearance keys`.",
		Example: "  kubectl clearance key show acme-bi-prod -n acme\n" +
			"  kubectl clearance key show acme-bi-prod --field authorization\n" +
			"  kubectl clearance key show acme-bi-prod -o json | jq -r '.[\"secret-key\"]'",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if field != "" && !slices.Contains(secretFields, field) {
				return fmt.Errorf("unknown --field %q: use one of %s", field, strings.Join(secretFields, ", "))
			}
			s, err := o.connect()
			if err != nil {
				return err
			}
			values, err := o.readKey(cmd.Context(), s, args[0])
			if err != nil {
				return err
			}
			want := field
			if want == "" {
				want = v1.SecretKeyToken
			}
			if values[want] == "" {
				return fmt.Errorf("the Secret of APIKey %s holds no %s: an expired key's material is removed; create a new key with `kubectl clearance key new`", args[0], want)
			}
			switch {
			case field != "" || !o.structured():
				values = map[string]string{want: values[want]}
			default:
				maps.DeleteFunc(values, func(_, v string) bool { return v == "" })
			}
			if o.structured() {
				return o.printObject(values)
			}
			for _, v := range values {
				fmt.Fprintln(o.out(), v)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&field, "field", "", "Print only this part of the Secret: "+strings.Join(secretFields, ", ")+" (default token)")
	return cmd
}

// readKey returns the data of an APIKey's Secret. The key material it holds goes to stdout only;
// no error built here ever contains it.
func (o *Options) readKey(ctx context.Context, s *session, name string) (map[string]string, error) {
	var key v1.APIKey
	if err := s.client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: name}, &key); err != nil {
		return nil, request{verb: "get", resource: "apikeys", kind: "APIKey", name: name, namespace: s.namespace,
			notFound: "list the keys with `kubectl clearance keys -n " + s.namespace + "`"}.explain(err)
	}
	secretName := ops.KeySecretName(&key)
	var secret corev1.Secret
	err := s.client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: secretName}, &secret)
	switch {
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("you may list keys but not read their Secrets: ask an org admin for get on secrets in %s", s.namespace)
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("the Secret %s of APIKey %s not found in namespace %s: the key is not minted yet (state %q); check that the Clearance operator is running",
			secretName, name, s.namespace, key.Status.State)
	case err != nil:
		return nil, request{verb: "get", resource: "secrets", kind: "Secret", name: secretName, namespace: s.namespace}.explain(err)
	}
	return ops.KeyMaterial(&secret), nil
}

func (o *Options) keyNewCommand() *cobra.Command {
	var (
		app, name, description, ttl string
		catalogNamespace            string
		scopes                      []string
		timeout                     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "new --app APP",
		Short: "Create an API key for an application and wait until it is minted",
		Example: "  kubectl clearance key new --app acme-bi -n acme\n" +
			"  kubectl clearance key new --app acme-bi --name acme-bi-ci --ttl 720h --scope reports:read",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if app == "" {
				return errors.New("--app is required: name the Application the key is for (see `kubectl clearance apps`)")
			}
			opts := ops.KeyOptions{Name: name, Description: description, Scopes: scopes}
			if ttl != "" {
				d, err := time.ParseDuration(ttl)
				if err != nil {
					return fmt.Errorf("--ttl %q is not a duration: write it like 720h or 90m", ttl)
				}
				// A zero TTL would be no TTL at all: a key asked to live for no time that never expires.
				if d <= 0 {
					return fmt.Errorf("--ttl %q is no lifetime: write at least 1m, like 720h, or leave --ttl out for a key that does not expire", ttl)
				}
				opts.TTL = d
			}
			s, err := o.connect()
			if err != nil {
				return err
			}
			if err := checkApplication(cmd.Context(), s, app); err != nil {
				return err
			}
			if err := o.checkScopes(cmd.Context(), s, catalogNamespace, scopes); err != nil {
				return err
			}
			key, err := ops.CreateKey(cmd.Context(), s.client, s.namespace, app, opts)
			if err != nil {
				return request{verb: "create", resource: "apikeys", kind: "APIKey", name: name, namespace: s.namespace}.explain(err)
			}
			key, err = waitForKey(cmd.Context(), s, key, timeout)
			if err != nil {
				return err
			}
			if o.structured() {
				return o.printObject(key)
			}
			fmt.Fprintf(o.out(), "apikey/%s created: %s (%s)\n", key.Name, key.Status.Masked, key.Status.State)
			fmt.Fprintf(o.out(), "Read it with: kubectl clearance key show %s -n %s\n", key.Name, key.Namespace)
			return nil
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "Application (metadata.name) the key belongs to (required)")
	cmd.Flags().StringVar(&name, "name", "", "Name of the APIKey (default: generated from the application's name)")
	cmd.Flags().StringVar(&description, "description", "", "What the key is for, e.g. prod exporter")
	cmd.Flags().StringVar(&ttl, "ttl", "", "Lifetime of the key from minting, e.g. 720h (default: no expiry)")
	cmd.Flags().StringArrayVar(&scopes, "scope", nil, "Permission of the catalog (kubectl clearance permissions) the key is narrowed to, e.g. reports:read (repeatable; none: the application's whole role)")
	addCatalogNamespaceFlag(cmd, &catalogNamespace)
	cmd.Flags().DurationVar(&timeout, "timeout", o.KeyWaitTimeout, "How long to wait for the operator to mint the key")
	return cmd
}

// checkApplication refuses a key for an application that does not exist, before creating an
// object that could only fail. Users who may not read Applications are let through: the
// operator reports a missing one on the key.
func checkApplication(ctx context.Context, s *session, app string) error {
	err := s.client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: app}, &v1.Application{})
	if err == nil || apierrors.IsForbidden(err) {
		return nil
	}
	return request{verb: "get", resource: "applications", kind: "Application", name: app, namespace: s.namespace,
		notFound: "list the applications with `kubectl clearance apps -n " + s.namespace + "`"}.explain(err)
}

// waitForKey waits, at most timeout, until the operator has minted the key (Active), and
// fails early if it reports a state the key cannot leave by itself.
func waitForKey(ctx context.Context, s *session, key *v1.APIKey, timeout time.Duration) (*v1.APIKey, error) {
	key, err := ops.WaitForKey(ctx, s.client, key, timeout)
	switch {
	case errors.Is(err, ops.ErrKeyDeleted):
		return key, fmt.Errorf("APIKey %s was deleted while waiting for it to be minted", key.Name)
	case err != nil:
		return key, request{verb: "watch", resource: "apikeys", kind: "APIKey", name: key.Name, namespace: key.Namespace}.explain(err)
	}
	if done, err := keySettled(key); done {
		return key, err
	}
	return key, fmt.Errorf("APIKey %s was created but is not Active after %s (state %q, %s): check that the Clearance operator is running, then `kubectl clearance keys -n %s`",
		key.Name, timeout, key.Status.State, readyMessage(key.Status.Conditions), key.Namespace)
}

// keySettled reports whether waiting is over: the key is usable, or in a state only a user
// can get it out of.
func keySettled(key *v1.APIKey) (bool, error) {
	done, usable := ops.KeySettled(key)
	if done && !usable {
		return true, fmt.Errorf("APIKey %s is %s (%s): fix what it says, then check `kubectl clearance keys -n %s`",
			key.Name, key.Status.State, readyMessage(key.Status.Conditions), key.Namespace)
	}
	return done, nil
}
