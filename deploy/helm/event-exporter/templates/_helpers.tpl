{{/* The chart name. */}}
{{- define "event-exporter.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The name of every object: the release name without a trailing "-app", as the seed app
(event-exporter-app) names its objects, so that its thread-cache ConfigMap carries over.
*/}}
{{- define "event-exporter.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- .Release.Name | trimSuffix "-app" | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "event-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The standard name and instance labels: every object carries them. */}}
{{- define "event-exporter.standardLabels" -}}
{{- dict "app.kubernetes.io/name" (include "event-exporter.name" .) "app.kubernetes.io/instance" .Release.Name | toYaml -}}
{{- end -}}

{{/* What selects the pods: `selectorLabels` when set (a seed release's selector), else the standard labels. */}}
{{- define "event-exporter.selectorLabels" -}}
{{- if .Values.selectorLabels -}}
{{- toYaml .Values.selectorLabels -}}
{{- else -}}
{{- include "event-exporter.standardLabels" . -}}
{{- end -}}
{{- end -}}

{{/* The pods' labels: the selector's win over the standard ones, which win over `podLabels`. */}}
{{- define "event-exporter.podLabels" -}}
{{- $selector := include "event-exporter.selectorLabels" . | fromYaml -}}
{{- merge $selector (include "event-exporter.standardLabels" . | fromYaml) (.Values.podLabels | default dict) | toYaml -}}
{{- end -}}

{{- define "event-exporter.labels" -}}
{{- $labels := merge (dict) .Values.selectorLabels (include "event-exporter.standardLabels" . | fromYaml) -}}
{{- $_ := set $labels "helm.sh/chart" (include "event-exporter.chart" .) -}}
{{- $_ := set $labels "app.kubernetes.io/version" .Chart.AppVersion -}}
{{- $_ := set $labels "app.kubernetes.io/managed-by" .Release.Service -}}
{{- toYaml $labels -}}
{{- end -}}

