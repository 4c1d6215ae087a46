{{- define "slolab.name" -}}
{{- printf "%s-slolab" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "slolab.labels" -}}
app.kubernetes.io/name: slolab
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The labels of the pods the proxies run in. */}}
{{- define "slolab.podSelector" -}}
{{- if eq .Values.mode "sidecar" -}}
{{- required "sidecar.podSelector: the labels of the app's pods" .Values.sidecar.podSelector | toYaml -}}
{{- else -}}
app.kubernetes.io/name: slolab
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- end -}}

{{- define "slolab.tokenSecret" -}}
{{- .Values.adminToken.existingSecret | default (printf "%s-admin" (include "slolab.name" .)) -}}
{{- end -}}

{{- define "slolab.keySecret" -}}
{{- .Values.clusterKey.existingSecret | default (printf "%s-cluster" (include "slolab.name" .)) -}}
{{- end -}}

{{- define "slolab.check" -}}
{{- if not (has .Values.mode (list "gateway" "sidecar")) -}}
{{- fail (printf "mode: gateway or sidecar, got %q" .Values.mode) -}}
{{- end -}}
{{- if not .Values.spec -}}
{{- fail "spec: the service spec is required: --set-file spec=my-service.yaml" -}}
{{- end -}}
{{- if and (not .Values.adminToken.value) (not .Values.adminToken.existingSecret) -}}
{{- fail "adminToken: the admin API listens beyond loopback and needs a token: --set adminToken.value=$(openssl rand -hex 16) or adminToken.existingSecret" -}}
{{- end -}}
{{- if and .Values.adminToken.value (lt (len .Values.adminToken.value) 16) -}}
{{- fail (printf "adminToken.value: the token has %d characters: use at least 16, random (openssl rand -hex 16 prints 32)" (len .Values.adminToken.value)) -}}
{{- end -}}
{{- if and (not .Values.clusterKey.value) (not .Values.clusterKey.existingSecret) -}}
{{- fail "clusterKey: the replicas gossip beyond loopback and need a shared key ('slolab cluster keygen'): --set clusterKey.value=... or clusterKey.existingSecret" -}}
{{- end -}}
{{- if and (eq .Values.mode "gateway") (not .Values.upstream) -}}
{{- fail "upstream: the app's Service the gateway forwards to, e.g. http://my-app.my-namespace:80" -}}
{{- end -}}
{{- end -}}

{{/* The proxy container, in the gateway's pods or the app's. */}}
{{- define "slolab.container" -}}
name: slolab
image: {{ printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
args:
  - proxy
  - --spec=/etc/slolab/spec/spec.yaml
  {{- if eq .Values.mode "sidecar" }}
  - --upstream=http://127.0.0.1:{{ .Values.sidecar.appPort }}
  {{- else }}
  - --upstream={{ .Values.upstream }}
  {{- end }}
  - --listen=0.0.0.0:{{ .Values.ports.proxy }}
  - --admin=0.0.0.0:{{ .Values.ports.admin }}
  - --store=/data/slolab.db
  - --audit-log=/data/slolab-audit.jsonl
  - --max-ttl={{ .Values.maxTTL }}
  - --drain=20s
  - --cluster-listen=0.0.0.0:{{ .Values.ports.cluster }}
  - --cluster-advertise=$(POD_IP):{{ .Values.ports.cluster }}
  - --cluster-name=$(POD_NAME)
  - --cluster-peer={{ include "slolab.name" . }}-peers.{{ .Release.Namespace }}.svc:{{ .Values.ports.cluster }}
  - --cluster-key-file=/etc/slolab/cluster/{{ .Values.clusterKey.key }}
  {{- $admin := printf "%s-admin" (include "slolab.name" .) }}
  - --admin-allow-host={{ $admin }}
  - --admin-allow-host={{ $admin }}.{{ .Release.Namespace }}
  - --admin-allow-host={{ $admin }}.{{ .Release.Namespace }}.svc
  - --admin-allow-host={{ $admin }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}
  {{- range .Values.adminAllowHosts }}
  - --admin-allow-host={{ . }}
  {{- end }}
  {{- if .Values.adminOpenMetrics }}
  - --admin-open-metrics
  {{- end }}
  {{- if .Values.trustForwardedFor }}
  - --trust-forwarded-for
  {{- end }}
  {{- range .Values.extraArgs }}
  - {{ . | quote }}
  {{- end }}
env:
  - name: POD_IP
    valueFrom: {fieldRef: {fieldPath: status.podIP}}
  - name: POD_NAME
    valueFrom: {fieldRef: {fieldPath: metadata.name}}
  - name: SLOLAB_ADMIN_TOKEN
    valueFrom:
      secretKeyRef: {name: {{ include "slolab.tokenSecret" . }}, key: {{ .Values.adminToken.key }}}
ports:
  - {name: slolab, containerPort: {{ .Values.ports.proxy }}, protocol: TCP}
  - {name: slolab-admin, containerPort: {{ .Values.ports.admin }}, protocol: TCP}
  - {name: gossip-tcp, containerPort: {{ .Values.ports.cluster }}, protocol: TCP}
  - {name: gossip-udp, containerPort: {{ .Values.ports.cluster }}, protocol: UDP}
{{- /* Probes send no token: /healthz is open with adminOpenMetrics. */}}
{{- $probe := "tcpSocket: {port: slolab-admin}" }}
{{- if .Values.adminOpenMetrics }}
{{- $probe = "httpGet: {path: /healthz, port: slolab-admin}" }}
{{- end }}
readinessProbe:
  {{ $probe }}
  periodSeconds: 5
livenessProbe:
  {{ $probe }}
  periodSeconds: 10
  failureThreshold: 6
resources:
  {{- toYaml .Values.resources | nindent 2 }}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
volumeMounts:
  - {name: slolab-spec, mountPath: /etc/slolab/spec, readOnly: true}
  - {name: slolab-cluster-key, mountPath: /etc/slolab/cluster, readOnly: true}
  - {name: slolab-data, mountPath: /data}
{{- end -}}

{{- define "slolab.volumes" -}}
- name: slolab-spec
  configMap: {name: {{ include "slolab.name" . }}-spec}
- name: slolab-cluster-key
  secret: {secretName: {{ include "slolab.keySecret" . }}}
- name: slolab-data
  emptyDir: {}
{{- end -}}
