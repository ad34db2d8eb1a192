# scripts/lab-node/node.sh - sourced by scripts/lab: the real node of `LAB_NODES=real scripts/lab up`.
#
# One node, lab-node-1: containerd (own root, state and socket) and a kubelet v1.20.2 with a
# `system:node:lab-node-1` certificate, plus the CSI node plugin `driver.longhorn.io`
# (repave-lab-csi), which serves each volume as a directory DIR/volumes/<volume name>.
#
# Network: the node IP is 127.0.0.2 (the kubelet listens there; the apiserver reaches it by
# InternalIP); pods get addresses on a bridge that has no address on the host, so a pod's address
# exists only inside its network namespace and nothing on the host connects to it.
#
# Short paths: the kubelet's root, containerd's state and every unix socket live under
# /run/repave-lab/<id>/ (socket paths are limited to 107 bytes; a checkout's path can be long).
# DIR/node.env records it.
#
# One real node per machine: kubelet 1.20 writes fixed host paths (/var/lib/kubelet/device-plugins,
# /var/log/pods, /var/log/containers) and cgroups (kubepods), and the bridge has a fixed name. The
# lab's processes inherit a lock on /run/repave-lab/node.lock: a real-node lab is live while any of
# them holds it. `up` refuses only while another live lab holds it, and clears a dead one's
# leftovers first.
#
# What containerd 1.6 and kubelet 1.20 write outside DIR and /run/repave-lab/<id>, and `down` removes:
#   /run/containerd/s/<sha256>   one shim socket per sandbox (name: sha256 of address/namespace/id)
#   /var/log/pods/<ns>_<pod>_<uid>/ and their /var/log/containers/*.log links
#   /var/lib/kubelet/device-plugins/{kubelet.sock,DEPRECATION}
#   /sys/fs/cgroup/*/kubepods     the pods' cgroups (cgroupfs driver)
#   the bridge repave-lab0
# runc's state (runtime option Root) and the pods' network namespaces (netns_mounts_under_state_dir)
# are moved under /run/repave-lab/<id>.

NODE_NAME=lab-node-1
NODE_IP=127.0.0.2
NODE_BRIDGE=repave-lab0
NODE_POD_CIDR=10.244.7.0/24
NODE_LOCK_DIR=/run/repave-lab
NODE_HOST_PATHS=(/var/lib/kubelet/device-plugins /var/log/pods /var/log/containers)

node_run_dir() { echo "$NODE_LOCK_DIR/$(printf '%s' "$1" | sha256sum | cut -c1-10)"; }

# node_lock: take the machine-wide lock on a file descriptor that every process `up` starts inherits.
node_lock() {
  mkdir -p "$NODE_LOCK_DIR"; chmod 755 "$NODE_LOCK_DIR"
  exec {NODE_LOCK_FD}>>"$NODE_LOCK_DIR/node.lock"
  if ! flock -n "$NODE_LOCK_FD"; then
    local owner; owner=$(cut -d" " -f1 "$NODE_LOCK_DIR/node.owner" 2>/dev/null || echo "unknown")
    exec {NODE_LOCK_FD}>&-; NODE_LOCK_FD=
    die "another real-node lab is live ($owner); kubelet 1.20 has fixed host paths, so one real node per machine: run scripts/lab down $owner first"
  fi
  # The lock is free: any real-node lab that ran before is dead. Clear what it left.
  if [[ -s $NODE_LOCK_DIR/node.owner ]]; then
    local state run
    read -r state run < "$NODE_LOCK_DIR/node.owner"
    log "clearing the leftovers of a dead real-node lab ($state)"
    node_cleanup "$run" "$state/node"
  fi
}

