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

// Package wiring holds what every Clearance process is built from, whichever of the
// controllers, webhooks and verifier it runs: the scheme and the manager's cache options.
// main.go, the tests and the bench build their managers from the same functions.
package wiring

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/watches"
)

// Scheme returns a scheme with the built-in kinds and Clearance's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1.AddToScheme(s))
	return s
}

// TuneAPIConfig sets how the operator talks to the Kubernetes API: qps and burst
// (--kube-api-qps, --kube-api-burst), and no gzip. The apiserver compresses a watch that began
// as a streaming list (client-go's informers ask for one) for as long as it lasts, one gzip
// stream per flush, so nearly every event: between the operator and the apiserver of its own
// cluster that costs both sides CPU on every key minted (in make bench's mint rounds, about
// 0.2 ms of apiserver CPU a key and 5 % of the operator's) to save bandwidth a cluster
// network does not lack.
func TuneAPIConfig(cfg *rest.Config, qps float64, burst int) {
	cfg.QPS = float32(qps)
	cfg.Burst = burst
	cfg.DisableCompression = true
}

// CacheOptions limits the Secret, ConfigMap and workload caches to objects carrying
// Clearance's labels, so the operator's memory does not grow with the cluster's other objects,
// and makes every informer resume its watch as soon as the apiserver answers again after an
// outage (package watches), waiting between retries on clk. Cached objects drop their
// managedFields, which nothing in Clearance reads (an update sent from a cached copy without
// them keeps the apiserver's): with 5,000 keys the operator's RSS is about 18 MiB less.
func CacheOptions(clk clock.Clock) cache.Options {
	return cache.Options{
		NewInformer:      watches.NewInformerFunc(clk),
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:      {Label: labelled(v1.LabelAPIKey)},
			&corev1.ConfigMap{}:   {Label: labelled(v1.LabelConfigMap)},
			&appsv1.Deployment{}:  {Label: labelled(v1.LabelRestartOnRotation)},
			&appsv1.StatefulSet{}: {Label: labelled(v1.LabelRestartOnRotation)},
		},
	}
}

func labelled(key string) labels.Selector {
	req, err := labels.NewRequirement(key, selection.Exists, nil)
	utilruntime.Must(err)
	return labels.NewSelector().Add(*req)
}
