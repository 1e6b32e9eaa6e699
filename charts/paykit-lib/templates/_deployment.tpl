{{- define "paykit-lib.deployment" -}}
{{- $fullname := include "paykit-lib.fullname" . -}}
{{- $existing := include "paykit-lib.existingSecret" . -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "paykit-lib.labels" . | nindent 4 }}
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ int .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: {{ int .Values.revisionHistoryLimit }}
  strategy:
    type: {{ .Values.strategy.type }}
    {{- if and (eq .Values.strategy.type "RollingUpdate") .Values.strategy.rollingUpdate }}
    rollingUpdate:
      {{- toYaml .Values.strategy.rollingUpdate | nindent 6 }}
    {{- end }}
  selector:
    matchLabels:
      {{- include "paykit-lib.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "paykit-lib.selectorLabels" . | nindent 8 }}
        app.kubernetes.io/part-of: paykit
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include "paykit-lib.configEnv" . | sha256sum }}
        {{- if and (not $existing) .Values.component.secretKeys }}
        checksum/secret: {{ include "paykit-lib.secretData" . | sha256sum }}
        {{- end }}
        {{- with .Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- with include "paykit-lib.imagePullSecrets" . | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      serviceAccountName: {{ include "paykit-lib.serviceAccountName" . }}
      automountServiceAccountToken: false
      # No <SERVICE>_PORT-style variables from other Services in the namespace.
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ int .Values.terminationGracePeriodSeconds }}
      {{- with .Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml .Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ include "paykit-lib.name" . }}
          image: {{ include "paykit-lib.image" . | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          command:
            {{- include "paykit-lib.command" . | nindent 12 }}
          {{- with .Values.component.serveArgs }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            {{- include "paykit-lib.containerPorts" . | trim | nindent 12 }}
          envFrom:
            - configMapRef:
                name: {{ $fullname }}
          {{- if .Values.component.secretKeys }}
          env:
            {{- include "paykit-lib.secretEnvRefs" (dict "ctx" . "secretName" (include "paykit-lib.secretName" .)) | trim | nindent 12 }}
          {{- end }}
          {{- include "paykit-lib.probes" . | nindent 10 }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          securityContext:
            {{- toYaml .Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        {{- include "paykit-lib.tmpVolume" . | nindent 8 }}
      {{- if .Values.topologySpread.enabled }}
      topologySpreadConstraints:
        - maxSkew: {{ int .Values.topologySpread.maxSkew }}
          topologyKey: {{ .Values.topologySpread.topologyKey }}
          whenUnsatisfiable: {{ .Values.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "paykit-lib.selectorLabels" . | nindent 14 }}
      {{- end }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
