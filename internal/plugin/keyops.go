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
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

func (o *Options) rotateCommand() *cobra.Command {
	var now bool
	cmd := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Rotate an API key now; the previous key stays valid for the rotation overlap, or ends at once with --now",
		Long: "rotate asks the operator to replace the key of APIKey NAME now, by setting the\n" +
			"annotation " + v1.AnnotationRotateRequestedAt + " to the current time. The previous key\n" +
			"stays valid for spec.rotation.overlap. With --now (\"invalidate keys and secrets\") it sets\n" +
			v1.AnnotationInvalidateRequestedAt + " instead: the previous key, and any earlier key\n" +
			"still in its overlap, stop working as soon as the new key is minted.\n" +
			"Workloads read the new key from the same Secret.",
		Example: "  kubectl clearance rotate acme-bi-prod -n acme\n  kubectl clearance rotate acme-bi-prod -n acme --now",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			at := o.Clock.Now()
			key, err := o.patchKey(cmd.Context(), args[0], func(ctx context.Context, c client.Client, key *v1.APIKey) error {
				return ops.RequestRotation(ctx, c, key, at, now)
			})
			if err != nil {
				return err
			}
			if o.structured() {
				return o.printObject(key)
			}
			if !now {
				fmt.Fprintf(o.out(), "apikey/%s rotation requested at %s: key %s stays valid for the rotation overlap after the new key is minted\n",
					key.Name, at.UTC().Format(time.RFC3339Nano), orNone(key.Status.Masked))
				return nil
			}
			fmt.Fprintf(o.out(), "apikey/%s immediate rotation requested at %s: key %s%s stops working as soon as the new key is minted\n",
				key.Name, at.UTC().Format(time.RFC3339Nano), orNone(key.Status.Masked), ops.Earlier(len(key.Status.PreviousKeys)))
			return nil
		},
	}
	cmd.Flags().BoolVar(&now, "now", false, "End the previous key (and any earlier key still in its overlap) at once, without an overlap")
	return cmd
}

func (o *Options) revokeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke an API key for good: deletes the APIKey, its key and its Secret",
		Long: "revoke deletes APIKey NAME after saying what stops working. The verifier refuses its key\n" +
			"(and any previous key still in its overlap) at once; the garbage collector deletes its\n" +
			"Secret. A revoked key never comes back, even if the same APIKey is applied again.",
		Example: "  kubectl clearance revoke acme-bi-prod -n acme",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := o.connect()
			if err != nil {
				return err
			}
			key := &v1.APIKey{}
			req := request{verb: "delete", resource: "apikeys", kind: "APIKey", name: args[0], namespace: s.namespace,
				notFound: "list the keys with `kubectl clearance keys -n " + s.namespace + "`"}
			if err := s.client.Get(cmd.Context(), client.ObjectKey{Namespace: s.namespace, Name: args[0]}, key); err != nil {
				return req.explain(err)
			}
			if err := ops.Revoke(cmd.Context(), s.client, key); err != nil {
				return req.explain(err)
			}
			if o.structured() {
				return o.printObject(key)
			}
			fmt.Fprintf(o.out(), "apikey/%s revoked: key %s%s of application %s stopped working and never comes back; Secret %s is deleted with it\n",
				key.Name, orNone(key.Status.Masked), ops.Earlier(len(key.Status.PreviousKeys)), key.Spec.ApplicationName, key.SecretNameOrDefault())
			return nil
		},
	}
}

// orNone is a masked key, or a word for a key not minted yet.
func orNone(masked string) string {
	if masked == "" {
		return "(not minted yet)"
	}
	return masked
}

func (o *Options) setEnabledCommand(verb string, on bool) *cobra.Command {
	short := "Enable an API key again (same key, same Secret)"
	if !on {
		short = "Disable an API key: it is refused but keeps its Secret until enabled again"
	}
	return &cobra.Command{
		Use:     verb + " NAME",
		Short:   short,
		Example: "  kubectl clearance " + verb + " acme-bi-prod -n acme",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := o.patchKey(cmd.Context(), args[0], func(ctx context.Context, c client.Client, key *v1.APIKey) error {
				return ops.SetKeyEnabled(ctx, c, key, on)
			})
			if err != nil {
				return err
			}
			if o.structured() {
				return o.printObject(key)
			}
			fmt.Fprintf(o.out(), "apikey/%s %sd\n", key.Name, verb)
			return nil
		},
	}
}

// patchKey applies one of package ops' patches to APIKey name in the session's namespace.
func (o *Options) patchKey(ctx context.Context, name string, patch func(context.Context, client.Client, *v1.APIKey) error) (*v1.APIKey, error) {
	s, err := o.connect()
	if err != nil {
		return nil, err
	}
	key := &v1.APIKey{}
	key.Name, key.Namespace = name, s.namespace
	if err := patch(ctx, s.client, key); err != nil {
		return nil, request{verb: "patch", resource: "apikeys", kind: "APIKey", name: name, namespace: s.namespace,
			notFound: "list the keys with `kubectl clearance keys -n " + s.namespace + "`"}.explain(err)
	}
	return key, nil
}
