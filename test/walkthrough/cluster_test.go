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

package walkthrough

// What a cluster does that envtest (kube-apiserver and etcd only) does not, played honestly:
// the kubelet runs the Deployment's container (the real binary, with the args, env,
// ServiceAccount token and Secret volume the chart gives it), and the EndpointSlice controller
// publishes the ready pod behind the chart's webhook Service.

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/clearance-dev/clearance/internal/testenv"
)

// installChart does what `helm install clearance charts/clearance -n clearance-system
// --create-namespace` does: the namespace, then the chart with its CRDs (helm installs crds/
// first and waits until they are established), rendered with the default values and applied
// with kubectl.
func installChart(t *testing.T) {
	t.Helper()
	rendered := env.HelmTemplate(t, "--include-crds")
	path := filepath.Join(t.TempDir(), "clearance.yaml")
	if err := os.WriteFile(path, rendered, 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl(t, "create", "namespace", namespace)
	out := kubectl(t, "apply", "--server-side", "-f", path)
	t.Logf("kubectl apply --server-side -f <helm template --include-crds>:\n%s", indent(out))
	var crds []string
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(line, "customresourcedefinition.apiextensions.k8s.io/"); ok {
			crds = append(crds, "crd/"+strings.Fields(name)[0])
		}
	}
	if len(crds) != 4 {
		t.Fatalf("the chart installed %d CRDs, want the four kinds: %v", len(crds), crds)
	}
	kubectl(t, append([]string{"wait", "--for=condition=Established", "--timeout=60s"}, crds...)...)
}

// pod is the container of one of the chart's Deployments (the operator, clearance, or the
// verifier, clearance-verifier), run as a process on this machine.
type pod struct {
	name        string
	ip          string // the node IP it is reachable at, as a pod IP would be
	webhookPort int    // where its webhook server listens on ip (the operator)
	// containerWebhookPort is the chart's container port for webhooks, which the Service targets.
	containerWebhookPort corev1.ContainerPort
	healthURL            string
	verifierURL          string // the loopback address `kubectl port-forward svc/clearance-verifier` would give (the verifier)
	logPath              string

	cmd  *exec.Cmd
	done chan struct{}
}

// flag is one operator flag the test must set on this machine, and the container port (by
// name) the chart says the flag's default listens on.
type portFlag struct{ flag, containerPort string }

// The flags whose values cannot be the chart's here: the pod's ports are this machine's, so
// they move to free ones (its network namespace would map them), and the certificate volume is
// a directory the test keeps in step with the Secret.
var portFlags = []portFlag{
	{"metrics-bind-address", "metrics"},
	{"health-probe-bind-address", "probes"},
	{"verifier-bind-address", "verifier"},
	{"webhook-port", "webhook"},
}

