{{- define "clearance.labels" -}}
app.kubernetes.io/name: clearance
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}
{{- define "clearance.selectorLabels" -}}
app.kubernetes.io/name: clearance
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
