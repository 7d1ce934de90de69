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
	"runtime"

	"github.com/spf13/cobra"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// versionInfo is what `version` prints; it needs no cluster.
type versionInfo struct {
	Version    string `json:"version"`
	APIVersion string `json:"apiVersion"`
	GoVersion  string `json:"goVersion"`
	Platform   string `json:"platform"`
}

func (o *Options) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version and the Clearance API version it speaks",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			info := versionInfo{
				Version:    o.Version,
				APIVersion: v1.GroupVersion.String(),
				GoVersion:  runtime.Version(),
				Platform:   runtime.GOOS + "/" + runtime.GOARCH,
			}
			if info.Version == "" {
				info.Version = "unknown"
			}
			if o.structured() {
				return o.printObject(info)
			}
			fmt.Fprintf(o.out(), "kubectl-clearance %s (API %s, %s, %s)\n", info.Version, info.APIVersion, info.GoVersion, info.Platform)
			return nil
		},
	}
}