// startPod runs the container the applied Deployment describes: its args and env, a token of
// its ServiceAccount, its certificate volume (if it has one); only bind addresses and the
// certificate directory differ. It returns once /readyz answers, as the kubelet's readiness
// probe would.
func startPod(t *testing.T, ip, deployment string) *pod {
	t.Helper()
	ctx := context.Background()
	var deploy appsv1.Deployment
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: deployment}, &deploy); err != nil {
		t.Fatalf("the chart's Deployment %s: %v", deployment, err)
	}
	spec := deploy.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("the Deployment has %d containers, the test plays one", len(spec.Containers))
	}
	c := spec.Containers[0]
	bin, err := env.BuildOperator()
	if err != nil {
		t.Fatal(err)
	}
	defaults := flagDefaults(t, bin)

	dir := t.TempDir()
	p := &pod{name: deployment + "-walkthrough-0", ip: ip, logPath: filepath.Join(dir, "operator.log"), done: make(chan struct{})}
	args := slicesClone(c.Args)
	for _, a := range args {
		if strings.HasPrefix(a, "--webhook-local-url") {
			t.Fatalf("the chart passes %s: its webhooks would not go through the Service", a)
		}
	}

	// Ports: what the chart's containerPort says must be what the binary listens on by default.
	// A port the container does not declare (the verifier's has no webhook port, the operator's
	// no verifier port) is moved to a free one all the same, so two pods on this machine never
	// collide on a default.
	ports, err := testenv.FreePorts(len(portFlags))
	if err != nil {
		t.Fatal(err)
	}
	for i, pf := range portFlags {
		if v, ok := flagValue(args, pf.flag); ok {
			t.Fatalf("the chart sets --%s=%s; the test only knows the default (port %s)", pf.flag, v, pf.containerPort)
		}
		value := "127.0.0.1:" + strconv.Itoa(ports[i])
		want, declared := containerPort(c, pf.containerPort)
		if !declared {
			if pf.flag == "webhook-port" {
				value = strconv.Itoa(ports[i])
			}
			args = append(args, "--"+pf.flag+"="+value)
			continue
		}
		if got := portOf(defaults[pf.flag]); got != want {
			t.Fatalf("the chart's container port %q is %d but --%s listens on %d by default", pf.containerPort, want, pf.flag, got)
		}
		switch pf.flag {
		case "webhook-port":
			value = strconv.Itoa(ports[i]) // all interfaces: the apiserver calls it at ip
			p.webhookPort = ports[i]
			p.containerWebhookPort = corev1.ContainerPort{Name: pf.containerPort, ContainerPort: int32(want)}
		case "health-probe-bind-address":
			p.healthURL = "http://" + value
		case "verifier-bind-address":
			p.verifierURL = "http://" + value
		}
		args = append(args, "--"+pf.flag+"="+value)
	}

	// The certificate volume: the Secret mounted where --webhook-cert-dir points.
	certDir, ok := flagValue(args, "webhook-cert-dir")
	if !ok && p.webhookPort != 0 {
		t.Fatalf("Deployment %s serves webhooks but the chart does not set --webhook-cert-dir", deployment)
	}
	if ok {
		secretName := mountedSecret(t, spec, c, certDir)
		localCerts := filepath.Join(dir, "certs")
		args = setFlag(args, "webhook-cert-dir", localCerts)
		stopVolume := playSecretVolume(t, secretName, localCerts)
		t.Cleanup(stopVolume)
	}

	// The ServiceAccount token the kubelet would project, in a kubeconfig.
	kubeconfig := serviceAccountKubeconfig(t, spec.ServiceAccountName, dir)
	procEnv := []string{"KUBECONFIG=" + kubeconfig, "HOME=" + dir}
	for _, e := range c.Env {
		procEnv = append(procEnv, e.Name+"="+envValue(t, e, spec, p))
	}

	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	testenv.CollectFileForLeakCheck("walkthrough "+deployment+" log", p.logPath)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = procEnv
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Logf("playing pod %s: %s %s\n  env: %s", p.name, bin, strings.Join(args, " "), strings.Join(procEnv[1:], " "))
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); _ = logFile.Close(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
	p.waitReady(t, 2*time.Minute)
	return p
}

// stop ends the process as the kubelet does: SIGTERM, then SIGKILL after a grace period.
func (p *pod) stop(t *testing.T) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	if t.Failed() {
		t.Logf("pod %s log:\n%s", p.name, p.tail())
	}
}

func (p *pod) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-p.done:
			t.Fatalf("pod %s exited before it was ready:\n%s", p.name, p.tail())
		default:
		}
		if resp, err := c.Get(p.healthURL + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Logf("pod %s ready after %s", p.name, time.Since(start).Round(time.Millisecond))
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s is not ready after %s:\n%s", p.name, timeout, p.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *pod) tail() string {
	data, _ := os.ReadFile(p.logPath)
	if len(data) > 6000 {
		data = append([]byte("..."), data[len(data)-6000:]...)
	}
	return string(data)
}