{{- define "event-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "event-exporter.fullname" .) -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "event-exporter.image" -}}
{{- $repo := .Values.image.name -}}
{{- if .Values.image.registry }}{{ $repo = printf "%s/%s" .Values.image.registry .Values.image.name }}{{ end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{/* Which receivers the built-in config has. */}}
{{- define "event-exporter.slackWebhook" -}}
{{- if or .Values.slack.webhook .Values.slack.webhookSecretRef.name }}true{{ end -}}
{{- end -}}
{{- define "event-exporter.slackToken" -}}
{{- if or .Values.slack.token .Values.slack.tokenSecretRef.name }}true{{ end -}}
{{- end -}}
{{- define "event-exporter.grafanaToken" -}}
{{- if or .Values.grafana.token .Values.grafana.tokenSecretRef.name }}true{{ end -}}
{{- end -}}

{{- define "event-exporter.leaseName" -}}
{{- .Values.leaderElection.leaderElectionID | default (include "event-exporter.fullname" .) -}}
{{- end -}}

{{- define "event-exporter.threadCacheName" -}}
{{- .Values.slack.cache.name | default (printf "%s-thread-cache" (include "event-exporter.fullname" .)) -}}
{{- end -}}

{{/*
The config built from the values. The routes, receivers and message templates are exactly the
seed app's (event-exporter-app 3.7.0); secrets are `${VAR}` references to the chart's Secret.
*/}}
{{- define "event-exporter.builtinConfig" -}}
{{- $mc := .Values.managementCluster.name -}}
{{- $x := .Values.exporter -}}
{{- $kinds := list -}}
{{- range .Values.grafana.kinds }}{{ $kinds = append $kinds .kind }}{{ end -}}
{{- $namesKind := or (include "event-exporter.slackWebhook" .) (include "event-exporter.slackToken" .) (and .Values.grafana.url $kinds) -}}
logLevel: {{ $x.logLevel | quote }}
logFormat: {{ $x.logFormat | quote }}
maxEventAgeSeconds: {{ int $x.maxEventAgeSeconds }}
{{- with $x.namespace }}
namespace: {{ . | quote }}
{{- end }}
{{- with ($x.clusterName | default $mc) }}
clusterName: {{ . | quote }}
{{- end }}
{{- /* No rule names a kind: looking up every kind would need `get` on everything. */}}
omitLookup: {{ or $x.omitLookup (not $namesKind) }}
cacheSize: {{ int $x.cacheSize }}
kubeQPS: {{ $x.kubeQPS }}
kubeBurst: {{ int $x.kubeBurst }}
{{- with $x.metricsNamePrefix }}
metricsNamePrefix: {{ . | quote }}
{{- end }}
leaderElection:
  enabled: {{ .Values.leaderElection.enabled }}
  leaderElectionID: {{ include "event-exporter.leaseName" . | quote }}
checkpoint:
  enabled: {{ .Values.checkpoint.enabled }}
  {{- if .Values.checkpoint.enabled }}
  configMap:
    name: {{ printf "%s-checkpoint" (include "event-exporter.leaseName" .) | quote }}
    namespace: {{ .Release.Namespace | quote }}
  intervalSeconds: {{ int .Values.checkpoint.intervalSeconds }}
  {{- end }}
{{- if .Values.watchReasons }}
watchReasons:
  {{- toYaml .Values.watchReasons | nindent 2 }}
{{- end }}
route:
  routes:
  # Cluster events for Slack.
  {{- if include "event-exporter.slackWebhook" . }}
  # Webhook sink.
  - match:
    - kind: Cluster
      apiversion: cluster.x-k8s.io/v1beta2
      reason: UpgradingWithNodeRoll
      component: "cluster-api-events-controller"
      receiver: webhook-upgrade-with-node-roll
  - match:
    - kind: Cluster
      apiversion: cluster.x-k8s.io/v1beta2
      reason: UpgradingWithoutNodeRoll
      component: "cluster-api-events-controller"
      receiver: webhook-upgrade-without-node-roll
  - match:
    - kind: Cluster
      apiversion: cluster.x-k8s.io/v1beta2
      reason: Upgraded
      component: "cluster-api-events-controller"
      receiver: webhook-upgrade-complete
  - match:
    - kind: Cluster
      apiversion: cluster.x-k8s.io/v1beta2
      reason: UpgradedControlPlane
      component: "cluster-api-events-controller"
      receiver: webhook-upgrade-progress
  {{- end }}
  {{- if include "event-exporter.slackToken" . }}
  # Slack sink.
  - match:
    - kind: Cluster
      apiversion: cluster.x-k8s.io/v1beta2
      reason: UpgradingWithNodeRoll|UpgradingWithoutNodeRoll|Upgraded|UpgradedControlPlane
      component: "cluster-api-events-controller"
      receiver: slack-upgrade
  {{- end }}
  {{- if and .Values.grafana.url $kinds }}
  # Grafana annotations.
  - match:
    - kind: {{ join "|" $kinds | quote }}
      receiver: grafana
  {{- end }}

  # Ignore other events.
  - drop:
    - namespace: "*"

receivers:
{{- if include "event-exporter.slackWebhook" . }}
# Webhook sink - upgrade with node roll (minor/major upgrades).
- name: webhook-upgrade-with-node-roll
  webhook:
    endpoint: "${SLACK_WEBHOOK_URL}"
    layout:
      text: "The cluster upgrade of `{{ "{{" }} .InvolvedObject.Namespace {{ "}}" }}/{{ "{{" }} .InvolvedObject.Name {{ "}}" }}` on `{{ $mc }}` {{ "{{" }} .Message {{ "}}" }} has begun. This upgrade will replace nodes."

# Webhook sink - upgrade without node roll (patch upgrades).
- name: webhook-upgrade-without-node-roll
  webhook:
    endpoint: "${SLACK_WEBHOOK_URL}"
    layout:
      text: "The cluster upgrade of `{{ "{{" }} .InvolvedObject.Namespace {{ "}}" }}/{{ "{{" }} .InvolvedObject.Name {{ "}}" }}` on `{{ $mc }}` {{ "{{" }} .Message {{ "}}" }} has begun. This upgrade will not replace nodes."

# Upgrade completed.
- name: webhook-upgrade-complete
  webhook:
    endpoint: "${SLACK_WEBHOOK_URL}"
    layout:
      text: "The cluster upgrade of `{{ "{{" }} .InvolvedObject.Namespace {{ "}}" }}/{{ "{{" }} .InvolvedObject.Name {{ "}}" }}` on `{{ $mc }}` has completed {{ "{{" }} .Message {{ "}}" }}."

# Upgrade progress.
- name: webhook-upgrade-progress
  webhook:
    endpoint: "${SLACK_WEBHOOK_URL}"
    layout:
      text: "Control plane upgrade completed for `{{ "{{" }} .InvolvedObject.Namespace {{ "}}" }}/{{ "{{" }} .InvolvedObject.Name {{ "}}" }}` on `{{ $mc }}`"
{{- end }}
{{- if include "event-exporter.slackToken" . }}
# Slack sink.
- name: slack-upgrade
  slack:
    token: "${SLACK_TOKEN}"
    channel: {{ required "slack.channel is required with slack.token (e.g. \"#upgrades\")" .Values.slack.channel | quote }}
    {{- if .Values.slack.cache.enabled }}
    cache:
      name: {{ include "event-exporter.threadCacheName" . }}
      namespace: {{ .Values.slack.cache.namespace | default .Release.Namespace }}
    {{- end }}
    threadKey: '{{ "{{" }} .InvolvedObject.Namespace {{ "}}" }}/{{ "{{" }} .InvolvedObject.Name {{ "}}" }}/{{ "{{" }} index .Annotations "giantswarm.io/target-version" {{ "}}" }}'
    completionCondition: '{{ "{{" }} if eq .Reason "Upgraded" }}true{{ "{{" }} end }}'
    completionEmoji: "white_check_mark"
    message: |
      {{ "{{" }} if eq .Reason "UpgradingWithNodeRoll" -}}
      The cluster upgrade of `{{ "{{" }} .InvolvedObject.Namespace }}/{{ "{{" }} .InvolvedObject.Name }}` on `{{ $mc }}` {{ "{{" }} .Message }} has begun. This upgrade will replace nodes.
      {{- "{{" }} else if eq .Reason "UpgradingWithoutNodeRoll" -}}
      The cluster upgrade of `{{ "{{" }} .InvolvedObject.Namespace }}/{{ "{{" }} .InvolvedObject.Name }}` on `{{ $mc }}` {{ "{{" }} .Message }} has begun. This upgrade will not replace nodes.
      {{- "{{" }} else if eq .Reason "Upgraded" -}}
      The cluster upgrade of `{{ "{{" }} .InvolvedObject.Namespace }}/{{ "{{" }} .InvolvedObject.Name }}` on `{{ $mc }}` has completed {{ "{{" }} .Message }}.
      {{- "{{" }} else if eq .Reason "UpgradedControlPlane" -}}
      :white_check_mark: Control plane upgrade completed for `{{ "{{" }} .InvolvedObject.Namespace }}/{{ "{{" }} .InvolvedObject.Name }}` on `{{ $mc }}`.
      {{- "{{" }} end }}
{{- end }}
{{- if and .Values.grafana.url $kinds }}
{{- $g := .Values.grafana }}
{{- $tags := list "event" }}
{{- with $g.team }}{{ $tags = append $tags . }}{{ end }}
{{- $tags = concat $tags (list `{{ .Reason }}` `{{ .Type }}` `{{ .InvolvedObject.Kind }}` `{{ .InvolvedObject.Name }}`) }}
{{- range (list $mc .Values.managementCluster.customer .Values.provider.kind) }}{{ if . }}{{ $tags = append $tags . }}{{ end }}{{ end }}
{{- $tags = append $tags (ternary "testing" "stable" .Values.testingEnvironment) }}
{{- $tags = append $tags `{{ .Source.Component }}` }}
{{- $tags = concat $tags $g.tags }}
{{- $data := printf "%s for %s %s/%s%s reported by %s" `{{ .Message }}` `{{ .InvolvedObject.Kind }}` `{{ .InvolvedObject.Namespace }}` `{{ .InvolvedObject.Name }}` (ternary (printf " on %s" $mc) "" (ne $mc "")) `{{ .Source.Component }}` }}
# Grafana annotations (the seed README's example).
- name: grafana
  grafana:
    url: {{ $g.url | trimSuffix "/" | quote }}
    {{- $_ := required "grafana.token or grafana.tokenSecretRef is required with grafana.url (the annotations API needs a service-account token)" (include "event-exporter.grafanaToken" .) }}
    token: "${GRAFANA_TOKEN}"
    {{- if $g.dashboard }}
    api: annotations
    dashboardUID: {{ $g.dashboard | quote }}
    {{- with $g.panelId }}
    panelId: {{ int . }}
    {{- end }}
    text: {{ printf "%s - %s: %s" `{{ .InvolvedObject.Kind }}` `{{ .Reason }}` $data | quote }}
    {{- else }}
    api: graphite
    what: {{ `{{ .InvolvedObject.Kind }} - {{ .Reason }}` | quote }}
    data: {{ $data | quote }}
    {{- end }}
    tags:
      {{- toYaml $tags | nindent 6 }}
{{- end }}
{{- end -}}

