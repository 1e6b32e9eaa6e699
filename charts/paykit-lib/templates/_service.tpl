{{- define "paykit-lib.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "paykit-lib.fullname" . }}
  labels:
    {{- include "paykit-lib.labels" . | nindent 4 }}
  {{- with .Values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .Values.service.type }}
  selector:
    {{- include "paykit-lib.selectorLabels" . | nindent 4 }}
  ports:
    {{- if .Values.grpc.enabled }}
    - name: grpc
      port: {{ int .Values.grpc.port }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
    {{- end }}
    {{- if .Values.metrics.enabled }}
    - name: metrics
      port: {{ int .Values.metrics.port }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
    {{- end }}
    {{- range .Values.extraPorts }}
    - name: {{ .name }}
      port: {{ int .port }}
      targetPort: {{ .name }}
      protocol: {{ .protocol | default "TCP" }}
      {{- with .appProtocol }}
      appProtocol: {{ . }}
      {{- end }}
    {{- end }}
{{- end -}}