// flagDefaults reads the binary's flag defaults from its -help.
func flagDefaults(t *testing.T, bin string) map[string]string {
	t.Helper()
	out, _ := exec.Command(bin, "-help").CombinedOutput() // exits 0 or 2 depending on the flag package
	defaults := map[string]string{}
	name := regexp.MustCompile(`^  -([a-z0-9-]+)( \w+)?$`)
	value := regexp.MustCompile(`\(default "?([^")]*)"?\)$`)
	current := ""
	for _, line := range strings.Split(string(out), "\n") {
		if m := name.FindStringSubmatch(line); m != nil {
			current = m[1]
		} else if m := value.FindStringSubmatch(line); m != nil && current != "" {
			defaults[current] = m[1]
		}
	}
	for _, pf := range portFlags {
		if _, ok := defaults[pf.flag]; !ok {
			t.Fatalf("%s -help shows no default for -%s:\n%s", bin, pf.flag, out)
		}
	}
	return defaults
}

// portOf is the port of ":8080", "127.0.0.1:8080" or "9443".
func portOf(v string) int {
	if i := strings.LastIndex(v, ":"); i >= 0 {
		v = v[i+1:]
	}
	n, _ := strconv.Atoi(v)
	return n
}

// containerPort is the container's port of that name, if it declares one.
func containerPort(c corev1.Container, name string) (int, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return int(p.ContainerPort), true
		}
	}
	return 0, false
}

func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func setFlag(args []string, name, value string) []string {
	for i, a := range args {
		if strings.HasPrefix(a, "--"+name+"=") {
			args[i] = "--" + name + "=" + value
		}
	}
	return args
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// mountedSecret is the Secret the container mounts at dir.
func mountedSecret(t *testing.T, spec corev1.PodSpec, c corev1.Container, dir string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if filepath.Clean(m.MountPath) != filepath.Clean(dir) {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				return v.Secret.SecretName
			}
		}
	}
	t.Fatalf("nothing mounts a Secret at --webhook-cert-dir=%s: the operator would never see its certificate", dir)
	return ""
}

// envValue resolves a container env entry as the kubelet does, for the kinds the chart uses.
func envValue(t *testing.T, e corev1.EnvVar, spec corev1.PodSpec, p *pod) string {
	t.Helper()
	if e.ValueFrom == nil {
		return e.Value
	}
	if f := e.ValueFrom.FieldRef; f != nil {
		switch f.FieldPath {
		case "metadata.namespace":
			return namespace
		case "metadata.name":
			return p.name
		case "spec.serviceAccountName":
			return spec.ServiceAccountName
		case "status.podIP":
			return p.ip
		}
	}
	t.Fatalf("the test cannot resolve env %s from %+v", e.Name, e.ValueFrom)
	return ""
}

// playSecretVolume keeps dir in step with the Secret, as the kubelet does for a Secret volume
// (every key a file, replaced atomically), until the returned function is called.
func playSecretVolume(t *testing.T, name, dir string) (stop func()) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var s corev1.Secret
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err == nil {
				for key, value := range s.Data {
					path := filepath.Join(dir, key)
					if current, err := os.ReadFile(path); err == nil && bytes.Equal(current, value) {
						continue
					}
					if os.WriteFile(path+".tmp", value, 0o600) == nil {
						_ = os.Rename(path+".tmp", path)
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-done }
}

// serviceAccountKubeconfig writes a kubeconfig with a token of the ServiceAccount, from the
// TokenRequest API the kubelet uses for projected tokens.
func serviceAccountKubeconfig(t *testing.T, sa, dir string) string {
	t.Helper()
	if sa == "" {
		t.Fatal("the chart's Deployment names no ServiceAccount")
	}
	token := env.ServiceAccountToken(t, namespace, sa)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["pod"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: sa}
	cfg.CurrentContext = "pod"
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// webhookService is the Service the chart's webhook configurations call, checked to be the
// same for every webhook and to carry the CA bundle the operator injected.
func webhookService(t *testing.T) *admissionregistrationv1.ServiceReference {
	t.Helper()
	ctx := context.Background()
	var refs []admissionregistrationv1.WebhookClientConfig
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "clearance-validating-webhook-configuration"}, &v); err != nil {
		t.Fatal(err)
	}
	for _, w := range v.Webhooks {
		refs = append(refs, w.ClientConfig)
	}
	var m admissionregistrationv1.MutatingWebhookConfiguration
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "clearance-mutating-webhook-configuration"}, &m); err != nil {
		t.Fatal(err)
	}
	for _, w := range m.Webhooks {
		refs = append(refs, w.ClientConfig)
	}
	first := refs[0].Service
	for _, r := range refs {
		if r.URL != nil || r.Service == nil {
			t.Fatalf("a webhook is registered with a URL, not the chart's Service: %+v", r)
		}
		if r.Service.Name != first.Name || r.Service.Namespace != first.Namespace {
			t.Fatalf("the webhooks call different Services: %s/%s and %s/%s", first.Namespace, first.Name, r.Service.Namespace, r.Service.Name)
		}
		if len(r.CABundle) == 0 {
			t.Fatalf("webhook path %s has no CA bundle: the operator did not inject its CA", ptr.Deref(r.Service.Path, ""))
		}
	}
	return first
}

