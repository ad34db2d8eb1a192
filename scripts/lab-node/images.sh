#!/usr/bin/env bash
# scripts/lab-node/images.sh OUT_DIR K8S_SRC - the real node's two images, built offline from Debian
# packages and written by hand as docker-archive tarballs (layer.tar + config JSON + manifest.json),
# which `ctr images import` accepts:
#   OUT_DIR/pause.tar  lab/pause:3.2  the tree's build/pause/linux/pause.c, gcc -static
#   OUT_DIR/mover.tar  lab/mover:1    busybox-static with its applet links, rsync, getfattr/setfattr
#                                     (attr), getfacl/setfacl (acl) and the libraries ldd lists
# Nothing is downloaded: no registry is reachable from this machine, and none is needed.
set -euo pipefail
OUT=${1:?usage: images.sh OUT_DIR K8S_SRC}
K8S_SRC=${2:?usage: images.sh OUT_DIR K8S_SRC}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
W=$(mktemp -d "$OUT/.images.XXXXXX"); trap 'rm -rf "$W"' EXIT
for tool in gcc strip busybox rsync getfattr setfattr getfacl setfacl python3; do
  command -v "$tool" >/dev/null || { echo "images: $tool is missing: run scripts/deps" >&2; exit 1; }
done

# pack ROOTFS REF CMD_JSON ENTRYPOINT_JSON OUT_TAR: one layer, numeric owner 0, mtime 0, sorted, so
# the same inputs give the same image id.
pack() {
  local root=$1 ref=$2 cmd=$3 ep=$4 out=$5 d
  d=$(mktemp -d "$W/pkg.XXXXXX")
  tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$root" -cf "$d/layer.tar" .
  python3 - "$d" "$ref" "$cmd" "$ep" "$(sha256sum "$d/layer.tar" | cut -d' ' -f1)" <<'PY'
import hashlib, json, sys
d, ref, cmd, ep, diff = sys.argv[1:]
config = {"architecture": "amd64", "os": "linux",
          "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                     "Cmd": json.loads(cmd), "Entrypoint": json.loads(ep), "WorkingDir": "/"},
          "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff]},
          "history": [{"created_by": "scripts/lab-node/images.sh"}]}
blob = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
name = hashlib.sha256(blob).hexdigest() + ".json"
open(f"{d}/{name}", "wb").write(blob)
json.dump([{"Config": name, "RepoTags": [ref], "Layers": ["layer.tar"]}], open(f"{d}/manifest.json", "w"))
PY
  tar --sort=name --mtime=@0 -C "$d" -cf "$out" .
  echo "images: $ref -> $out ($(du -h "$d/layer.tar" | cut -f1))" >&2
}

# The sandbox's PID 1. The kubelet's --pod-infra-container-image is ignored with a remote runtime:
# containerd's sandbox_image names it.
P=$W/pause; mkdir -p "$P"
gcc -Os -static -DVERSION=lab-3.2 -o "$P/pause" "$K8S_SRC/build/pause/linux/pause.c"
strip "$P/pause"
pack "$P" lab/pause:3.2 'null' '["/pause"]' "$OUT/pause.tar"

# The workspace and mover image: a shell, rsync and the tools that read and write xattrs and ACLs.
M=$W/mover; mkdir -p "$M"/{bin,usr/bin,tmp,etc,proc,sys,dev,root,home}
chmod 1777 "$M/tmp"
cp "$(command -v busybox)" "$M/bin/busybox"
for applet in $("$M/bin/busybox" --list); do [[ -e $M/bin/$applet ]] || ln -s busybox "$M/bin/$applet"; done
for tool in rsync getfattr setfattr getfacl setfacl; do
  path=$(command -v "$tool")
  cp "$path" "$M/usr/bin/$tool"
  # Each library where the host has it (/lib/x86_64-linux-gnu/..., /lib64/ld-linux-x86-64.so.2).
  for lib in $(ldd "$path" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
    [[ -e $M$lib ]] && continue
    mkdir -p "$M$(dirname "$lib")"
    cp -L "$lib" "$M$lib"
  done
done
printf 'root:x:0:0:root:/root:/bin/sh\ncoder:x:1000:1000:coder:/home/coder:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$M/etc/passwd"
printf 'root:x:0:\ncoder:x:1000:\nnogroup:x:65534:\n' > "$M/etc/group"
pack "$M" lab/mover:1 '["/bin/sh"]' 'null' "$OUT/mover.tar"
