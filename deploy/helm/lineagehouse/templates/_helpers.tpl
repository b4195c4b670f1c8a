{{/* Names ------------------------------------------------------------------------- */}}

{{- define "lineagehouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lineagehouse.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<suffix>", within the 63 characters of a DNS label. */}}
{{- define "lineagehouse.componentName" -}}
{{- printf "%s-%s" (include "lineagehouse.fullname" .ctx) .suffix | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lineagehouse.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Labels ------------------------------------------------------------------------ */}}

{{- define "lineagehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lineagehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "lineagehouse.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "lineagehouse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lineagehouse
{{- end -}}

{{/* Checks that the schema cannot express; each names the value to fix. --------- */}}

{{- define "lineagehouse.validate" -}}
{{- $k := .Values.kafka -}}
{{- $sasl := hasPrefix "SASL_" $k.securityProtocol -}}
{{- if and $sasl (not $k.sasl.mechanism) -}}
{{- fail (printf "kafka.sasl.mechanism: required with kafka.securityProtocol=%s (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)" $k.securityProtocol) -}}
{{- end -}}
{{- if and $sasl (not $k.sasl.username) -}}
{{- fail (printf "kafka.sasl.username: required with kafka.securityProtocol=%s" $k.securityProtocol) -}}
{{- end -}}
{{- if and $sasl (not $k.sasl.existingSecret) -}}
{{- fail (printf "kafka.sasl.existingSecret: name the Secret holding the SASL password (key kafka.sasl.passwordKey) with kafka.securityProtocol=%s" $k.securityProtocol) -}}
{{- end -}}
{{- if and (not $sasl) $k.sasl.mechanism -}}
{{- fail (printf "kafka.sasl.mechanism=%s needs kafka.securityProtocol SASL_PLAINTEXT or SASL_SSL (got %s)" $k.sasl.mechanism $k.securityProtocol) -}}
{{- end -}}
{{- if and $k.tls.caSecret (not (has $k.securityProtocol (list "SSL" "SASL_SSL"))) -}}
{{- fail (printf "kafka.tls.caSecret is only used with kafka.securityProtocol SSL or SASL_SSL (got %s)" $k.securityProtocol) -}}
{{- end -}}
{{- if and .Values.api.enabled .Values.api.authEnabled (not .Values.api.keySecret.existingSecret) -}}
{{- fail "api.keySecret.existingSecret: name the Secret holding LINEAGEHOUSE_API__KEY_SECRET (required while api.authEnabled is true)" -}}
{{- end -}}
{{- range $component := list "worker" "api" -}}
{{- $a := (index $.Values $component).autoscaling -}}
{{- if and $a.enabled (lt (int $a.maxReplicas) (int $a.minReplicas)) -}}
{{- fail (printf "%s.autoscaling.maxReplicas (%d) is below minReplicas (%d)" $component (int $a.maxReplicas) (int $a.minReplicas)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Settings -------------------------------------------------------------------------
Non-secret settings as a YAML map of LINEAGEHOUSE_* name -> string: the ConfigMap's data,
and the migrations Job's env (a pre-install hook runs before the ConfigMap exists). */}}

{{- define "lineagehouse.settingsEnv" -}}
{{- $v := .Values -}}
LINEAGEHOUSE_LOG_FORMAT: "json"
LINEAGEHOUSE_LOG_LEVEL: {{ $v.logLevel | quote }}
LINEAGEHOUSE_DATA_DIR: "/var/lib/lineagehouse"
LINEAGEHOUSE_KAFKA__BOOTSTRAP_SERVERS: {{ $v.kafka.bootstrapServers | quote }}
LINEAGEHOUSE_KAFKA__SECURITY_PROTOCOL: {{ $v.kafka.securityProtocol | quote }}
{{- if $v.kafka.sasl.mechanism }}
LINEAGEHOUSE_KAFKA__SASL_MECHANISM: {{ $v.kafka.sasl.mechanism | quote }}
LINEAGEHOUSE_KAFKA__SASL_USERNAME: {{ $v.kafka.sasl.username | quote }}
{{- end }}
{{- if $v.kafka.tls.caSecret }}
LINEAGEHOUSE_KAFKA__SSL_CAFILE: "/etc/lineagehouse/kafka-ca/ca.crt"
{{- end }}
LINEAGEHOUSE_KAFKA__SESSION_TIMEOUT_S: {{ $v.kafka.sessionTimeoutS | toString | quote }}
LINEAGEHOUSE_KAFKA__HEARTBEAT_INTERVAL_S: {{ $v.kafka.heartbeatIntervalS | toString | quote }}
LINEAGEHOUSE_KAFKA__REBALANCE_TIMEOUT_S: {{ $v.kafka.rebalanceTimeoutS | toString | quote }}
LINEAGEHOUSE_KAFKA__COMPRESSION: {{ $v.kafka.compression | quote }}
LINEAGEHOUSE_TOPICS__EVENTS: {{ $v.topics.events | quote }}
LINEAGEHOUSE_TOPICS__DLQ: {{ $v.topics.dlq | quote }}
LINEAGEHOUSE_TOPICS__EVENTS_PARTITIONS: {{ $v.topics.eventsPartitions | int | toString | quote }}
LINEAGEHOUSE_TOPICS__REPLICATION_FACTOR: {{ $v.topics.replicationFactor | int | toString | quote }}
LINEAGEHOUSE_CLICKHOUSE__URL: {{ $v.clickhouse.url | quote }}
LINEAGEHOUSE_CLICKHOUSE__USER: {{ $v.clickhouse.user | quote }}
LINEAGEHOUSE_CLICKHOUSE__DATABASE: {{ $v.clickhouse.database | quote }}
{{- if $v.clickhouse.cluster }}
LINEAGEHOUSE_CLICKHOUSE__CLUSTER: {{ $v.clickhouse.cluster | quote }}
{{- end }}
LINEAGEHOUSE_CLICKHOUSE__TUNE_MERGES: {{ ternary "true" "false" (ne $v.clickhouse.tuneMerges false) | quote }}
LINEAGEHOUSE_RETENTION__RAW_EVENTS_DAYS: {{ $v.retention.rawEventsDays | int | toString | quote }}
LINEAGEHOUSE_RETENTION__LINEAGE_DAYS: {{ $v.retention.lineageDays | int | toString | quote }}
LINEAGEHOUSE_RETENTION__QUALITY_DAYS: {{ $v.retention.qualityDays | int | toString | quote }}
LINEAGEHOUSE_RETENTION__ISSUES_DAYS: {{ $v.retention.issuesDays | int | toString | quote }}
LINEAGEHOUSE_WORKER__BATCH_SIZE: {{ $v.worker.batchSize | int | toString | quote }}
LINEAGEHOUSE_WORKER__BATCH_TIMEOUT_S: {{ $v.worker.batchTimeoutS | toString | quote }}
LINEAGEHOUSE_WORKER__SINK_BATCH_ROWS: {{ $v.worker.sinkBatchRows | int | toString | quote }}
LINEAGEHOUSE_WORKER__SINK_FLUSH_INTERVAL_S: {{ $v.worker.sinkFlushIntervalS | toString | quote }}
LINEAGEHOUSE_WORKER__SHUTDOWN_GRACE_S: {{ $v.worker.shutdownGraceS | toString | quote }}
LINEAGEHOUSE_WORKER__KEEP_FREED_MEMORY_MB: {{ $v.worker.keepFreedMemoryMb | int | toString | quote }}
LINEAGEHOUSE_WORKER__WEB_HOST: "0.0.0.0"
LINEAGEHOUSE_WORKER__WEB_PORT: {{ $v.worker.webPort | int | toString | quote }}
LINEAGEHOUSE_ISSUES__ENABLED: {{ $v.worker.stages.issues.enabled | toString | quote }}
LINEAGEHOUSE_API__HOST: "0.0.0.0"
LINEAGEHOUSE_API__PORT: {{ $v.api.port | int | toString | quote }}
LINEAGEHOUSE_API__AUTH_ENABLED: {{ $v.api.authEnabled | toString | quote }}
LINEAGEHOUSE_API__EXPOSE_SQL: {{ $v.api.exposeSql | toString | quote }}
{{- end -}}

{{/* Secret settings, only as references to existing Secrets, plus extraEnv.
Call with (dict "ctx" $ "kafka" true "apiKey" false). */}}
{{- define "lineagehouse.secretEnv" -}}
{{- $v := .ctx.Values -}}
{{- if $v.clickhouse.existingSecret }}
- name: LINEAGEHOUSE_CLICKHOUSE__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.clickhouse.existingSecret | quote }}
      key: {{ $v.clickhouse.passwordKey | quote }}
{{- end }}
{{- if and .kafka $v.kafka.sasl.mechanism }}
- name: LINEAGEHOUSE_KAFKA__SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.kafka.sasl.existingSecret | quote }}
      key: {{ $v.kafka.sasl.passwordKey | quote }}
{{- end }}
{{- if and .apiKey $v.api.authEnabled }}
- name: LINEAGEHOUSE_API__KEY_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $v.api.keySecret.existingSecret | quote }}
      key: {{ $v.api.keySecret.key | quote }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod pieces -------------------------------------------------------------------- */}}

