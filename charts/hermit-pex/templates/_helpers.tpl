{{/* The chart's name. */}}
{{- define "hermit-pex.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: object names start with it (at most 63 characters). */}}
{{- define "hermit-pex.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "hermit-pex.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hermit-pex.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hermit-pex.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "hermit-pex.labels" -}}
helm.sh/chart: {{ include "hermit-pex.chart" . }}
{{ include "hermit-pex.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: hermit-pex
{{- end }}

{{- define "hermit-pex.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hermit-pex.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* An image reference from {repository, tag, digest}; the tag defaults to appVersion. */}}
{{- define "hermit-pex.imageRef" -}}
{{- $repository := index . 0 }}
{{- $image := index . 1 }}
{{- $appVersion := index . 2 }}
{{- if $image.digest }}
{{- printf "%s@%s" $repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default $appVersion $image.tag) }}
{{- end }}
{{- end }}

{{- define "hermit-pex.image" -}}
{{- $repository := required "image.repository: the controller image you pushed (docs/src/cluster/images.md), e.g. registry.example.com/hermit-pex" .Values.image.repository }}
{{- include "hermit-pex.imageRef" (list $repository .Values.image .Chart.AppVersion) }}
{{- end }}

{{- define "hermit-pex.builderImage" -}}
{{- $repository := .Values.builder.image.repository }}
{{- if not $repository }}
{{- $repository = printf "%s-builder" (required "image.repository: the controller image you pushed (docs/src/cluster/images.md); the builder image defaults to it + \"-builder\"" .Values.image.repository) }}
{{- end }}
{{- include "hermit-pex.imageRef" (list $repository .Values.builder.image .Chart.AppVersion) }}
{{- end }}

{{- define "hermit-pex.leaseName" -}}
{{- default (include "hermit-pex.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* The rules the controller needs on PythonPackages and what it makes of them. */}}
{{- define "hermit-pex.rules" -}}
- apiGroups: [hermit-pex.dev]
  resources: [pythonpackages]
  verbs: [list, watch]
# Status by server-side apply.
- apiGroups: [hermit-pex.dev]
  resources: [pythonpackages/status]
  verbs: [patch]
# blockOwnerDeletion on the build Jobs' owner references needs update on finalizers.
- apiGroups: [hermit-pex.dev]
  resources: [pythonpackages/finalizers]
  verbs: [update]
# Server-side apply creates (create, patch); failures are recorded on the Job (patch); a
# failed Job is deleted to retry it.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch, create, patch, delete]
# Why a build failed: OOMKilled, exit codes.
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/*
The SSH key Secret the controller mounts: it pushes manifests and lists source tags with one
key, so manifests.sshKeySecret and sources.sshKeySecret must agree when both are set.
*/}}
{{- define "hermit-pex.sshKeySecret" -}}
{{- $m := .Values.manifests.sshKeySecret -}}
{{- $s := .Values.sources.sshKeySecret -}}
{{- if and $m $s (ne $m $s) -}}
{{- fail "manifests.sshKeySecret and sources.sshKeySecret name different Secrets: the controller has one SSH key; name the same Secret in both" -}}
{{- end -}}
{{- $s | default $m -}}
{{- end -}}
