{{- define "clearance.labels" -}}
app.kubernetes.io/name: clearance
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}
{{- define "clearance.selectorLabels" -}}
app.kubernetes.io/name: clearance
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}
{{- define "clearance.verifierSelectorLabels" -}}
app.kubernetes.io/name: clearance
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ if .Values.verifier.separate }}verifier{{ else }}operator{{ end }}
{{- end }}
{{- define "clearance.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
{{- define "clearance.podSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  seccompProfile: {type: RuntimeDefault}
{{- end }}
{{- define "clearance.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
{{- end }}
{{- /*
A pod template's metadata: its selector labels (which podLabels cannot change) with podLabels,
and podAnnotations with the scrape annotations (scrapeAnnotations, for pods that serve metrics).
Arguments: dict "root" (the chart's context), "selector" (the selector labels, YAML), "scrape".
*/}}
{{- define "clearance.podMetadata" -}}
labels: {{- toYaml (merge (.selector | fromYaml) (deepCopy .root.Values.podLabels)) | nindent 2 }}
{{- $annotations := deepCopy .root.Values.podAnnotations }}
{{- if and .scrape .root.Values.scrapeAnnotations }}
{{- $scrape := dict "prometheus.io/scrape" "true" "prometheus.io/port" "8080" "prometheus.io/path" "/metrics" }}
{{- if .root.Values.metrics.secure }}{{- $_ := set $scrape "prometheus.io/scheme" "https" }}{{- end }}
{{- $annotations = merge $scrape $annotations }}
{{- end }}
{{- with $annotations }}
annotations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- /*
Where a pod runs and what it pulls with: priorityClassName and imagePullSecrets for every pod,
nodeSelector, tolerations and affinity of one component ("values": .Values, .Values.verifier or
.Values.console). Nothing when none is set.
*/}}
{{- define "clearance.podScheduling" -}}
{{- with .root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- /*
The flags that serve the metrics to readers only (metrics.secure): nothing when it is off.
*/}}
{{- define "clearance.metricsArgs" -}}
{{- if .Values.metrics.secure }}
- --metrics-secure
{{- if .Values.metrics.certSecret }}
- --metrics-cert-dir=/metrics-certs
{{- end }}
{{- end }}
{{- end }}
{{- /*
The NetworkPolicy ingress rules of the ports every operator and verifier pod serves: the probes
from anywhere, the verifier from verifier.networkPolicy.allowedFrom, the metrics from
metrics.allowedFrom (each empty: from anywhere).
*/}}
{{- define "clearance.servingIngress" -}}
- ports: [{port: 8081, protocol: TCP}]
- ports: [{port: 8090, protocol: TCP}]
  {{- with .Values.verifier.networkPolicy.allowedFrom }}
  from: {{- toYaml . | nindent 4 }}
  {{- end }}
- ports: [{port: 8080, protocol: TCP}]
  {{- with .Values.metrics.allowedFrom }}
  from: {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- define "clearance.consoleSelectorLabels" -}}
app.kubernetes.io/name: clearance
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: console
{{- end }}
{{- /*
The verifier's flags and environment for a shared rate-limit store (verifier.rateLimitStore):
nothing when no URL is set. The password comes from an existing Secret, never from values.
*/}}
{{- define "clearance.rateLimitStoreArgs" -}}
{{- with .Values.verifier.rateLimitStore }}
{{- if .url }}
{{- if contains ":" ((urlParse .url).userinfo | default "") }}
{{- fail "verifier.rateLimitStore.url must not hold a password: put it in a Secret and name it in verifier.rateLimitStore.existingSecret" }}
{{- end }}
- --rate-limit-store={{ .url }}
- --rate-limit-store-timeout={{ .timeout }}
- --rate-limit-store-fallback-replicas={{ include "clearance.verifierReplicas" $ }}
{{- end }}
{{- end }}
{{- end }}
{{- /*
The N of --rate-limit-store-fallback-replicas: while the store is unreachable each replica allows
limit/N, so N must be the most replicas that can run at once (hpa.maxReplicas with the
autoscaler, never its minimum), or a key gets running/N times its limit.
*/}}
{{- define "clearance.verifierReplicas" -}}
{{- $v := .Values.verifier }}
{{- if gt (int $v.rateLimitStore.fallbackReplicas) 0 }}{{ $v.rateLimitStore.fallbackReplicas }}
{{- else if not $v.separate }}{{ .Values.replicaCount }}
{{- else if $v.hpa.enabled }}{{ $v.hpa.maxReplicas }}
{{- else }}{{ $v.replicaCount }}
{{- end }}
{{- end }}
{{- define "clearance.rateLimitStoreEnv" -}}
{{- with .Values.verifier.rateLimitStore }}
{{- if and .url .existingSecret }}
- name: CLEARANCE_RATE_LIMIT_STORE_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ .existingSecret }}, key: {{ .passwordKey }}}
{{- end }}
{{- end }}
{{- end }}