{{/* config.yaml: `config` verbatim (a string, or a map as YAML), else the built-in config. */}}
{{- define "event-exporter.configText" -}}
{{- if .Values.config -}}
{{- if kindIs "string" .Values.config -}}
{{- .Values.config -}}
{{- else -}}
{{- toYaml .Values.config -}}
{{- end -}}
{{- else -}}
{{- include "event-exporter.builtinConfig" . -}}
{{- end -}}
{{- end -}}

{{/*
What the config needs from the cluster, read from the final config.yaml (so a `config` override
gets the RBAC it needs too), as YAML:
  watchNamespace: ""            events of every namespace (else only this one)
  leaderElection: true|false
  leases: {NS: [NAME]}          Lease get/update (+ create) per namespace
  configMaps: {NS: [NAME]}      ConfigMap get/update (+ create) per namespace
  lookup: {GROUP: [RESOURCE]}   `get` for involved objects
*/}}
{{- define "event-exporter.needs" -}}
{{- $c := include "event-exporter.configText" . | fromYaml -}}
{{- if hasKey $c "Error" }}{{ fail (printf "config is not valid YAML: %s" (toString $c.Error)) }}{{ end -}}
{{- $ns := .Release.Namespace -}}
{{- $le := $c.leaderElection | default dict -}}
{{- $lease := $le.leaderElectionID | default "event-exporter" -}}
{{- $leases := dict -}}
{{- if $le.enabled }}{{ $_ := set $leases $ns (list $lease) }}{{ end -}}
{{- $cms := dict -}}
{{- $cp := $c.checkpoint | default dict -}}
{{- if and (not (and (hasKey $cp "enabled") (not $cp.enabled))) (not $cp.file) -}}
{{- $ref := $cp.configMap | default dict -}}
{{- $cpns := $ref.namespace | default $ns -}}
{{- $_ := set $cms $cpns (append (get $cms $cpns | default list) ($ref.name | default (printf "%s-checkpoint" $lease))) -}}
{{- end -}}
{{- range $c.receivers -}}
{{- $s := (.slack | default dict) -}}
{{- $cache := $s.cache | default dict -}}
{{- if and $cache.name $cache.namespace (not $cache.file) -}}
{{- $_ := set $cms $cache.namespace (append (get $cms $cache.namespace | default list) $cache.name | uniq) -}}
{{- end -}}
{{- end -}}
{{- $lookup := dict -}}
{{- if not .Values.config -}}
{{- if or (include "event-exporter.slackWebhook" .) (include "event-exporter.slackToken" .) -}}
{{- $_ := set $lookup "cluster.x-k8s.io" (list "clusters") -}}
{{- end -}}
{{- if .Values.grafana.url -}}
{{- range .Values.grafana.kinds -}}
{{- $_ := set $lookup .apiGroup (append (get $lookup .apiGroup | default list) .resource | uniq) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range .Values.rbac.lookup -}}
{{- $r := .resources -}}
{{- range .apiGroups -}}
{{- $_ := set $lookup . (concat (get $lookup . | default list) $r | uniq) -}}
{{- end -}}
{{- end -}}
{{- if $c.omitLookup }}{{ $lookup = dict }}{{ end -}}
{{- toYaml (dict "watchNamespace" ($c.namespace | default "" | toString) "leaderElection" (not (not $le.enabled)) "leases" $leases "configMaps" $cms "lookup" $lookup) -}}
{{- end -}}
