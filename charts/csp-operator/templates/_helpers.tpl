{{/*
Helm's labels, added to every object of the chart next to the labels config/ sets (app.kubernetes.io/name,
and pod-security.kubernetes.io/* on the namespaces), plus the user's extraLabels. Never
app.kubernetes.io/managed-by=csp-operator: that label marks the objects the operator itself creates.
*/}}
{{- define "csp-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- with .Values.extraLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod template labels: the selector label and the user's extraLabels (never Helm's: they change on upgrade). */}}
{{- define "csp-operator.podLabels" -}}
app.kubernetes.io/name: {{ .name }}
{{- with .ctx.Values.extraLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* An image reference: repository@digest when a digest is given, else repository:tag (tag defaults to appVersion). */}}
{{- define "csp-operator.image" -}}
{{- if .image.digest -}}
{{ .image.repository }}@{{ .image.digest }}
{{- else -}}
{{ .image.repository }}:{{ .image.tag | default .ctx.Chart.AppVersion }}
{{- end -}}
{{- end }}
