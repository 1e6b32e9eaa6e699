{{/*
Everything a paykit service chart renders, one document each; a service
chart's only template is `{{ include "paykit-lib.all" . }}`.
*/}}
{{- define "paykit-lib.all" -}}
{{- range $name := list "serviceaccount" "configmap" "secret" "service" "deployment" "hpa" "pdb" "servicemonitor" "prometheusrule" "migration" }}
{{- $doc := include (printf "paykit-lib.%s" $name) $ | trim }}
{{- if $doc }}
---
{{ $doc }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "paykit-lib.notes" -}}
{{ include "paykit-lib.fullname" . }} ({{ .Chart.Name }} {{ .Chart.AppVersion }}) in namespace {{ .Release.Namespace }}.
{{- if .Values.grpc.enabled }}
  gRPC:    {{ include "paykit-lib.fullname" . }}.{{ .Release.Namespace }}.svc:{{ .Values.grpc.port }}
{{- end }}
{{- range .Values.extraPorts }}
  {{ .name }}: {{ include "paykit-lib.fullname" $ }}.{{ $.Release.Namespace }}.svc:{{ .port }}
{{- end }}
{{- if and .Values.component.secretKeys (not (include "paykit-lib.existingSecret" .)) }}
{{- range $key, $value := fromYaml (include "paykit-lib.secretData" .) }}
{{- if contains "change-me" $value }}
  WARNING: {{ $key }} still has its development placeholder; set secretEnv.{{ $key }} or use existingSecret.
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
