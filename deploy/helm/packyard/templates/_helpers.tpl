{{- define "packyard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "packyard.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one role: pass (dict "root" $ "role" "web"). */}}
{{- define "packyard.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "packyard.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "packyard.secretName" -}}
{{ .Values.secrets.existingSecret | default (printf "%s-secrets" (include "packyard.fullname" .)) }}
{{- end -}}

{{- define "packyard.secretEnv" -}}
{{- $secret := include "packyard.secretName" . -}}
{{- range $name := list "PACKYARD_SECRET_KEY" "PACKYARD_DATABASE_URL" "AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY" "PACKYARD_METRICS_TOKEN" }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $name }}
      optional: true
{{- end }}
{{- end -}}

{{/* The container of a Packyard process: pass (dict "root" $ "args" (list ...) "resources" ...). */}}
{{- define "packyard.container" -}}
{{- $root := .root -}}
name: packyard
image: {{ include "packyard.image" $root }}
imagePullPolicy: {{ $root.Values.image.pullPolicy }}
args:
{{- range .args }}
  - {{ . | quote }}
{{- end }}
env:
  - name: PACKYARD_CONFIG
    value: /etc/packyard/packyard.toml
{{- include "packyard.secretEnv" $root | nindent 2 }}
securityContext:
  {{- toYaml $root.Values.securityContext | nindent 2 }}
{{- with .resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumeMounts:
  - name: config
    mountPath: /etc/packyard
    readOnly: true
  - name: data
    mountPath: /var/lib/packyard
  - name: tmp
    mountPath: /tmp
{{- end -}}

{{- define "packyard.probes" -}}
ports:
  - name: http
    containerPort: 8080
    protocol: TCP
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 6
startupProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 2
  failureThreshold: 60
{{- end -}}

{{- define "packyard.podSpec" -}}
{{- $root := .root -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
# SIGTERM drains (readiness 503, connections closed) within shutdown_timeout_secs (60 s).
terminationGracePeriodSeconds: 90
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
