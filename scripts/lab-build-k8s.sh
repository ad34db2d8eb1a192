#!/usr/bin/env bash
# lab-build-k8s.sh OUT_DIR - build kube-apiserver, kube-controller-manager, kube-scheduler, the
# kubelet and kubectl v1.20.2 from Debian's `kubernetes` source package with Debian's Go (1.19), in
# one `go build`; then the lab's CSI node plugin (scripts/lab-node/csi.go) in the same tree and the
# real node's images (scripts/lab-node/images.sh).
#
# `scripts/lab build` keys its binary cache by the sha256 of this file, of scripts/lab-node/{csi.go,images.sh}
# and of the Debian package versions they use: change any of them and the next `lab build`
# rebuilds.
#
# Three workarounds (see docs/lab.md):
#  1. GOPATH mode (GO111MODULE=off), as upstream's hack/lib/init.sh does for 1.20: module mode
#     with -mod=vendor fails under Go 1.19 ("updates to go.mod needed").
#  2. vendored modern-go/reflect2 v1.0.1 replaced by Debian's 1.0.2 source. Mandatory: v1.0.1 on
#     Go >= 1.18 crashes the apiserver on every JSON body that contains a map.
#  3. pkg/generated/openapi/zz_generated.openapi.go is not in the tarball: build the vendored
#     openapi-gen and generate it (inputs and flags as build/root/Makefile.generated_files).
#
# Build tags `selinux notest dockerless`: `dockerless` drops the dockershim and cAdvisor's Docker
# plugin, which otherwise probes /var/run/docker.sock five times a second apart at kubelet start
# (a node took 17 s to be Ready instead of 4).
#
# Two one-line kubelet patches for the lab, applied with `go build -overlay` (the shared source tree
# is never edited, so a concurrent build of it sees the upstream files):
#  a. pkg/kubelet/kubelet_node_status.go, validateNodeIP: a loopback node IP is accepted (returned
#     as valid before the interface lookup, since lo carries 127.0.0.1/8, not each address in it).
#     The lab's node is 127.0.0.2, so the apiserver reaches the kubelet on 127.0.0.0/8 and no
#     address is added to any interface. kubectl logs/exec reach the kubelet through
#     GetConnectionInfo, which has no proxyable-IP check in 1.20.
#  b. pkg/kubelet/status/status_manager.go: the status manager's batch sync period, a 10 s
#     constant, is 1 s. A deleted pod disappears from the API only on the first sync after its
#     volumes are unmounted, so every pod deletion took up to 10 s longer (7.5-13.6 s measured for a
#     pod that exits at once on TERM, 5.6 s with 1 s). More frequent status reconciles cost nothing
#     noticeable with a handful of pods.
set -euo pipefail

OUT=${1:?usage: lab-build-k8s.sh OUT_DIR}
WORK=${LAB_BUILD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/repave-lab/build}
SRC_DIR=${LAB_SRC_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/repave-lab/src}
K8S_VERSION=v1.20.2
K8S_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56   # hack/lib/version.sh of the tarball
ORIG=kubernetes_1.20.5+really1.20.2.orig.tar.gz
ORIG_SHA256=b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc
TARGETS="kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl"
NODE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/lab-node" && pwd)

log() { printf '[lab build %s] %s\n' "$(date +%T)" "$*" >&2; }

