#!/usr/bin/env bash
# bench/copy.sh REPAVE REPAVE-LAB LAB-DIR - migrate's copies on the lab's real node against the
# same copy done directly on the host, on the same data and the same disk, for two data shapes:
#   large: 8 files of 128 MiB (1 GiB);  small: 100,000 files of 4 KiB in 100 directories.
# For each shape:
#   - the host: `rsync -aHAXS --numeric-ids --stats` and `cp -a` of the old volume's directory to
#     a directory beside it (rsync's own bytes/s from --stats, and the wall time);
#   - repave: `repave run` of a migrate plan (plans/devpod-home-migrate.yaml pointed at the lab),
#     held after warm-copy (a failpoint, so REPAVE must be a debug build) while 1 % of the data
#     changes on the old volume, then released: the warm copy (a full pass onto an empty volume),
#     the final copy (what changed), the verify pass and the downtime, each from the time its
#     progress lines arrived, and the copy pods' own rate (rsync's --stats, journaled);
#   - page caches dropped before every measured copy when /proc/sys/vm/drop_caches is writable
#     (the output says whether they were).
# LAB-DIR must be a real-node lab (LAB_NODES=real). Sizes: BENCH_COPY_LARGE_MB (default 1024),
# BENCH_COPY_SMALL_FILES (default 100000).
set -euo pipefail
REPAVE=${1:?usage: bench/copy.sh REPAVE(debug) REPAVE-LAB LAB-DIR}
REPAVE_LAB=${2:?usage: bench/copy.sh REPAVE(debug) REPAVE-LAB LAB-DIR}
LAB=${3:?usage: bench/copy.sh REPAVE(debug) REPAVE-LAB LAB-DIR}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBECONFIG_LAB=$LAB/admin.kubeconfig
KUBECTL=$(sed -n 's/^KUBECTL=//p' "$LAB/cluster.env")
VOLUME_DIR=$(sed -n 's/^VOLUME_DIR=//p' "$LAB/node.env" 2>/dev/null || true)
[[ -n $VOLUME_DIR ]] || { echo "bench/copy.sh: $LAB is not a real-node lab (no VOLUME_DIR in node.env): start one with LAB_NODES=real scripts/lab up DIR" >&2; exit 1; }
LARGE_MB=${BENCH_COPY_LARGE_MB:-1024}
SMALL_FILES=${BENCH_COPY_SMALL_FILES:-100000}
WORK=$(mktemp -d "$LAB/bench-copy.XXXXXX")   # beside the volumes: the same disk
trap 'rm -rf "$WORK"' EXIT
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_LAB" "$@"; }

row() { printf '%-52s %16s %16s %8s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'; }
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? "met" : "NOT met" }'; }
at_most() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? "met" : "NOT met" }'; }
summary() { [[ -z ${BENCH_SUMMARY:-} ]] || { local IFS=$'\t'; echo "$*" >> "$BENCH_SUMMARY"; }; }
mib_s() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? b / s / 1048576 : 0) }'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

if [[ -w /proc/sys/vm/drop_caches ]]; then
  CACHES="page caches dropped before every measured copy"
  drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
else
  CACHES="page caches NOT dropped (/proc/sys/vm/drop_caches is not writable): the data may be read from memory"
  drop_caches() { sync; }
fi
echo "copy: $CACHES; volumes and host copies under $VOLUME_DIR ($(df -h --output=source,fstype "$VOLUME_DIR" | tail -1 | tr -s ' '))"

# fill SHAPE DIR: the shape's data, random bytes.
fill() {
  case $1 in
    large) for i in $(seq 1 8); do head -c $((LARGE_MB / 8 * 1048576)) /dev/urandom > "$2/large-$i.bin"; done ;;
    small) local per=$((SMALL_FILES / 100))
           for d in $(seq -w 0 99); do mkdir -p "$2/d$d"; head -c $((per * 4096)) /dev/urandom | (cd "$2/d$d" && split -b 4096 -a 5 -d - f); done ;;
  esac
}
# change SHAPE DIR: 1 % of the data. large: 1 % of the bytes, rewritten in place in the first
# file (rsync copies a changed file whole on a local copy); small: 1 % of the files rewritten.
change() {
  case $1 in
    large) dd if=/dev/urandom of="$2/large-1.bin" bs=1M count=$((LARGE_MB / 100)) seek=1 conv=notrunc status=none ;;
    small) local n=0 per=$((SMALL_FILES / 100 / 100))
           for d in $(seq -w 0 99); do for f in $(cd "$2/d$d" && ls | head -n "$per"); do head -c 4096 /dev/urandom > "$2/d$d/$f"; n=$((n + 1)); done; done ;;
  esac
}

