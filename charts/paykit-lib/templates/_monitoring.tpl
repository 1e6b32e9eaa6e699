{{- define "paykit-lib.serviceMonitorEnabled" -}}
{{- $g := fromYaml (include "paykit-lib.global" .) -}}
{{- if and .Values.metrics.enabled (or .Values.serviceMonitor.enabled (dig "monitoring" "enabled" false $g)) -}}true{{- end -}}
{{- end -}}

{{- define "paykit-lib.servicemonitor" -}}
{{- if include "paykit-lib.serviceMonitorEnabled" . -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "paykit-lib.fullname" . }}
  labels:
    {{- include "paykit-lib.labels" . | nindent 4 }}
    {{- with .Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "paykit-lib.selectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames:
      - {{ .Release.Namespace }}
  endpoints:
    - port: metrics
      path: {{ .Values.metrics.path }}
      scheme: http
      interval: {{ .Values.serviceMonitor.interval }}
      scrapeTimeout: {{ .Values.serviceMonitor.scrapeTimeout }}
{{- end -}}
{{- end -}}

{{- define "paykit-lib.prometheusrule" -}}
{{- if and .Values.prometheusRule.enabled .Values.prometheusRule.rules -}}
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: {{ include "paykit-lib.fullname" . }}
  labels:
    {{- include "paykit-lib.labels" . | nindent 4 }}
    {{- with .Values.prometheusRule.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  groups:
    - name: {{ include "paykit-lib.fullname" . }}
      rules:
        {{- /* no tpl: alert annotations carry Prometheus' own {{ $labels }} templates */}}
        {{- toYaml .Values.prometheusRule.rules | nindent 8 }}
{{- end -}}
{{- end -}}