{{/* Volumes of a pod: scratch dirs for a read-only root filesystem, the Kafka CA. */}}
{{- define "lineagehouse.volumes" -}}
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- if and .kafka .ctx.Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .ctx.Values.kafka.tls.caSecret | quote }}
    items:
      - key: {{ .ctx.Values.kafka.tls.caKey | quote }}
        path: ca.crt
{{- end }}
{{- end -}}

{{- define "lineagehouse.volumeMounts" -}}
- name: data
  mountPath: /var/lib/lineagehouse
- name: tmp
  mountPath: /tmp
{{- if and .kafka .ctx.Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/lineagehouse/kafka-ca
  readOnly: true
{{- end }}
{{- end -}}

{{/* Pod-level fields shared by every pod of the chart. */}}
{{- define "lineagehouse.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .Values.serviceAccountName }}
serviceAccountName: {{ .Values.serviceAccountName | quote }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod annotations: user ones, a config checksum (roll pods on change) and, when
enabled, Prometheus scrape hints. Call with (dict "ctx" $ "port" 5000). */}}
{{- define "lineagehouse.podAnnotations" -}}
checksum/config: {{ include "lineagehouse.settingsEnv" .ctx | sha256sum }}
{{- if .ctx.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | toString | quote }}
prometheus.io/path: "/metrics"
{{- end }}
{{- with .ctx.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "lineagehouse.probe" -}}
{{- $p := .probe | default dict -}}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
{{- range $k := list "initialDelaySeconds" "periodSeconds" "timeoutSeconds" "failureThreshold" "successThreshold" }}
{{- if hasKey $p $k }}
{{ $k }}: {{ index $p $k | int }}
{{- end }}
{{- end }}
{{- end -}}

{{/* PodDisruptionBudget for one Deployment. Call with
(dict "ctx" $ "name" NAME "component" C "selector" SELECTOR_YAML "pdb" VALUES). */}}
{{- define "lineagehouse.pdb" -}}
{{- if .pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  labels:
    {{- include "lineagehouse.labels" .ctx | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if hasKey .pdb "minAvailable" }}
  minAvailable: {{ .pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .pdb.maxUnavailable | default 1 }}
  {{- end }}
  selector:
    matchLabels:
      {{- .selector | nindent 6 }}
{{- end }}
{{- end -}}

{{/* autoscaling/v2 HorizontalPodAutoscaler for one Deployment. Call with
(dict "ctx" $ "name" NAME "component" C "autoscaling" VALUES). */}}
{{- define "lineagehouse.hpa" -}}
{{- $a := .autoscaling -}}
{{- if $a.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ .name }}
  labels:
    {{- include "lineagehouse.labels" .ctx | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ .name }}
  minReplicas: {{ $a.minReplicas | int }}
  maxReplicas: {{ $a.maxReplicas | int }}
  metrics:
    {{- if or $a.targetCPUUtilizationPercentage (not $a.targetMemoryUtilizationPercentage) }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $a.targetCPUUtilizationPercentage | default 70 | int }}
    {{- end }}
    {{- with $a.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . | int }}
    {{- end }}
{{- end }}
{{- end -}}