# host SHAPE SRC: rsync and cp -a of SRC on the host; sets host_rsync_s, host_rsync_rate, host_cp_s,
# and host_flags_s, host_flags_lines: rsync with the copy pod's flags and its output's line count.
host() {
  local dst=$WORK/host-$1
  rm -rf "$dst"; mkdir -p "$dst"; drop_caches
  local t0; t0=$(now)
  local stats; stats=$(rsync -aHAXS --numeric-ids --stats "$2/" "$dst/")
  host_rsync_s=$(elapsed "$t0" "$(now)")
  host_rsync_rate=$(sed -n 's/.* \([0-9,.]*\) bytes\/sec$/\1/p' <<< "$stats" | tr -d ,)
  # The copy pod's own command line (progress2 redraws once a file, each a log line in the pod).
  rm -rf "$dst"; mkdir -p "$dst"; drop_caches
  t0=$(now)
  rsync -aHAXS --numeric-ids --delete --partial --info=progress2 --no-inc-recursive --stats "$2/" "$dst/" 2>&1 | tr '\r' '\n' > "$WORK/progress-$1.log"
  host_flags_s=$(elapsed "$t0" "$(now)")
  host_flags_lines=$(wc -l < "$WORK/progress-$1.log")
  rm -rf "$dst"; drop_caches
  t0=$(now)
  cp -a "$2" "$dst"
  host_cp_s=$(elapsed "$t0" "$(now)")
  rm -rf "$dst"
}

