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
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// adminConfig is a config with every kind of credential, for checking none survives.
func adminConfig() *rest.Config {
	return &rest.Config{
		Host: "https://127.0.0.1:6443", BearerToken: "t", BearerTokenFile: "/f", Username: "u", Password: "p",
		Impersonate:     rest.ImpersonationConfig{UserName: "someone"},
		ExecProvider:    &clientcmdapi.ExecConfig{Command: "login"},
		TLSClientConfig: rest.TLSClientConfig{CAData: []byte("CA"), CertData: []byte("cert"), KeyData: []byte("key"), CertFile: "c", KeyFile: "k"},
	}
}