# node_prepare: checks, the run directory, certificates (before the control plane starts, since
# the apiserver needs its kubelet client certificate).
node_prepare() {
  local bin=$1 t
  for t in containerd containerd-shim-runc-v2 runc ctr ip flock setfattr setfacl getfattr; do
    command -v "$t" >/dev/null || die "$t is missing (LAB_NODES=real needs containerd, runc, iproute2, attr, acl): run scripts/deps"
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] \
    || die "no CNI plugins in /usr/lib/cni: run scripts/deps (containernetworking-plugins)"
  for t in kubelet repave-lab-csi pause.tar mover.tar; do
    [[ -e $bin/$t ]] || die "no $t in $bin: run scripts/lab build"
  done
  node_lock
  NODE_RUN=$(node_run_dir "$STATE")
  rm -rf "$NODE_RUN"; mkdir -p "$NODE_RUN"; chmod 700 "$NODE_RUN"
  echo "$STATE $NODE_RUN" > "$NODE_LOCK_DIR/node.owner"
  echo "$STATE" > "$NODE_RUN/owner"
  touch "$NODE_RUN/started"   # the pod log directories newer than this are this kubelet's
  mkdir -p "$STATE/node/containerd" "$STATE/node/cni" "$STATE/volumes"
  touch "$STATE/node/started"
  # Host directories the kubelet creates that did not exist: `down` removes them again.
  local p
  for p in /var/lib/kubelet "${NODE_HOST_PATHS[@]}"; do [[ -e $p ]] || echo "$p" >> "$NODE_RUN/created-host-dirs"; done
  {
    echo "NODE_NAME=$NODE_NAME"
    echo "NODE_IP=$NODE_IP"
    echo "NODE_RUN_DIR=$NODE_RUN"
    echo "VOLUME_DIR=$STATE/volumes"
    echo "CONTAINERD_SOCK=$NODE_RUN/containerd/containerd.sock"
    echo "KUBECTL=$bin/kubectl"
  } > "$STATE/node.env"
  local client=("basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth")
  # The apiserver's identity towards the kubelet (logs, exec): the kubelet authorizes AlwaysAllow
  # any client its CA signed, so this one has no group.
  gen_cert "$PKI" apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" "${client[@]}"
  gen_cert "$PKI" node "/O=system:nodes/CN=system:node:$NODE_NAME" "${client[@]}"
  gen_cert "$PKI" kubelet-serving "/CN=$NODE_NAME" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"
  chmod 600 "$PKI"/*.key
}

# node_start BIN: containerd, the images, the kubelet and the CSI plugin; waits for Ready.
node_start() {
  local bin=$1 cd=$NODE_RUN/containerd sock=$NODE_RUN/containerd/containerd.sock kl=$NODE_RUN/kubelet
  # write_kubeconfig left umask 077: volume directories and pod files would be root-only.
  umask 022
  mkdir -p "$cd" "$kl/root" "$NODE_RUN/runc" "$STATE/node/cni/net.d"
  cat > "$STATE/node/containerd/config.toml" <<EOF
version = 2
root = "$STATE/node/containerd/root"
state = "$cd/state"
oom_score = 0
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "lab/pause:3.2"
  enable_selinux = false
  # Machines without CAP_SYS_RESOURCE (this VM) cannot lower oom_score_adj; the CRI gives every
  # sandbox -998 and runc dies with "can't get final child's PID from pipe: EOF". This clamps
  # container scores to containerd's own instead.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$NODE_RUN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/node/cni/net.d"
EOF
  # isGateway false: the bridge gets no address on the host.
  cat > "$STATE/node/cni/net.d/10-repave-lab.conflist" <<EOF
{ "cniVersion": "0.4.0", "name": "repave-lab", "plugins": [
  { "type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": false, "ipMasq": false,
    "ipam": { "type": "host-local", "ranges": [[{"subnet": "$NODE_POD_CIDR"}]], "dataDir": "$NODE_RUN/ipam" } },
  { "type": "loopback" } ] }
EOF
  # containerd does not hold the lock: its shims (and through them, runc) would inherit it and keep a
  # dead lab "live". A dead lab's containerd is stopped by pid in node_cleanup.
  LAB_CLOSE_FD=$NODE_LOCK_FD launch containerd containerd --config "$STATE/node/containerd/config.toml" --log-level warn
  local deadline=$(( $(date +%s) + ${LAB_READY_TIMEOUT:-60} ))
  until ctr --address "$sock" version >/dev/null 2>&1; do
    alive containerd || { tail -n 20 "$LOGS/containerd.log" >&2; die "containerd exited (log: $LOGS/containerd.log)"; }
    (( $(date +%s) < deadline )) || die "containerd not answering on $sock"
    sleep 0.05
  done
  local img
  for img in pause mover; do
    ctr --address "$sock" -n k8s.io images import --snapshotter overlayfs "$bin/$img.tar" >/dev/null \
      || die "could not import $bin/$img.tar into containerd"
  done
  log "containerd ready, images imported"

  cat > "$kl/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: "$API_URL", certificate-authority: "$PKI/ca.crt"}
users:
- name: $NODE_NAME
  user: {client-certificate: "$PKI/node.crt", client-key: "$PKI/node.key"}
contexts:
- name: node
  context: {cluster: lab, user: $NODE_NAME}
current-context: node
EOF
  local port; port=$(free_ports 1)
  cat > "$kl/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: AlwaysAllow}
tlsCertFile: "$PKI/kubelet-serving.crt"
tlsPrivateKeyFile: "$PKI/kubelet-serving.key"
cgroupDriver: cgroupfs
failSwapOn: false
staticPodPath: ""
syncFrequency: 10s
fileCheckFrequency: 20s
nodeStatusUpdateFrequency: 2s
nodeStatusReportFrequency: 1m
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"}
serializeImagePulls: false
makeIPTablesUtilChains: false
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
EOF
  launch kubelet "$bin/kubelet" --config "$kl/config.yaml" --kubeconfig "$kl/kubeconfig" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --root-dir "$kl/root" --cert-dir "$kl/pki" --volume-plugin-dir "$kl/volume-plugins" \
    --container-runtime remote --container-runtime-endpoint "unix://$sock" --image-service-endpoint "unix://$sock" \
    --pod-infra-container-image lab/pause:3.2 --runtime-request-timeout 2m --v 1
  launch repave-lab-csi "$bin/repave-lab-csi" --driver driver.longhorn.io --node-id "$NODE_NAME" \
    --data-dir "$STATE/volumes" --kubelet-root "$kl/root" --csi-socket "$kl/csi.sock"
  echo "KUBELET_PORT=$port" >> "$STATE/node.env"

  # The volume directories must keep what the mover copies: xattrs and ACLs.
  local probe=$STATE/volumes/.probe
  mkdir -p "$probe"
  setfattr -n user.repave-lab -v 1 "$probe" 2>/dev/null \
    || die "$STATE/volumes does not take extended attributes (setfattr failed): put the lab DIR on ext4, xfs or tmpfs"
  setfacl -m u:1000:rwx "$probe" 2>/dev/null \
    || die "$STATE/volumes does not take ACLs (setfacl failed): put the lab DIR on a filesystem with ACL support"
  rmdir "$probe"
}

# node_wait: Ready, untainted, and the CSI driver registered.
node_wait() {
  local adm=(curl -sS --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key")
  local deadline=$(( $(date +%s) + ${LAB_READY_TIMEOUT:-60} )) node csinode
  while :; do
    node=$("${adm[@]}" -f "$API_URL/api/v1/nodes/$NODE_NAME" 2>/dev/null || true)
    csinode=$("${adm[@]}" -f "$API_URL/apis/storage.k8s.io/v1/csinodes/$NODE_NAME" 2>/dev/null || true)
    if python3 -c '
import json, sys
node, csinode = json.loads(sys.argv[1] or "{}"), json.loads(sys.argv[2] or "{}")
ready = any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))
untainted = not node.get("spec", {}).get("taints")
driver = any(d["name"] == "driver.longhorn.io" for d in csinode.get("spec", {}).get("drivers") or [])
sys.exit(0 if ready and untainted and driver else 1)' "$node" "$csinode"; then break; fi
    local n
    for n in containerd kubelet repave-lab-csi; do
      alive "$n" || { tail -n 20 "$LOGS/$n.log" >&2; die "$n exited (log: $LOGS/$n.log)"; }
    done
    (( $(date +%s) < deadline )) || die "$NODE_NAME not Ready with driver.longhorn.io after ${LAB_READY_TIMEOUT:-60}s (log: $LOGS/kubelet.log)"
    sleep 0.1
  done
  log "$NODE_NAME Ready, driver.longhorn.io registered"
}

# node_stop: the node's processes by recorded pid, then everything they leave.
node_stop() {
  local n
  [[ -f $STATE/node.env ]] || return 0
  NODE_RUN=$(sed -n 's/^NODE_RUN_DIR=//p' "$STATE/node.env")
  stop_all repave-lab-csi kubelet
  # The containers first (their shims would otherwise restart nothing, but keep the mounts busy).
  node_kill_pods
  stop_one containerd
  [[ -n $NODE_RUN ]] && node_cleanup "$NODE_RUN" "$STATE/node"
  if [[ -s $NODE_LOCK_DIR/node.owner && "$(cut -d' ' -f1 "$NODE_LOCK_DIR/node.owner")" == "$STATE" ]]; then
    rm -f "$NODE_LOCK_DIR/node.owner"
  fi
  if awk -v v="$STATE/volumes" '$2 == v || index($2, v "/") == 1' /proc/self/mounts | grep -q .; then
    log "warning: $STATE/volumes still has mounts; left in place"
  else
    rm -rf "$STATE/volumes"
  fi
  rm -rf "$STATE/node" "$STATE/node.env"
}

# node_kill_pods: SIGKILL every process in the pods' cgroups (works whether containerd runs or was
# killed), until they are empty.
node_kill_pods() {
  local i pids
  for ((i = 0; i < 50; i++)); do
    pids=$(cat /sys/fs/cgroup/*/kubepods/cgroup.procs /sys/fs/cgroup/*/kubepods/*/cgroup.procs \
               /sys/fs/cgroup/*/kubepods/*/*/cgroup.procs /sys/fs/cgroup/*/kubepods/*/*/*/cgroup.procs 2>/dev/null | sort -u || true)
    [[ -z $pids ]] && return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  log "warning: processes left in the kubepods cgroups: $pids"
}

# node_cleanup RUN NODE_STATE: everything a (live-stopped or dead) real node leaves: container
# processes, shims, mounts, cgroups, the bridge, and the host files kubelet 1.20 writes. Touches
# only what this lab's records name.
node_cleanup() {
  local run=$1 nstate=$2 sock=$1/containerd/containerd.sock pid cmd st
  node_kill_pods
  # A dead lab's containerd (the only process of a lab that does not hold the lock), by its record.
  if [[ -f ${nstate%/node}/pids/containerd.pid ]]; then
    read -r pid st < "${nstate%/node}/pids/containerd.pid" || true
    if [[ -n ${pid:-} ]] && same_proc "$pid" "$st"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  # Shims of this lab's containerd (their command line names its socket), by pid.
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    { cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline"); } 2>/dev/null || continue
    [[ $cmd == *containerd-shim-runc-v2*"-address $sock "* ]] && kill -KILL "$pid" 2>/dev/null
  done
  # Mounts under the run directory and the node's state, deepest first.
  local i mps m
  for i in 1 2 3; do
    mps=$(awk -v a="$run/" -v b="$nstate/" 'index($2, a) == 1 || index($2, b) == 1 {print $2}' /proc/self/mounts \
          | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-)
    [[ -z $mps ]] && break
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done <<< "$mps"
  done
  awk -v a="$run/" -v b="$nstate/" 'index($2, a) == 1 || index($2, b) == 1' /proc/self/mounts | grep -q . \
    && log "warning: mounts left under $run or $nstate"
  # Shim sockets under /run/containerd/s: one per task this containerd ran, named
  # sha256(<containerd address>/<namespace>/<id>); the task directories in its state name them.
  local t h
  for t in "$run"/containerd/state/io.containerd.runtime.v2.task/*/*; do
    [[ -d $t ]] || continue
    h=$(printf '%s' "$sock/$(basename "$(dirname "$t")")/$(basename "$t")" | sha256sum | cut -d' ' -f1)
    rm -f "/run/containerd/s/$h"
  done
  rmdir /run/containerd/s /run/containerd 2>/dev/null || true   # only if empty: a system containerd may own it
  # cgroups (cgroupfs driver)
  local c
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d $c ]] || continue
    find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
    [[ -d $c ]] && log "warning: could not remove the cgroup $c"
  done
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 && { ip link del "$NODE_BRIDGE" || log "warning: could not delete the bridge $NODE_BRIDGE"; }
  # kubelet 1.20's fixed host paths: the pod log directories of this kubelet's pods (their uids are
  # the directories under its root), their /var/log/containers links, the device-plugin socket.
  local uid l
  # kubelet (its pod directories; one it already cleaned may still have logs) and those made while
  # it ran (one real node per machine: no other kubelet writes there meanwhile).
  local logdirs=()
  for uid in $(ls "$run/kubelet/root/pods" 2>/dev/null); do
    for l in /var/log/pods/*_"$uid"; do [[ -d $l ]] && logdirs+=("$l"); done
  done
  if [[ -f $run/started ]]; then
    while read -r l; do [[ -n $l ]] && logdirs+=("$l"); done < <(find /var/log/pods -mindepth 1 -maxdepth 1 -newer "$run/started" 2>/dev/null)
  fi
  for l in "${logdirs[@]}"; do
    for uid in /var/log/containers/*.log; do
      [[ -L $uid && $(readlink "$uid") == "$l"/* ]] && rm -f "$uid"
    done
    rm -rf "$l"
  done
  rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/kubelet/device-plugins/DEPRECATION
  if [[ -f $run/created-host-dirs ]]; then
    for l in $(sort -r "$run/created-host-dirs"); do rmdir "$l/device-plugins" "$l" 2>/dev/null || true; done
  fi
  rm -rf "$run"
}

# node_unlock: after a real lab is down (all its processes, which hold the lock, stopped), remove the lock file and /run/repave-lab, but only while
# holding the lock ourselves (nobody else is live) and when no other lab's run directory is there.
node_unlock() {
  [[ -n ${NODE_LOCK_FD:-} ]] && { exec {NODE_LOCK_FD}>&-; NODE_LOCK_FD=; }
  [[ -f $NODE_LOCK_DIR/node.lock ]] || return 0
  local fd
  exec {fd}>>"$NODE_LOCK_DIR/node.lock"
  if flock -n "$fd"; then
    [[ -s $NODE_LOCK_DIR/node.owner ]] || rm -f "$NODE_LOCK_DIR/node.lock" "$NODE_LOCK_DIR/node.owner"
  fi
  exec {fd}>&-
  rmdir "$NODE_LOCK_DIR" 2>/dev/null || true
}
