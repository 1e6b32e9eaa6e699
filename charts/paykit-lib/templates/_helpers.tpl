{{/*
Names, labels and the values every other paykit-lib template derives from.
Every template takes the calling service chart's root context (`.`).
*/}}

{{- define "paykit-lib.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
<release>-<chart>, always (no "release name contains chart name" shortcut), so
one service finds another at "<release>-<chart>" whatever the release is called.
*/}}
{{- define "paykit-lib.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "paykit-lib.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "paykit-lib.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "paykit-lib.selectorLabels" -}}
app.kubernetes.io/name: {{ include "paykit-lib.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels without app.kubernetes.io/component (the migration Job sets its own). */}}
{{- define "paykit-lib.commonLabels" -}}
helm.sh/chart: {{ include "paykit-lib.chart" . }}
{{ include "paykit-lib.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | default .Chart.Version | quote }}
app.kubernetes.io/part-of: paykit
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "paykit-lib.labels" -}}
{{ include "paykit-lib.commonLabels" . }}
app.kubernetes.io/component: {{ include "paykit-lib.name" . }}
{{- end -}}

{{- define "paykit-lib.global" -}}
{{- toYaml (.Values.global | default dict) -}}
{{- end -}}

{{- define "paykit-lib.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "paykit-lib.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* registry/repository:tag[@digest]; global.imageRegistry and global.imageTag win. */}}
{{- define "paykit-lib.image" -}}
{{- $g := fromYaml (include "paykit-lib.global" .) -}}
{{- $registry := (get $g "imageRegistry") | default .Values.image.registry -}}
{{- $repository := required (printf "%s: image.repository is required" .Chart.Name) .Values.image.repository -}}
{{- $tag := (get $g "imageTag") | default .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- $ref := ternary (printf "%s/%s" $registry $repository) $repository (ne $registry "") -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" $ref $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref $tag -}}
{{- end -}}
{{- end -}}

{{- define "paykit-lib.imagePullSecrets" -}}
{{- $g := fromYaml (include "paykit-lib.global" .) -}}
{{- $secrets := concat ((get $g "imagePullSecrets") | default list) (.Values.imagePullSecrets | default list) | uniq -}}
{{- if $secrets }}
imagePullSecrets:
{{- range $secrets }}
  - name: {{ if kindIs "map" . }}{{ .name }}{{ else }}{{ . }}{{ end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The Secret the pods read component.secretKeys from: existingSecret, global.existingSecret, or the chart's. */}}
{{- define "paykit-lib.existingSecret" -}}
{{- $g := fromYaml (include "paykit-lib.global" .) -}}
{{- .Values.existingSecret | default (get $g "existingSecret") | default "" -}}
{{- end -}}

{{- define "paykit-lib.secretName" -}}
{{- include "paykit-lib.existingSecret" . | default (include "paykit-lib.fullname" .) -}}
{{- end -}}

{{/*
The chart-made Secret's data as YAML (key: plain value), only the keys the
process reads; global.secretEnv wins per key. Fails naming a key with no value.
*/}}
{{- define "paykit-lib.secretData" -}}
{{- $g := fromYaml (include "paykit-lib.global" .) -}}
{{- $global := (get $g "secretEnv") | default dict -}}
{{- $data := dict -}}
{{- range .Values.component.secretKeys -}}
{{- $value := (get $global .) | default (get $.Values.secretEnv .) | default "" | toString -}}
{{- if not $value -}}
{{- fail (printf "%s: no value for secret %s: set secretEnv.%s (or global.secretEnv.%s), or name an existingSecret holding it" $.Chart.Name . . .) -}}
{{- end -}}
{{- $_ := set $data . $value -}}
{{- end -}}
{{- toYaml $data -}}
{{- end -}}

{{/*
The plain configuration (the ConfigMap's data; also the migration Job's env)
as YAML of strings: computed entries first, then `env` through tpl.
*/}}
{{- define "paykit-lib.configEnv" -}}
{{- $g := fromYaml (include "paykit-lib.global" .) -}}
{{- $env := dict "LOG_LEVEL" (.Values.logLevel | toString) -}}
{{- if .Values.kafka.enabled -}}
{{- $kafka := dig "kafka" "bootstrapServers" "" $g | default .Values.kafka.bootstrapServers -}}
{{- $_ := set $env "KAFKA_BOOTSTRAP_SERVERS" (required (printf "%s: kafka.bootstrapServers (or global.kafka.bootstrapServers) is required" .Chart.Name) $kafka) -}}
{{- end -}}
{{- if and .Values.grpc.enabled .Values.component.grpcListenEnv -}}
{{- $_ := set $env .Values.component.grpcListenEnv (printf "0.0.0.0:%d" (int .Values.grpc.port)) -}}
{{- end -}}
{{- if .Values.metrics.enabled -}}
{{- $_ := set $env "METRICS_PORT" (.Values.metrics.port | toString) -}}
{{- /* The process binds 127.0.0.1 unless told otherwise; Prometheus scrapes the pod IP. */ -}}
{{- $_ := set $env "METRICS_HOST" "0.0.0.0" -}}
{{- end -}}
{{- if .Values.component.migrateArgs -}}
{{- $_ := set $env "MIGRATE_ON_START" (ternary "true" "false" (not .Values.migration.enabled)) -}}
{{- end -}}
{{- range $key, $value := .Values.env -}}
{{- if has $key $.Values.component.secretKeys -}}
{{- fail (printf "%s: %s is a secret; set it in secretEnv or an existingSecret, not env" $.Chart.Name $key) -}}
{{- end -}}
{{- $_ := set $env $key (tpl (toString $value) $) -}}
{{- end -}}
{{- toYaml $env -}}
{{- end -}}

{{/* env entries reading component.secretKeys from the Secret (secretName given as .secretName). */}}
{{- define "paykit-lib.secretEnvRefs" -}}
{{- $secretName := .secretName -}}
{{- range .ctx.Values.component.secretKeys }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: {{ . }}
{{- end }}
{{- end -}}

{{- define "paykit-lib.command" -}}
- python
- -m
- {{ required (printf "%s: component.module is required" .Chart.Name) .Values.component.module }}
{{- end -}}

{{/* The probe handler for .Values.probes.type. */}}
{{- define "paykit-lib.probeHandler" -}}
{{- $p := .Values.probes -}}
{{- if eq $p.type "grpc" -}}
grpc:
  port: {{ int .Values.grpc.port }}
  {{- with $p.grpcService }}
  service: {{ . | quote }}
  {{- end }}
{{- else if eq $p.type "http" -}}
httpGet:
  path: {{ $p.http.path }}
  port: {{ $p.http.port }}
{{- else if eq $p.type "tcp" -}}
tcpSocket:
  port: {{ $p.tcp.port }}
{{- else -}}
{{- fail (printf "%s: probes.type must be grpc, http or tcp, not %q" .Chart.Name $p.type) -}}
{{- end -}}
{{- end -}}

{{- define "paykit-lib.probes" -}}
{{- $handler := include "paykit-lib.probeHandler" . -}}
startupProbe:
  {{- $handler | nindent 2 }}
  {{- toYaml .Values.probes.startup | nindent 2 }}
livenessProbe:
  {{- $handler | nindent 2 }}
  {{- toYaml .Values.probes.liveness | nindent 2 }}
readinessProbe:
  {{- $handler | nindent 2 }}
  {{- toYaml .Values.probes.readiness | nindent 2 }}
{{- end -}}

{{- define "paykit-lib.containerPorts" -}}
{{- if .Values.grpc.enabled }}
- name: grpc
  containerPort: {{ int .Values.grpc.port }}
  protocol: TCP
{{- end }}
{{- if .Values.metrics.enabled }}
- name: metrics
  containerPort: {{ int .Values.metrics.port }}
  protocol: TCP
{{- end }}
{{- range .Values.extraPorts }}
- name: {{ .name }}
  containerPort: {{ int (.targetPort | default .port) }}
  protocol: {{ .protocol | default "TCP" }}
{{- end }}
{{- end -}}

{{- define "paykit-lib.tmpVolume" -}}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
{{- end -}}