# migrate SHAPE: the world, its data, the run held after warm-copy while 1 % changes. Sets
# warm_s, final_s, verify_s, downtime_s, pod_rate, changed.
migrate() {
  local shape=$1 ns=bench-copy-$1
  "$REPAVE_LAB" demo-world --kubeconfig "$KUBECONFIG_LAB" --namespace "$ns" --real-node >/dev/null
  local pv; pv=$(kc -n "$ns" get pvc coder-jeda-codespace-home -o jsonpath='{.spec.volumeName}')
  local src=$VOLUME_DIR/$pv
  fill "$shape" "$src"
  bytes=$(du -sb "$src" | cut -f1); files=$(find "$src" -type f | wc -l)
  host "$shape" "$src"

  local plan=$WORK/$shape.yaml gate=$WORK/gate-$shape timeline=$WORK/timeline-$shape.txt
  sed -e '/^cluster:/,/^  context:/d' -e "s/^  namespace: devpod$/  namespace: $ns/" \
      -e "s/^  name: longhorn-3r$/  name: longhorn-3r-bench/" -e 's/^    limits: {memory: 1Gi}$/    limits: {memory: 2Gi}/' \
      "$ROOT/plans/devpod-home-migrate.yaml" > "$plan"
  drop_caches
  # Each progress line with the time it arrived (the hold is cut out of warm-copy below).
  REPAVE_FAILPOINTS="after-step_done:warm-copy=hold($gate)" "$REPAVE" run "$plan" --yes --window-start now --progress plain \
      --kubeconfig "$KUBECONFIG_LAB" --state-dir "$WORK/runs-$shape" 2>&1 \
    | while IFS= read -r line; do printf '%s %s\n' "$(now)" "$line"; done > "$timeline" &
  local run=$!
  local waited=0
  until [[ -e $gate.reached ]]; do
    sleep 0.02; waited=$((waited + 1))
    if (( waited > 30000 )) || ! kill -0 "$run" 2>/dev/null; then echo "bench/copy.sh: the $shape run never reached the end of warm-copy:" >&2; cat "$timeline" >&2; exit 1; fi
  done
  local held; held=$(now)
  change "$shape" "$src"
  changed=$( [[ $shape == large ]] && echo "$((LARGE_MB / 100)) MiB of 1 file" || echo "$((SMALL_FILES / 100)) files")
  drop_caches
  local released; released=$(now)
  touch "$gate"
  wait "$run" || { echo "bench/copy.sh: the $shape migrate failed:" >&2; cat "$timeline" >&2; exit 1; }
  grep -q '^[0-9.]* finished: ' "$timeline" || { echo "bench/copy.sh: the $shape migrate did not finish:" >&2; cat "$timeline" >&2; exit 1; }
  first() { awk -v step="] $1:" 'index($0, step) { print $1; exit }' "$timeline"; }
  warm_s=$(awk -v a="$(first warm-copy)" -v b="$(first scale-down)" -v h="$held" -v r="$released" 'BEGIN { printf "%.2f", b - a - (r - h) }')
  final_s=$(elapsed "$(first final-copy)" "$(first verify-copy)")
  verify_s=$(elapsed "$(first verify-copy)" "$(first delete-staging-claim)")
  downtime_s=$(sed -n 's/^[0-9.]*   downtime: *\([0-9.]*\)s .*/\1/p' "$timeline")
  pod_rate=$(grep -h '"copy.warm.bytesPerSecond"' "$WORK"/runs-"$shape"/*/journal.jsonl | sed -n 's/.*"value":"\{0,1\}\([0-9]*\).*/\1/p' | tail -1)
  # The world goes (its namespace, then the volumes left behind) so the next shape starts clean.
  kc delete ns "$ns" --wait=true --timeout=180s >/dev/null
  for volume in $(kc get pv -o jsonpath="{range .items[?(@.spec.claimRef.namespace==\"$ns\")]}{.metadata.name}{\"\\n\"}{end}"); do
    kc delete pv "$volume" --wait=false >/dev/null
  done
}

for shape in large small; do
  migrate "$shape"
  label=$( [[ $shape == large ]] && echo "8 files, $((bytes / 1048576)) MiB" || echo "$files files of 4 KiB, $((bytes / 1048576)) MiB" )
  echo
  echo "case: copy, $label (wall seconds; rates in MiB/s)"
  row "" "repave" "host" "ratio"
  host_rate_mib=$(mib_s "$host_rsync_rate" 1) pod_rate_mib=$(mib_s "${pod_rate:-0}" 1)
  # Throughput ratios: repave's rate over the host's (higher is better).
  tp_ratio=$(ratio "$pod_rate_mib" "$host_rate_mib")
  wall_tp_ratio=$(ratio "$host_rsync_s" "$warm_s")
  row "full copy, rsync's own rate (--stats)" "$pod_rate_mib" "$host_rate_mib" "$tp_ratio"
  row "full copy, wall (warm-copy step vs host rsync)" "$warm_s" "$host_rsync_s" "$(ratio "$warm_s" "$host_rsync_s")"
  row "full copy, wall (warm-copy step vs host cp -a)" "$warm_s" "$host_cp_s" "$(ratio "$warm_s" "$host_cp_s")"
  row "full copy, wall (vs host rsync with the pod's flags)" "$warm_s" "$host_flags_s" "$(ratio "$warm_s" "$host_flags_s")"
  echo "  (the pod's flags: --info=progress2 --no-inc-recursive --delete --partial --stats; on the host they printed $host_flags_lines lines)"
  row "final copy after $changed changed, vs full" "$final_s" "$warm_s" "$(ratio "$final_s" "$warm_s")"
  row "verify-copy (rsync -n -c), vs full copy" "$verify_s" "$warm_s" "$(ratio "$verify_s" "$warm_s")"
  row "downtime (scale-down to workload back)" "$downtime_s" "" ""
  echo "targets: copy throughput >= 0.8x the host's rsync; final pass <= 0.2x the full pass"
  summary "copy $label: throughput, rsync's rate" "$pod_rate_mib MiB/s" "$host_rate_mib MiB/s (host rsync)" "$tp_ratio" ">= 0.8x" "$(at_least "${tp_ratio%x}" 0.8)"
  summary "copy $label: throughput, wall" "$warm_s s (warm-copy step)" "$host_rsync_s s (host rsync); cp -a $host_cp_s s" "$wall_tp_ratio" ">= 0.8x" "$(at_least "${wall_tp_ratio%x}" 0.8)"
  summary "copy $label: final pass, $changed changed" "$final_s s" "$warm_s s (full pass)" "$(ratio "$final_s" "$warm_s")" "<= 0.2x" "$(at_most "$(ratio "$final_s" "$warm_s" | tr -d x)" 0.2)"
  summary "copy $label: verify-copy" "$verify_s s" "$warm_s s (full pass)" "$(ratio "$verify_s" "$warm_s")" "" ""
  summary "copy $label: downtime" "$downtime_s s" "" "" "" ""
done
