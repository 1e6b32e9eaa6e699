{{/*
The migration Job, a pre-install/pre-upgrade hook: it runs before the
release's ConfigMap and Secret exist (pre-install), so it carries the plain
configuration inline and reads the secrets from existingSecret or from a
hook-only copy of the chart's Secret (weight -5, deleted with the Job).
*/}}
{{- define "paykit-lib.migration" -}}
{{- if and .Values.migration.enabled .Values.component.migrateArgs -}}
{{- $fullname := include "paykit-lib.fullname" . -}}
{{- $existing := include "paykit-lib.existingSecret" . -}}
{{- $hookSecret := printf "%s-migrate" $fullname | trunc 63 | trimSuffix "-" -}}
{{- if and .Values.component.secretKeys (not $existing) }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ $hookSecret }}
  labels:
    {{- include "paykit-lib.commonLabels" . | nindent 4 }}
    app.kubernetes.io/component: migration
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-5"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
type: Opaque
data:
  {{- range $key, $value := fromYaml (include "paykit-lib.secretData" .) }}
  {{ $key }}: {{ $value | toString | b64enc | quote }}
  {{- end }}
---
{{- end }}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ printf "%s-migrate" $fullname | trunc 63 | trimSuffix "-" }}
  labels:
    {{- include "paykit-lib.commonLabels" . | nindent 4 }}
    app.kubernetes.io/component: migration
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: {{ .Values.migration.hookWeight | quote }}
    helm.sh/hook-delete-policy: {{ .Values.migration.deletePolicy }}
spec:
  backoffLimit: {{ int .Values.migration.backoffLimit }}
  activeDeadlineSeconds: {{ int .Values.migration.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{ include "paykit-lib.name" . }}
        app.kubernetes.io/instance: {{ .Release.Name }}
        app.kubernetes.io/component: migration
    spec:
      restartPolicy: Never
      {{- with include "paykit-lib.imagePullSecrets" . | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext:
        {{- toYaml .Values.podSecurityContext | nindent 8 }}
      containers:
        - name: migrate
          image: {{ include "paykit-lib.image" . | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          command:
            {{- include "paykit-lib.command" . | nindent 12 }}
          args:
            {{- toYaml .Values.component.migrateArgs | nindent 12 }}
          env:
            {{- range $key, $value := fromYaml (include "paykit-lib.configEnv" .) }}
            - name: {{ $key }}
              value: {{ $value | toString | quote }}
            {{- end }}
            {{- with include "paykit-lib.secretEnvRefs" (dict "ctx" . "secretName" ($existing | default $hookSecret)) | trim }}
            {{- . | nindent 12 }}
            {{- end }}
          resources:
            {{- toYaml (.Values.migration.resources | default .Values.resources) | nindent 12 }}
          securityContext:
            {{- toYaml .Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        {{- include "paykit-lib.tmpVolume" . | nindent 8 }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
{{- end -}}