need=()
command -v go >/dev/null || need+=(golang-go)
[[ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ]] || need+=(golang-github-modern-go-reflect2-dev)
if ((${#need[@]})); then
  log "apt-get install ${need[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >&2
fi

mkdir -p "$WORK" "$SRC_DIR" "$OUT"
tarball=$SRC_DIR/$ORIG
if [[ ! -s $tarball ]]; then
  log "fetching the kubernetes source package (apt-get source --download-only)"
  if ! (cd "$SRC_DIR" && apt-get source -qq --download-only kubernetes >&2); then
    # A fresh machine has no deb-src entry: derive one from the machine's own Debian sources
    # (Types: deb -> deb-src), so no registry host is ever written into this repository.
    src=/etc/apt/sources.list.d/debian.sources
    [[ -f $src ]] || { log "no $src to derive a deb-src entry from; add one and retry"; exit 1; }
    log "adding a deb-src entry derived from $src"
    sed 's/^Types: deb$/Types: deb-src/' "$src" > /etc/apt/sources.list.d/repave-lab-deb-src.sources
    apt-get update -qq >&2
    (cd "$SRC_DIR" && apt-get source -qq --download-only kubernetes >&2)
  fi
fi
echo "$ORIG_SHA256  $tarball" | sha256sum -c --quiet - >&2 || { log "checksum mismatch: $tarball"; exit 1; }

SRC=$WORK/kubernetes-1.20.2
if [[ ! -f $SRC/.unpacked ]]; then
  log "unpacking $ORIG"
  rm -rf "$SRC"
  tar -xzf "$tarball" -C "$WORK"
  touch "$SRC/.unpacked"
fi

# Workaround 2
R2=$SRC/vendor/github.com/modern-go/reflect2
if [[ ! -f $R2/.debian-1.0.2 ]]; then
  log "replacing vendored reflect2 1.0.1 with Debian's 1.0.2"
  cp "$R2/LICENSE" "$WORK/reflect2.LICENSE"
  rm -rf "$R2"; mkdir -p "$R2"
  cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go "$R2/"
  cp "$WORK/reflect2.LICENSE" "$R2/LICENSE"
  touch "$R2/.debian-1.0.2"
fi

# Workaround 1
export GOPATH=$WORK/gopath
mkdir -p "$GOPATH/src/k8s.io"
ln -sfn "$SRC" "$GOPATH/src/k8s.io/kubernetes"
export GO111MODULE=off CGO_ENABLED=0 GOFLAGS=
export GOCACHE=${GOCACHE:-$WORK/gocache}
cd "$GOPATH/src/k8s.io/kubernetes"

# Workaround 3
OAPI=pkg/generated/openapi/zz_generated.openapi.go
if [[ ! -s $OAPI ]]; then
  log "generating $OAPI"
  go build -o "$WORK/tools/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  set +o pipefail   # xargs grep -l exits 123 when a batch has no match
  dirs=$(find -H . -not \( \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune \) -type f -name '*.go' \
         | sed 's|^./staging/src|vendor|; s|^\./||' \
         | grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' \
         | xargs grep --color=never -l '^// *+k8s:' | xargs grep --color=never -l '+k8s:openapi-gen=' \
         | xargs -n1 dirname | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -)
  set -o pipefail
  "$WORK/tools/openapi-gen" --logtostderr -i "$dirs" -p k8s.io/kubernetes/pkg/generated/openapi \
    -O zz_generated.openapi -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
    -r "$WORK/KUBE_violations.report" >&2
fi

vpkg=k8s.io/kubernetes/vendor/k8s.io
ldflags="-s -w -buildid="
for p in client-go/pkg/version component-base/version; do
  ldflags+=" -X $vpkg/$p.gitVersion=$K8S_VERSION -X $vpkg/$p.gitMajor=1 -X $vpkg/$p.gitMinor=20"
  ldflags+=" -X $vpkg/$p.gitCommit=$K8S_COMMIT -X $vpkg/$p.gitTreeState=archive"
  ldflags+=" -X $vpkg/$p.buildDate=2021-01-13T00:00:00Z"
done
# The lab's patches and the CSI plugin, as an overlay (see the header).
OV=$(mktemp -d "$WORK/overlay.XXXXXX"); trap 'rm -rf "$OV"' EXIT
K=$GOPATH/src/k8s.io/kubernetes
patch_line() { # FILE SED_EXPR: a patched copy in $OV; fails if the line was not found
  local f=$1 copy; copy=$OV/$(echo "$1" | tr / _)
  sed "$2" "$K/$f" > "$copy"
  cmp -s "$K/$f" "$copy" && { log "patch for $f no longer applies"; exit 1; }
  printf '"%s":"%s",' "$K/$f" "$copy"
}
{
  printf '{"Replace":{'
  patch_line pkg/kubelet/kubelet_node_status.go \
    's|^\t\treturn fmt.Errorf("nodeIP can.t be loopback address")$|\t\treturn nil // repave lab: a loopback node IP (127.0.0.2) is valid|'
  patch_line pkg/kubelet/status/status_manager.go 's/^const syncPeriod = 10 \* time.Second$/const syncPeriod = 1 * time.Second/'
  printf '"%s":"%s"}}' "$K/cmd/repave-lab-csi/main.go" "$NODE_DIR/csi.go"
} > "$OV/overlay.json"

pkgs=(); for t in $TARGETS; do pkgs+=("./cmd/$t"); done
log "$(go version): building $TARGETS"
go build -overlay "$OV/overlay.json" -trimpath -tags 'selinux notest dockerless' -ldflags "$ldflags" -o "$OUT/" "${pkgs[@]}"
for t in $TARGETS; do
  if [[ $t == kubectl ]]; then "$OUT/$t" version --client --short >&2; else "$OUT/$t" --version >&2; fi
done
log "building repave-lab-csi"
go build -overlay "$OV/overlay.json" -trimpath -ldflags '-s -w -buildid=' -o "$OUT/repave-lab-csi" ./cmd/repave-lab-csi
log "building the images lab/pause:3.2 and lab/mover:1"
"$NODE_DIR/images.sh" "$OUT" "$SRC"