// publishEndpoints does what the EndpointSlice controller does for a ready pod: an
// EndpointSlice of the Service with the pod's IP and the port its targetPort names.
func publishEndpoints(t *testing.T, p *pod, ref *admissionregistrationv1.ServiceReference) {
	t.Helper()
	ctx := context.Background()
	var svc corev1.Service
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &svc); err != nil {
		t.Fatalf("the webhooks' Service: %v", err)
	}
	port := ptr.Deref(ref.Port, 443)
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		t.Fatalf("Service %s has no port %d, which the webhooks call", svc.Name, port)
	}
	if cp := p.containerWebhookPort; sp.TargetPort != intstr.FromString(cp.Name) && sp.TargetPort != intstr.FromInt32(cp.ContainerPort) {
		t.Fatalf("Service %s port %d targets %s, not the container's webhook port %s (%d)", svc.Name, port, sp.TargetPort.String(), cp.Name, cp.ContainerPort)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: svc.Namespace, Name: svc.Name + "-walkthrough",
			Labels: map[string]string{
				discoveryv1.LabelServiceName: svc.Name,
				discoveryv1.LabelManagedBy:   "walkthrough.test.clearance.dev",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{p.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: svc.Namespace, Name: p.name},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To(sp.Name), Port: ptr.To(int32(p.webhookPort)), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if err := env.Client.Create(ctx, slice); err != nil {
		t.Fatalf("publishing the pod behind Service %s: %v", svc.Name, err)
	}
	t.Logf("EndpointSlice %s/%s: %s:%d behind Service %s port %d (%s)", slice.Namespace, slice.Name, p.ip, p.webhookPort, svc.Name, port, sp.Name)
}

// nodeIP is an address of this machine the apiserver may be told a pod has: not loopback
// (Endpoint validation refuses 127.0.0.0/8) and not link-local. Without one, root adds one to
// lo for the test; anyone else skips.
func nodeIP(t *testing.T) string {
	t.Helper()
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := iface.Addrs()
		for _, a := range addrs {
			ipnet, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip := ipnet.IP.To4(); ip != nil && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
				return ip.String()
			}
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("this machine has no non-loopback IPv4 address to publish as the operator pod's IP (Endpoint validation refuses 127.0.0.0/8), and only root may add one")
	}
	const added = "192.0.2.123" // TEST-NET-1, documentation only
	if out, err := exec.Command("ip", "addr", "add", added+"/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Skipf("no non-loopback IPv4 address, and adding %s to lo failed: %v: %s", added, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "addr", "del", added+"/32", "dev", "lo").Run() })
	return added
}

// kubectl runs the real kubectl as an admin and fails the test on an error.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := env.Kubectl(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// kubectlFails runs kubectl expecting it to fail and returns its error.
func kubectlFails(t *testing.T, args ...string) error {
	t.Helper()
	out, err := env.Kubectl(t, args...)
	if err == nil {
		t.Fatalf("kubectl %s succeeded, want a refusal:\n%s", strings.Join(args, " "), out)
	}
	return err
}

// waitFor polls f until it returns nil, at most timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not after %s: %v", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
