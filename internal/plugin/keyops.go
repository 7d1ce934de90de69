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
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

func (o *Options) rotateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate NAME",
		Short: "Rotate an API key now; the previous key stays valid for the rotation overlap",
		Long: "rotate asks the operator to replace the key of APIKey NAME now, by setting the\n" +
			"annotation " + v1.AnnotationRotateRequestedAt + " to the current time.\n" +
			"Workloads read the new key from the same Secret.",
		Example: "  kubectl clearance rotate acme-bi-prod -n acme",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			at := o.Clock.Now().UTC().Format(time.RFC3339)
			patch := map[string]any{"metadata": map[string]any{"annotations": map[string]string{v1.AnnotationRotateRequestedAt: at}}}
			key, err := o.patchKey(cmd.Context(), args[0], patch)
			if err != nil {
				return err
			}
			if o.structured() {
				return o.printObject(key)
			}
			fmt.Fprintf(o.out(), "apikey/%s rotation requested at %s\n", key.Name, at)
			return nil
		},
	}
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
			key, err := o.patchKey(cmd.Context(), args[0], map[string]any{"spec": map[string]any{"enabled": on}})
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

// patchKey merge-patches one APIKey: only the fields named change, so it never undoes what the
// operator or another user wrote meanwhile.
func (o *Options) patchKey(ctx context.Context, name string, patch map[string]any) (*v1.APIKey, error) {
	s, err := o.connect()
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return nil, err
	}
	key := &v1.APIKey{}
	key.Name, key.Namespace = name, s.namespace
	if err := s.client.Patch(ctx, key, client.RawPatch(types.MergePatchType, data)); err != nil {
		return nil, request{verb: "patch", resource: "apikeys", kind: "APIKey", name: name, namespace: s.namespace,
			notFound: "list the keys with `kubectl clearance keys -n " + s.namespace + "`"}.explain(err)
	}
	return key, nil
}
