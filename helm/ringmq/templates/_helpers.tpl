{{/* Names, labels and the values every template shares. */}}

{{- define "ringmq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-and-chart name; pod names (<fullname>-0 ...) are node ids, so it stays short. */}}
{{- define "ringmq.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ringmq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ringmq.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ringmq.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ringmq.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The headless Service: the pods' DNS names and the peers' discovery (cluster.dns). */}}
{{- define "ringmq.headlessName" -}}
{{- printf "%s-headless" (include "ringmq.fullname" .) -}}
{{- end -}}

{{- define "ringmq.headlessFqdn" -}}
{{- printf "%s.%s.svc.%s" (include "ringmq.headlessName" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{- define "ringmq.clustered" -}}
{{- if gt (int .Values.replicaCount) 1 -}}true{{- end -}}
{{- end -}}

{{- define "ringmq.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ringmq.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ringmq.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "ringmq.adminSecretName" -}}
{{- default (printf "%s-admin" (include "ringmq.fullname" .)) .Values.admin.existingSecret -}}
{{- end -}}

{{- define "ringmq.tlsSecretName" -}}
{{- if .Values.tls.existingSecret -}}
{{- .Values.tls.existingSecret -}}
{{- else if .Values.tls.certManager.enabled -}}
{{- printf "%s-tls" (include "ringmq.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The listeners and the TLS use that are on, after the cross-checks. */}}
{{- define "ringmq.tlsOn" -}}
{{- if .Values.tls.enabled -}}
{{- if not (include "ringmq.tlsSecretName" .) -}}
{{- fail "tls.enabled needs tls.existingSecret or tls.certManager.enabled" -}}
{{- end -}}
true
{{- end -}}
{{- end -}}

{{- define "ringmq.needsCa" -}}
{{- if or .Values.tls.requireClientCert (and .Values.cluster.tls (include "ringmq.clustered" .)) -}}true{{- end -}}
{{- end -}}

{{- define "ringmq.passwordsOn" -}}
{{- if or .Values.auth.passwords .Values.auth.passwordsSecret -}}true{{- end -}}
{{- end -}}

{{- define "ringmq.aclOn" -}}
{{- if or .Values.auth.acl .Values.auth.aclSecret -}}true{{- end -}}
{{- end -}}

{{/* Every listener that is on: name, type, port, path. */}}
{{- define "ringmq.listeners" -}}
{{- $l := .Values.listeners -}}
{{- $tls := include "ringmq.tlsOn" . -}}
{{- $out := list -}}
{{- if $l.mqtt.enabled }}{{ $out = append $out (dict "name" "mqtt" "type" "mqtt" "port" $l.mqtt.port) }}{{ end -}}
{{- if and $tls $l.mqtts.enabled }}{{ $out = append $out (dict "name" "mqtts" "type" "mqtts" "port" $l.mqtts.port) }}{{ end -}}
{{- if $l.ws.enabled }}{{ $out = append $out (dict "name" "ws" "type" "ws" "port" $l.ws.port "path" $l.ws.path) }}{{ end -}}
{{- if and $tls $l.wss.enabled }}{{ $out = append $out (dict "name" "wss" "type" "wss" "port" $l.wss.port "path" $l.wss.path) }}{{ end -}}
{{- if not $out }}{{ fail "no listener is on: enable listeners.mqtt, listeners.ws, or a TLS one with tls.enabled" }}{{ end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The shutdown must fit in the grace period: the preStop wait, then the SIGTERM's. */}}
{{- define "ringmq.checkGracePeriod" -}}
{{- $needed := add (int .Values.shutdownTimeoutSeconds) 10 -}}
{{- if .Values.preStop.enabled }}{{ $needed = add $needed (int .Values.preStop.timeoutSeconds) }}{{ end -}}
{{- if lt (int .Values.terminationGracePeriodSeconds) (int $needed) -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be at least preStop.timeoutSeconds + shutdownTimeoutSeconds + 10 (%d)" (int .Values.terminationGracePeriodSeconds) (int $needed)) -}}
{{- end -}}
{{- end -}}
