{{- define "paykit-lib.configmap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "paykit-lib.fullname" . }}
  labels:
    {{- include "paykit-lib.labels" . | nindent 4 }}
data:
  {{- include "paykit-lib.configEnv" . | nindent 2 }}
{{- end -}}

{{/* The chart-made Secret; nothing when an existing one is named or nothing is secret. */}}
{{- define "paykit-lib.secret" -}}
{{- if and .Values.component.secretKeys (not (include "paykit-lib.existingSecret" .)) -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "paykit-lib.fullname" . }}
  labels:
    {{- include "paykit-lib.labels" . | nindent 4 }}
type: Opaque
data:
  {{- range $key, $value := fromYaml (include "paykit-lib.secretData" .) }}
  {{ $key }}: {{ $value | toString | b64enc | quote }}
  {{- end }}
{{- end -}}
{{- end -}}

{{- define "paykit-lib.serviceaccount" -}}
{{- if .Values.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "paykit-lib.serviceAccountName" . }}
  labels:
    {{- include "paykit-lib.labels" . | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end -}}
{{- end -}}
