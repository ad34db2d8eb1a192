#!/usr/bin/env bash
# bench/kubectl-runbook.sh [--check-only] NAMESPACE CLAIM DEPLOYMENT NEW-CLASS
#
# The devpod maintenance (plans/devpod-home.yaml) as a careful operator scripts it with kubectl
# and jq: what `repave run` is measured against. Same steps, same safety where kubectl offers it:
# the manifests saved first, the old volume set to Retain before its claim is deleted, every
# change waited for, the claim re-created from the saved manifest (labels, annotations, size and
# modes kept; binding fields dropped), the Longhorn volume checked at the end. What kubectl cannot
# do is left out rather than imitated: no journal, no lock, no uid preconditions, no resume.
#
# --check-only runs the read-only checks (the preflight) and stops.
#
# Progress on stderr, one line per step ("step NAME: what"), and after each wait on the cluster
# "waited NAME SECONDS" (the whole kubectl command, from its start to its exit): the benchmark
# (repave-bench maintenance) reads these lines. Environment: KUBECTL (default kubectl),
# KUBECONFIG as usual, REPLICAS (the new class's numberOfReplicas, default 3).
set -euo pipefail
check_only=0
[[ ${1:-} == --check-only ]] && { check_only=1; shift; }
ns=${1:?usage: kubectl-runbook.sh [--check-only] NAMESPACE CLAIM DEPLOYMENT NEW-CLASS}
claim=${2:?claim} deploy=${3:?deployment} class=${4:?new storage class}
replicas=${REPLICAS:-3}
k() { "${KUBECTL:-kubectl}" "$@"; }
step() { echo "step $1: $2" >&2; }
die() { echo "error: $*" >&2; exit 1; }
# timed NAME CMD...: a wait on the cluster, timed as a whole command.
timed() {
  local name=$1 t0=$EPOCHREALTIME; shift
  "$@" >/dev/null
  echo "waited $name $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.6f", b - a }')" >&2
}
backup=$(mktemp -d -t "runbook-$ns-$claim.XXXXXX")   # kept: the manifests as they were

step preflight "the claim Bound, who mounts it, the workload's replicas"
k -n "$ns" get pvc "$claim" -o json > "$backup/pvc.json"
[[ $(jq -r .status.phase "$backup/pvc.json") == Bound ]] || die "claim $ns/$claim is not Bound"
pv=$(jq -r .spec.volumeName "$backup/pvc.json")
k -n "$ns" get deployment "$deploy" -o json > "$backup/deployment.json"
original=$(jq -r .spec.replicas "$backup/deployment.json")
selector=$(jq -r '.spec.selector.matchLabels | to_entries | map("\(.key)=\(.value)") | join(",")' "$backup/deployment.json")
# Any pod mounting the claim that is not the workload's would keep the claim in use.
others=$(k -n "$ns" get pods -o json | jq -r --arg claim "$claim" --argjson match "$(jq .spec.selector.matchLabels "$backup/deployment.json")" '
  .items[] | select(any(.spec.volumes[]?; .persistentVolumeClaim.claimName == $claim))
  | select((.metadata.labels // {}) | contains($match) | not) | .metadata.name')
[[ -z $others ]] || die "pods outside $deploy mount the claim: $others"
((check_only)) && { echo "preflight passed: $ns/$claim on volume $pv, $deploy at $original replicas"; exit 0; }

step save-manifests "claim, volume and workload saved in $backup"
k get pv "$pv" -o json > "$backup/pv.json"

step ensure-storage-class "apply storageclass $class"
k apply -f - >/dev/null <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: $class}
provisioner: driver.longhorn.io
parameters: {numberOfReplicas: "$replicas", staleReplicaTimeout: "30", fsType: ext4}
reclaimPolicy: Delete
volumeBindingMode: Immediate
allowVolumeExpansion: true
EOF

step retain-old-volume "reclaim policy Retain on $pv"
k patch pv "$pv" -p '{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}' >/dev/null

step scale-down "scale $deploy to 0, wait for its pods to go"
k -n "$ns" scale deployment "$deploy" --replicas=0 >/dev/null
timed scale-down k -n "$ns" wait --for=delete pod -l "$selector" --timeout=5m

step delete-claim "delete $ns/$claim and wait until it is gone"
timed delete-claim k -n "$ns" delete pvc "$claim" --wait=true --timeout=5m

step create-claim "re-create $ns/$claim on $class from the saved manifest"
jq --arg class "$class" '
  {apiVersion, kind,
   metadata: (.metadata | {name, namespace, labels, annotations: ((.annotations // {}) | with_entries(select(
     (.key | startswith("pv.kubernetes.io/") or startswith("volume.beta.kubernetes.io/") or startswith("volume.kubernetes.io/")
       or . == "kubectl.kubernetes.io/last-applied-configuration") | not)))} | with_entries(select(.value != null))),
   spec: (.spec | {accessModes, resources: {requests: {storage: .resources.requests.storage}}, volumeMode, storageClassName: $class}
          | with_entries(select(.value != null)))}' "$backup/pvc.json" | k apply -f - >/dev/null

step await-bound "wait until the new claim is Bound"
timed await-bound k -n "$ns" wait pvc/"$claim" --for=jsonpath='{.status.phase}'=Bound --timeout=5m

step scale-up "scale $deploy back to $original, wait for the rollout"
k -n "$ns" scale deployment "$deploy" --replicas="$original" >/dev/null
timed scale-up k -n "$ns" rollout status deployment/"$deploy" --timeout=10m

step verify "the new Longhorn volume: $replicas replicas, healthy"
volume=$(k -n "$ns" get pvc "$claim" -o jsonpath='{.spec.volumeName}')
# Versioned resource name: with `volumes.longhorn.io` kubectl 1.32 throws its discovery cache away
# and reads it again (about 40 requests) on every call against this API server.
timed verify k -n longhorn-system wait volumes.v1beta2.longhorn.io/"$volume" --for=jsonpath='{.status.robustness}'=healthy --timeout=10m
got=$(k -n longhorn-system get volumes.v1beta2.longhorn.io "$volume" -o jsonpath='{.spec.numberOfReplicas}')
[[ $got == "$replicas" ]] || die "volume $volume has $got replicas, not $replicas"

step release-old-volume "the old volume is retained"
echo "done: $ns/$claim on $class (volume $volume, $got replicas, healthy); old volume $pv retained (manifests in $backup)."
echo "delete it later: kubectl delete pv $pv; kubectl -n longhorn-system delete volumes.longhorn.io $pv"
